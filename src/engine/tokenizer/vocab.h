#pragma once

// A model's vocabulary as plain data: what GGUF's `tokenizer.ggml.*` metadata says,
// before any lookup structure is built. LoadVocab (vocab_loader.h) fills one from a
// GGUF file; tests build small ones by hand. Tokenizer::Create validates it.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/tokenizer/pre_tokenizer.h"

namespace triplane::engine {

using TokenId = int32_t;
inline constexpr TokenId kNoToken = -1;

// `tokenizer.ggml.token_type` values (the GGUF format's numbering: never renumber).
enum class TokenType : int32_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,      // BOS, EOS, chat markers: parsed from text only with parse_special
  kUserDefined = 4,  // added tokens: always matched in text as whole tokens
  kUnused = 5,
  kByte = 6,  // SentencePiece byte fallback, text "<0xAB>"
};

// `tokenizer.ggml.model`.
enum class VocabType {
  kSentencePiece,  // "llama": merges by score over characters, spaces as U+2581, byte fallback
  kByteLevelBpe,   // "gpt2": pre-tokenizer, bytes mapped to printable characters, merges by rank
};

struct Vocab {
  VocabType type = VocabType::kByteLevelBpe;
  PreTokenizerType pre = PreTokenizerType::kDefault;  // byte-level BPE only

  std::vector<std::string> tokens;  // id -> text as stored in the vocabulary
  std::vector<float> scores;        // id -> SentencePiece score; empty means all 0
  std::vector<TokenType> types;     // id -> type; empty means all kNormal
  std::vector<std::string> merges;  // byte-level BPE merges "left right"; rank = index

  TokenId bos = kNoToken;
  TokenId eos = kNoToken;
  TokenId unk = kNoToken;
  TokenId eot = kNoToken;  // end of turn, e.g. <|eot_id|>, <|im_end|>
  TokenId eom = kNoToken;  // end of message, e.g. <|eom_id|>
  TokenId pad = kNoToken;
  std::vector<TokenId> eog;  // every token that ends generation (includes eos/eot/eom)

  bool add_bos = false;           // Encode with add_special puts bos first
  bool add_eos = false;           // ... and eos last
  bool add_space_prefix = false;  // SentencePiece: a space before the text (and after specials)
  bool ignore_merges = false;     // BPE: a word that is a whole token is not merged (Llama 3)
  bool normalize_nfc = false;     // text is put in Unicode NFC before tokenizing (Qwen)
};

// Maps a GGUF `tokenizer.ggml.pre` name ("llama-bpe", "qwen2", "gpt-2", "default", …) to
// the pre-tokenizer it uses. An empty name is "default". Unknown names are
// InvalidArgument: tokenizing with the wrong regex silently degrades a model.
[[nodiscard]] absl::StatusOr<PreTokenizerType> ParsePreTokenizer(std::string_view name);

// What a GGUF pre-tokenizer name implies beyond its regex, from the models' original
// tokenizer.json: Llama 3 skips merges for words that are whole tokens and adds BOS by
// default; Qwen normalizes text to NFC.
struct PreTokenizerTraits {
  bool ignore_merges = false;
  bool add_bos = false;
  bool normalize_nfc = false;
};
PreTokenizerTraits TraitsOfPreTokenizer(std::string_view name);

// Token texts that end a turn or a generation in the chat formats GGUF files carry
// (`<|eot_id|>`, `<|im_end|>`, `<end_of_turn>`, …). GGUF names only eos/eot/eom
// explicitly; converters rely on runtimes to recognise the rest by text.
bool IsEndOfGenerationText(std::string_view text);

}  // namespace triplane::engine
