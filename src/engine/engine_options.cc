#include "engine/engine_options.h"

#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "engine/model/kv_cache.h"

namespace triplane::engine {
namespace {

// Longest context an engine accepts; far beyond any model we load, small enough that
// per-sequence tables sized from it stay reasonable.
constexpr int kMaxCtx = 1 << 20;
constexpr int kMaxServedModelNameLength = 256;

absl::Status Invalid(absl::string_view field, absl::string_view reason) {
  return absl::InvalidArgumentError(absl::StrCat("engine option ", field, ": ", reason));
}

}  // namespace

absl::Status EngineOptions::Validate() const {
  if (model.empty()) return Invalid("model", "a GGUF model file is required");
  if (host.empty()) return Invalid("host", "must not be empty");
  if (threads < 0) return Invalid("threads", absl::StrCat(threads, " is negative (0 = automatic)"));
  if (ctx < 1 || ctx > kMaxCtx) {
    return Invalid("ctx", absl::StrCat(ctx, " is outside 1..", kMaxCtx));
  }
  if (kv_memory_bytes < 0) {
    return Invalid("kv-memory", absl::StrCat(kv_memory_bytes, " is negative (0 = automatic)"));
  }
  if (!ParseKvType(kv_type)) return Invalid("kv-type", absl::StrCat("'", kv_type, "' is not f16 or q8_0"));
  if (max_batch_tokens < 1) {
    return Invalid("max-batch-tokens", absl::StrCat(max_batch_tokens, " must be at least 1"));
  }
  if (max_seqs < 1) return Invalid("max-seqs", absl::StrCat(max_seqs, " must be at least 1"));
  if (served_model_name.size() > kMaxServedModelNameLength) {
    return Invalid("served-model-name",
                   absl::StrCat("longer than ", kMaxServedModelNameLength, " characters"));
  }
  for (char c : served_model_name) {
    if (absl::ascii_isspace(static_cast<unsigned char>(c)) ||
        absl::ascii_iscntrl(static_cast<unsigned char>(c))) {
      return Invalid("served-model-name", "must not contain spaces or control characters");
    }
  }
  if (!std::isfinite(drain_timeout_s) || drain_timeout_s < 0) {
    return Invalid("drain-timeout",
                   absl::StrCat(drain_timeout_s, " must be a finite number of seconds >= 0"));
  }
  return absl::OkStatus();
}

}  // namespace triplane::engine
