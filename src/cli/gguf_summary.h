#pragma once

// The model repository's view of a GGUF file (control::GgufSummary), read with the
// engine's GGUF reader. Lives in the CLI, where the planes are composed: the control
// plane gets it as an injected function and never links the engine.

#include <string>

#include "absl/status/statusor.h"
#include "control/store/store_types.h"

namespace triplane::cli {

// InvalidArgument when `path` is not a readable GGUF file (the reader says why).
// `extra` carries: name, vocab_size, block_count, embedding_length, head_count,
// head_count_kv, head_dim, file_type_id (general.file_type) when the file has them.
[[nodiscard]] absl::StatusOr<control::GgufSummary> ReadGgufSummary(const std::string& path);

}  // namespace triplane::cli
