#pragma once

// Reads a model's vocabulary from GGUF `tokenizer.ggml.*` metadata.

#include "absl/status/statusor.h"
#include "engine/gguf/gguf_file.h"
#include "engine/tokenizer/vocab.h"

namespace triplane::engine {

// The vocabulary in `file`: tokenizer.ggml.model ("llama" or "gpt2"), .tokens, .scores,
// .token_type, .merges, .pre, the special token ids (.bos_token_id, .eos_token_id,
// .eot_token_id, .eom_token_id, .unknown_token_id, .padding_token_id) and flags
// (.add_bos_token, .add_eos_token, .add_space_prefix), with the defaults llama.cpp
// applies when a key is absent (e.g. SentencePiece: BOS 1, EOS 2, UNK 0, add BOS and a
// space prefix; Llama 3 pre-tokenizer: add BOS). Tokens whose text marks an end of turn
// (IsEndOfGenerationText) join the end-of-generation set. Copies the strings out of the
// file. Errors: InvalidArgument for missing or malformed keys, unsupported models or
// pre-tokenizers.
[[nodiscard]] absl::StatusOr<Vocab> LoadVocab(const GgufFile& file);

}  // namespace triplane::engine
