// Oracle: llama.cpp's own logits for a token sequence, through its C API, to compare
// Triplane's forward pass with. Built only when llama.cpp's headers (the source bundle
// in node-llama-cpp) and prebuilt libraries (@node-llama-cpp/linux-x64) are present.
//
// Usage: llama_logits MODEL.gguf THREADS TOKENS OUT.bin
//   TOKENS: comma-separated token ids, evaluated as one batch at positions 0..n-1.
//   OUT.bin: n × n_vocab little-endian float32 logits (all positions), row by row.
// Exit 0 on success; one line on stderr and exit 1 otherwise.

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "ggml-backend.h"
#include "llama.h"

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s MODEL THREADS TOKENS OUT\n", argv[0]);
    return 1;
  }
  std::vector<llama_token> tokens;
  for (std::string rest = argv[3]; !rest.empty();) {
    size_t comma = rest.find(',');
    tokens.push_back(static_cast<llama_token>(std::stol(rest.substr(0, comma))));
    rest = comma == std::string::npos ? "" : rest.substr(comma + 1);
  }
  const int threads = std::atoi(argv[2]);
  ggml_backend_load_all_from_path(LLAMA_ORACLE_LIB_DIR);
  llama_log_set([](ggml_log_level level, const char* text, void*) {
    if (level >= GGML_LOG_LEVEL_ERROR) std::fputs(text, stderr);
  }, nullptr);
  llama_backend_init();

  llama_model_params model_params = llama_model_default_params();
  llama_model* model = llama_model_load_from_file(argv[1], model_params);
  if (!model) {
    std::fprintf(stderr, "llama_logits: cannot load %s\n", argv[1]);
    return 1;
  }
  llama_context_params ctx_params = llama_context_default_params();
  ctx_params.n_ctx = static_cast<uint32_t>(tokens.size() + 16);
  ctx_params.n_batch = static_cast<uint32_t>(tokens.size());
  ctx_params.n_ubatch = static_cast<uint32_t>(tokens.size());
  ctx_params.n_threads = threads;
  ctx_params.n_threads_batch = threads;
  ctx_params.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
  llama_context* ctx = llama_init_from_model(model, ctx_params);
  if (!ctx) {
    std::fprintf(stderr, "llama_logits: cannot create a context\n");
    return 1;
  }
  llama_batch batch = llama_batch_init(static_cast<int32_t>(tokens.size()), 0, 1);
  for (size_t i = 0; i < tokens.size(); ++i) {
    batch.token[i] = tokens[i];
    batch.pos[i] = static_cast<llama_pos>(i);
    batch.n_seq_id[i] = 1;
    batch.seq_id[i][0] = 0;
    batch.logits[i] = 1;
  }
  batch.n_tokens = static_cast<int32_t>(tokens.size());
  if (llama_decode(ctx, batch) != 0) {
    std::fprintf(stderr, "llama_logits: llama_decode failed\n");
    return 1;
  }
  const int32_t n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
  FILE* out = std::fopen(argv[4], "wb");
  if (!out) {
    std::fprintf(stderr, "llama_logits: cannot write %s\n", argv[4]);
    return 1;
  }
  for (size_t i = 0; i < tokens.size(); ++i) {
    const float* logits = llama_get_logits_ith(ctx, static_cast<int32_t>(i));
    std::fwrite(logits, sizeof(float), static_cast<size_t>(n_vocab), out);
  }
  std::fclose(out);
  llama_batch_free(batch);
  llama_free(ctx);
  llama_model_free(model);
  llama_backend_free();
  return 0;
}
