#pragma once

// GPT-2's byte-level alphabet: each of the 256 byte values stands for one printable
// character, so that byte-level BPE vocabularies hold only printable text. Bytes that are
// printable Latin-1 map to themselves; the other 68 (controls, space, DEL, NBSP, soft
// hyphen) map to U+0100 onwards, in byte order.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace triplane::engine {

// The character byte `b` stands for.
char32_t ByteLevelChar(uint8_t b);

// The byte character `c` stands for, or nullopt if `c` is not in the alphabet.
std::optional<uint8_t> ByteLevelByte(char32_t c);

// The byte-level text of `bytes`: each byte's character, UTF-8 encoded.
std::string ByteLevelEncode(std::string_view bytes);

// The bytes of byte-level text `text`. Characters outside the alphabet (not produced by
// ByteLevelEncode, but possible in an odd vocabulary) are kept as their UTF-8.
std::string ByteLevelDecode(std::string_view text);

}  // namespace triplane::engine
