#pragma once

// Settings of one engine process (`triplane engine`): which model it serves, where it
// listens, and how much memory and batching it may use.

#include <cstdint>
#include <string>

#include "absl/status/status.h"

namespace triplane::engine {

struct EngineOptions {
  std::string model;               // path of the GGUF model file to load
  std::string host = "127.0.0.1";  // address the engine API listens on
  uint16_t port = 8081;            // 0 picks a free port
  int threads = 0;                 // compute threads; 0 = one per physical core
  int ctx = 4096;                  // context length per sequence, in tokens
  int64_t kv_memory_bytes = 0;     // KV cache budget; 0 = min(max_seqs, 4) full contexts
  std::string kv_type = "f16";     // KV cache entries: f16, or q8_0 (int8 + a scale)
  int max_batch_tokens = 512;      // tokens scheduled per step (prefill chunks + decodes)
  int max_seqs = 64;               // sequences in the running batch at once
  std::string served_model_name;   // name in the API; empty = the model file's name
  double drain_timeout_s = 30;     // on shutdown, how long in-flight requests may finish
  std::string api_key;             // when set, /v1/*, /tokenize and /detokenize require it

  // OK when every field is usable; otherwise InvalidArgument naming the first bad field
  // and the accepted range. Does not touch the file system (the model is checked when
  // it is loaded).
  [[nodiscard]] absl::Status Validate() const;
};

}  // namespace triplane::engine
