#include "engine/tokenizer/byte_level.h"

#include <array>

#include "engine/tokenizer/unicode.h"

namespace triplane::engine {
namespace {

bool MapsToItself(int b) {
  return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
}

const std::array<char32_t, 256>& ByteChars() {
  static const std::array<char32_t, 256> table = [] {
    std::array<char32_t, 256> t{};
    char32_t next = 0x100;
    for (int b = 0; b < 256; ++b) t[b] = MapsToItself(b) ? static_cast<char32_t>(b) : next++;
    return t;
  }();
  return table;
}

// UTF-8 of each byte's character, so that encoding is one append per byte.
const std::array<std::string, 256>& ByteCharsUtf8() {
  static const std::array<std::string, 256> table = [] {
    std::array<std::string, 256> t;
    for (int b = 0; b < 256; ++b) AppendUtf8(ByteChars()[b], t[b]);
    return t;
  }();
  return table;
}

}  // namespace

char32_t ByteLevelChar(uint8_t b) { return ByteChars()[b]; }

std::optional<uint8_t> ByteLevelByte(char32_t c) {
  if (c < 0x100) {
    if (MapsToItself(static_cast<int>(c))) return static_cast<uint8_t>(c);
    return std::nullopt;
  }
  // The remapped bytes are U+0100 + their rank among the non-printable bytes.
  char32_t next = 0x100;
  for (int b = 0; b < 256; ++b) {
    if (MapsToItself(b)) continue;
    if (next == c) return static_cast<uint8_t>(b);
    ++next;
  }
  return std::nullopt;
}

std::string ByteLevelEncode(std::string_view bytes) {
  const auto& utf8 = ByteCharsUtf8();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) out += utf8[static_cast<uint8_t>(c)];
  return out;
}

std::string ByteLevelDecode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    const Utf8Sequence seq = ReadUtf8(text, pos);
    std::optional<uint8_t> byte;
    if (seq.kind == Utf8Sequence::Kind::kValid) byte = ByteLevelByte(seq.cp);
    if (byte) {
      out.push_back(static_cast<char>(*byte));
    } else {
      out.append(text.substr(pos, seq.size));
    }
    pos += seq.size;
  }
  return out;
}

}  // namespace triplane::engine
