#pragma once

// Metadata value types of the GGUF format and a borrowed view of one decoded value.
// Values are part of the file format: never renumber.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <variant>

namespace triplane::engine {

enum class GgufValueType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

// True for the 13 ids above; anything else in a file is an error.
bool IsValidGgufValueType(uint32_t type);

// Short name as llama.cpp prints it: "u8", "i32", "f32", "bool", "str", "arr", ...;
// "?" for an invalid id.
std::string_view GgufValueTypeName(GgufValueType type);

// Encoded size of one value of a fixed-size type; nullopt for kString and kArray
// (and for invalid ids).
std::optional<size_t> GgufValueTypeSize(GgufValueType type);

// One decoded scalar (or array element). Strings are views into the file's bytes and
// are not guaranteed to be UTF-8. The alternative is fixed by the GgufValueType.
using GgufScalar = std::variant<uint8_t, int8_t, uint16_t, int16_t, uint32_t, int32_t, float, bool,
                                std::string_view, uint64_t, int64_t, double>;

// `value` as int64_t when it is an integer (any width, signed or not) that fits;
// nullopt for bools, floats, strings and u64 values above INT64_MAX.
std::optional<int64_t> GgufScalarToInt(const GgufScalar& value);

// `value` as double when it is an f32 or f64; nullopt otherwise.
std::optional<double> GgufScalarToFloat(const GgufScalar& value);

}  // namespace triplane::engine
