#pragma once

// Streaming detokenization: turns generated tokens into text chunks as they come, never
// emitting a broken UTF-8 sequence. A character split across tokens (byte-fallback
// tokens like <0xE4>, or byte-level tokens holding part of a character) is held back
// until its last byte arrives; bytes that can never form a character become U+FFFD.
// Pieces are otherwise emitted as they are: generated text continues the prompt, so a
// SentencePiece token's leading space is kept (unlike Tokenizer::Decode).

#include <string>

#include "engine/tokenizer/tokenizer.h"

namespace triplane::engine {

struct DetokenizerOptions {
  // Leave out control and unknown tokens (EOS, chat markers).
  bool skip_special = true;
};

// Per-stream state; one per generated sequence. Thread-compatible. Borrows the tokenizer,
// which must outlive it.
class IncrementalDetokenizer {
 public:
  explicit IncrementalDetokenizer(const Tokenizer& tokenizer, DetokenizerOptions options = {})
      : tokenizer_(&tokenizer), options_(options) {}

  // Adds `id` and returns the text that is now complete (possibly empty): valid UTF-8.
  std::string Push(TokenId id);

  // Ends the stream: returns what was held back, an incomplete sequence as U+FFFD.
  std::string Flush();

  // Bytes held back waiting for the rest of a character (at most 3).
  size_t pending_bytes() const { return pending_.size(); }

 private:
  const Tokenizer* tokenizer_;
  DetokenizerOptions options_;
  std::string pending_;  // an incomplete UTF-8 sequence from earlier tokens
};

}  // namespace triplane::engine
