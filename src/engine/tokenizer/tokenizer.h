#pragma once

// Text <-> token ids for a model's vocabulary: SentencePiece-style BPE with byte fallback
// (GGUF tokenizer "llama") and byte-level BPE with a pre-tokenizer (GGUF "gpt2": GPT-2,
// Llama 3, Qwen 2). Special tokens are matched in the text as whole tokens.
//
// Example:
//   TP_ASSIGN_OR_RETURN(Vocab vocab, LoadVocab(gguf));
//   TP_ASSIGN_OR_RETURN(auto tokenizer, Tokenizer::Create(std::move(vocab)));
//   std::vector<TokenId> ids = tokenizer->Encode("Hello", {.add_special = true});

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/tokenizer/vocab.h"

namespace triplane::engine {

struct EncodeOptions {
  // Add BOS/EOS where the vocabulary asks for them (Vocab::add_bos / add_eos).
  bool add_special = true;
  // Match control tokens written in the text (e.g. "<|im_start|>") as those tokens. Off:
  // they are tokenized as plain text, so user input cannot forge them. User-defined
  // (added) tokens are matched either way.
  bool parse_special = false;
};

// Immutable after Create; all methods are const and safe to call from many threads.
class Tokenizer {
 public:
  // Validates `vocab` (sizes, ids in range, merges naming known tokens) and builds the
  // lookup tables. Cost: linear in the vocabulary and merges (about 0.1 s for 150k tokens and
  // merges).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Tokenizer>> Create(Vocab vocab);

  // Token ids of `text`. Any bytes are accepted; invalid UTF-8 becomes byte tokens (or
  // the unknown token when the vocabulary has no byte tokens). Cost: O(n log n) in the
  // text length.
  std::vector<TokenId> Encode(std::string_view text, EncodeOptions options = {}) const;

  // The bytes token `id` stands for: control and unknown tokens as their text, byte
  // tokens as their single byte (possibly part of a UTF-8 sequence), SentencePiece
  // U+2581 as a space, byte-level characters as their bytes. Empty for an id out of
  // range. The view lives as long as the Tokenizer.
  std::string_view TokenPiece(TokenId id) const;

  // The text of `ids`: pieces concatenated, control and unknown tokens left out when
  // `skip_special`, the space the SentencePiece encoder puts before the text removed,
  // invalid UTF-8 replaced by U+FFFD.
  std::string Decode(std::span<const TokenId> ids, bool skip_special) const;

  // True for tokens that end generation (EOS, end of turn, …).
  bool IsEog(TokenId id) const;
  // True for control and unknown tokens (left out of Decode when skip_special).
  bool IsSpecial(TokenId id) const;

  int32_t vocab_size() const { return static_cast<int32_t>(vocab_.tokens.size()); }
  const Vocab& vocab() const { return vocab_; }

 private:
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using TokenMap = std::unordered_map<std::string, TokenId, StringHash, std::equal_to<>>;

  // A byte-level BPE merge: the rank orders merges, `result` is the merged token.
  struct Merge {
    int32_t rank;
    TokenId result;
  };

  explicit Tokenizer(Vocab vocab) : vocab_(std::move(vocab)) {}
  absl::Status Build();

  TokenType TypeOf(TokenId id) const;
  // Appends the ids of `text`, which holds no special token.
  void EncodeText(std::string_view text, bool space_prefix, std::vector<TokenId>& out) const;
  void EncodeSentencePiece(std::string_view text, bool space_prefix,
                           std::vector<TokenId>& out) const;
  void EncodeByteLevelWord(std::string_view word, std::vector<TokenId>& out) const;
  // Appends the byte-fallback tokens of `bytes` (or unk where there is none).
  void AppendBytes(std::string_view bytes, std::vector<TokenId>& out) const;
  const Merge* FindMerge(TokenId left, TokenId right) const;

  Vocab vocab_;
  TokenMap token_ids_;      // every token text -> id
  TokenMap mergeable_ids_;  // SentencePiece: texts merges may produce (normal, user-defined)
  std::vector<std::string> pieces_;  // id -> TokenPiece
  std::vector<bool> eog_;
  std::array<TokenId, 256> byte_tokens_{};  // byte -> SentencePiece <0xAB> or byte-level char token
  std::unordered_map<uint64_t, Merge> merges_;  // (left << 32 | right) -> merge
  // Texts matched as whole tokens before encoding, longest first per first byte.
  std::array<std::vector<TokenId>, 256> specials_by_first_byte_;
};

}  // namespace triplane::engine
