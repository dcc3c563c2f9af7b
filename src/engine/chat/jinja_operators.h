#pragma once

// Python's binary operators, membership test and slicing on template values.

#include <cstdint>
#include <optional>

#include "absl/status/statusor.h"
#include "engine/chat/jinja_ast.h"
#include "engine/chat/jinja_value.h"

namespace triplane::engine::chat::jinja {

// a op b for the arithmetic operators and ~ (REQUIRES: op is not kAnd or kOr).
// InvalidArgument for unsupported operand types, undefined operands (except with ~),
// division by zero, integer overflow, or a result over the budget's string cap (bytes,
// or items for a repeated list).
[[nodiscard]] absl::StatusOr<Value> ApplyBinary(BinaryOp op, const Value& a, const Value& b,
                                                WorkBudget& budget);

// `item in container`: substring for strings, element for lists and tuples, key for
// dicts; false for an undefined container. InvalidArgument otherwise.
[[nodiscard]] absl::StatusOr<bool> Contains(const Value& container, const Value& item,
                                            WorkBudget& budget);

// container[start:stop:step] of a list, tuple or string with Python's index rules.
// Bounds are ints (or none / undefined for the default). InvalidArgument for a zero
// step or non-integer bounds; undefined for other container types.
[[nodiscard]] absl::StatusOr<Value> Slice(const Value& container, const Value& start,
                                          const Value& stop, const Value& step);

// Items of a for loop or of a filter's input: list and tuple items, dict keys, the
// characters of a string, nothing for undefined. InvalidArgument for other types.
[[nodiscard]] absl::StatusOr<ValueList> Iterate(const Value& v);

}  // namespace triplane::engine::chat::jinja
