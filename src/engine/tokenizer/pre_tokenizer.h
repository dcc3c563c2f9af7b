#pragma once

// Pre-tokenization for byte-level BPE vocabularies: splits text into the "words" that
// BPE merges within, as the model's pre-tokenizer regex would. The regexes use \p{L},
// \p{N} and lookahead, which std::regex cannot express, so each is a small hand-written
// matcher over ICU character classes with the regex's leftmost-alternative semantics.

#include <string_view>
#include <vector>

namespace triplane::engine {

// The pre-tokenizers this build implements; GGUF `tokenizer.ggml.pre` names map onto
// these (ParsePreTokenizer in vocab.h).
enum class PreTokenizerType {
  // llama.cpp's fallback: punctuation runs, then the GPT-2 regex, then number runs, then
  // groups of three ASCII digits, each splitting the pieces of the one before.
  kDefault,
  // GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  kGpt2,
  // Llama 3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
  //          ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
  kLlama3,
  // Qwen 2: as Llama 3 with \p{N} (single digits) instead of \p{N}{1,3}.
  kQwen2,
};

// Splits `text` into consecutive non-empty pieces that cover it exactly; views point into
// `text`. An invalid UTF-8 sequence stays in the output as its bytes and is classified
// like U+FFFD (a symbol). Cost: linear in the text, one class lookup per code
// point.
std::vector<std::string_view> PreTokenize(std::string_view text, PreTokenizerType type);

}  // namespace triplane::engine
