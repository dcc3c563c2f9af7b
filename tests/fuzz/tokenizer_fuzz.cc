// Fuzzes Tokenizer::Encode and Decode on three vocabularies: the built-in byte-level one
// (`triplane gguf random` without --vocab-from: one token per byte, ChatML control
// tokens), the same with a few merges and Llama 3's pre-tokenizer, and a small
// SentencePiece one with byte fallback. Encode takes any bytes, invalid UTF-8 included;
// Decode takes any ids, out of range and negative included. Ids must stay in range,
// decoded text must be valid UTF-8, and the byte-level vocabularies must give valid
// UTF-8 text back unchanged.
// Input: one byte of options, then the text (also read as little-endian int32 ids).
#include <cstddef>
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/tokenizer/byte_level.h"
#include "engine/tokenizer/tokenizer.h"
#include "engine/tokenizer/unicode.h"
#include "fuzz_check.h"

namespace triplane::engine {
namespace {

constexpr size_t kMaxInput = 64 << 10;

using fuzz::Fail;

// As src/engine/model/random_model.cc's SetBuiltinVocab writes it.
Vocab BuiltinVocab() {
  Vocab v{.type = VocabType::kByteLevelBpe, .pre = PreTokenizerType::kDefault};
  for (int b = 0; b < 256; ++b) {
    v.tokens.push_back(ByteLevelEncode(std::string(1, static_cast<char>(b))));
    v.types.push_back(TokenType::kNormal);
  }
  for (const char* special : {"<|endoftext|>", "<|im_start|>", "<|im_end|>"}) {
    v.tokens.emplace_back(special);
    v.types.push_back(TokenType::kControl);
  }
  v.bos = 256;
  v.eos = 258;
  v.eog = {258};
  return v;
}

// The built-in vocabulary with merges (" the", "in", "er", "中"'s bytes), an added token
// and Llama 3's pre-tokenizer, NFC normalization off.
Vocab MergingVocab() {
  Vocab v = BuiltinVocab();
  v.pre = PreTokenizerType::kLlama3;
  v.ignore_merges = true;
  auto add = [&](std::string_view left, std::string_view right) {
    const std::string l = ByteLevelEncode(left), r = ByteLevelEncode(right);
    v.merges.push_back(l + " " + r);
    v.tokens.push_back(l + r);
    v.types.push_back(TokenType::kNormal);
  };
  add(" ", "t");
  add("h", "e");
  add(" t", "he");
  add("i", "n");
  add("e", "r");
  add("\xE4", "\xB8");
  add("\xE4\xB8", "\xAD");
  v.tokens.emplace_back("<tool>");
  v.types.push_back(TokenType::kUserDefined);
  return v;
}

// <unk> <s> </s>, byte tokens, a few scored pieces, an added token.
Vocab SentencePieceVocab() {
  Vocab v{.type = VocabType::kSentencePiece, .bos = 1, .eos = 2, .unk = 0};
  v.tokens = {"<unk>", "<s>", "</s>"};
  v.types = {TokenType::kUnknown, TokenType::kControl, TokenType::kControl};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    v.tokens.emplace_back(name);
    v.types.push_back(TokenType::kByte);
  }
  v.scores.assign(v.tokens.size(), 0);
  const std::pair<std::string_view, float> pieces[] = {
      {"\xE2\x96\x81", -1}, {"a", -2}, {"b", -2}, {"ab", -5},
      {"\xE2\x96\x81" "ab", -3}, {"\xE4\xB8\xAD", -4}};
  for (const auto& [text, score] : pieces) {
    v.tokens.emplace_back(text);
    v.types.push_back(TokenType::kNormal);
    v.scores.push_back(score);
  }
  v.tokens.emplace_back("<tool>");
  v.types.push_back(TokenType::kUserDefined);
  v.scores.push_back(0);
  v.add_space_prefix = true;
  v.add_bos = true;
  v.eog = {2};
  return v;
}

std::unique_ptr<Tokenizer> Make(Vocab vocab) {
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = Tokenizer::Create(std::move(vocab));
  if (!tokenizer.ok()) Fail("a fuzzing vocabulary is invalid");
  return *std::move(tokenizer);
}

struct Subject {
  std::unique_ptr<Tokenizer> tokenizer;
  bool round_trips;  // byte-level: Decode(Encode(valid UTF-8)) is the text
};

const std::vector<Subject>& Subjects() {
  static const auto* subjects = new std::vector<Subject>([] {
    std::vector<Subject> s;
    s.push_back({Make(BuiltinVocab()), true});
    s.push_back({Make(MergingVocab()), true});
    s.push_back({Make(SentencePieceVocab()), false});
    return s;
  }());
  return *subjects;
}

void Fuzz(const Subject& subject, std::string_view text, const EncodeOptions& options,
          std::span<const TokenId> raw_ids) {
  const Tokenizer& t = *subject.tokenizer;
  const std::vector<TokenId> ids = t.Encode(text, options);
  if (!text.empty() && ids.empty()) Fail("non-empty text encoded to nothing");
  for (TokenId id : ids) {
    if (id < 0 || id >= t.vocab_size()) Fail("Encode produced an id out of range");
  }
  for (bool skip_special : {false, true}) {
    const std::string decoded = t.Decode(ids, skip_special);
    if (!IsValidUtf8(decoded)) Fail("Decode produced invalid UTF-8");
    // Control tokens matched in the text (parse_special) are left out when skipped.
    const bool promised = subject.round_trips && !(skip_special && options.parse_special);
    if (promised && IsValidUtf8(text) && decoded != text) {
      Fail("Decode(Encode(text)) is not the text");
    }
  }
  // Any ids at all: out of range, negative, special.
  for (bool skip_special : {false, true}) {
    if (!IsValidUtf8(t.Decode(raw_ids, skip_special))) Fail("Decode of raw ids produced invalid UTF-8");
  }
  for (TokenId id : raw_ids) {
    const std::string_view piece = t.TokenPiece(id);
    if ((id < 0 || id >= t.vocab_size()) && !piece.empty()) Fail("a piece for an id out of range");
    volatile bool sink = t.IsEog(id) || t.IsSpecial(id);
    (void)sink;
  }
}

}  // namespace
}  // namespace triplane::engine

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace triplane::engine;
  if (size < 1 || size > kMaxInput) return 0;
  const EncodeOptions options{.add_special = (data[0] & 1) != 0, .parse_special = (data[0] & 2) != 0};
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::vector<TokenId> ids(text.size() / sizeof(TokenId));
  if (!ids.empty()) std::memcpy(ids.data(), text.data(), ids.size() * sizeof(TokenId));
  // Mostly small ids, so that real tokens and the specials come up often.
  if (data[0] & 4) {
    for (TokenId& id : ids) id = static_cast<TokenId>(static_cast<int16_t>(id)) % 400;
  }
  for (const Subject& subject : Subjects()) Fuzz(subject, text, options, ids);
  return 0;
}
