#include "control/deploy/resources.h"

#include <algorithm>
#include <optional>
#include <string_view>

#include "fmt/format.h"

namespace triplane::control {
namespace {

// A positive integer under `key` or "attention.<key>" in `extra`.
std::optional<int64_t> PositiveInt(const nlohmann::json& extra, std::string_view key) {
  if (!extra.is_object()) return std::nullopt;
  for (const std::string& name : {std::string(key), "attention." + std::string(key)}) {
    auto it = extra.find(name);
    if (it == extra.end() || !it->is_number_integer()) continue;
    const int64_t value = it->get<int64_t>();
    if (value > 0) return value;
  }
  return std::nullopt;
}

}  // namespace

int64_t EstimateKvCacheBytes(const EngineSettings& engine, const GgufSummary& gguf) {
  if (engine.kv_memory_bytes > 0) return engine.kv_memory_bytes;
  const std::optional<int64_t> layers = PositiveInt(gguf.extra, "block_count");
  const std::optional<int64_t> embedding = PositiveInt(gguf.extra, "embedding_length");
  const std::optional<int64_t> heads = PositiveInt(gguf.extra, "head_count");
  if (!layers || !embedding || !heads) return kUnknownKvCacheBytes;
  const int64_t kv_heads = PositiveInt(gguf.extra, "head_count_kv").value_or(*heads);
  const int64_t head_dim = PositiveInt(gguf.extra, "key_length").value_or(*embedding / *heads);
  int64_t ctx = engine.context_length > 0 ? engine.context_length : kEngineDefaultContext;
  if (gguf.context_length > 0) ctx = std::min(ctx, gguf.context_length);
  // Keys and values of every layer: f16 (2 bytes each), or q8_0 (1 byte each plus a
  // 4-byte scale per head). Values from a file could be absurd: compute in double and
  // clamp rather than overflow.
  const double per_head = engine.kv_type == "q8_0" ? static_cast<double>(head_dim) + 4.0
                                                   : 2.0 * static_cast<double>(head_dim);
  const double bytes = 2.0 * static_cast<double>(*layers) * static_cast<double>(kv_heads) * per_head *
                       static_cast<double>(ctx) * kEngineDefaultKvContexts;
  constexpr double kMax = static_cast<double>(int64_t{1} << 56);
  return head_dim > 0 ? static_cast<int64_t>(std::min(bytes, kMax)) : kUnknownKvCacheBytes;
}

int64_t EstimateInstanceMemoryBytes(const InstanceLaunch& launch) {
  return std::max<int64_t>(0, launch.model_bytes) + EstimateKvCacheBytes(launch.engine, launch.gguf) +
         kEngineOverheadBytes;
}

std::string FormatCores(int64_t cores) {
  return fmt::format("{} {}", cores, cores == 1 ? "core" : "cores");
}

std::string FormatBytes(int64_t bytes) {
  constexpr double kGiB = 1024.0 * 1024 * 1024;
  if (bytes < (int64_t{1} << 30)) return fmt::format("{} MiB", bytes >> 20);
  return fmt::format("{:.1f} GiB", static_cast<double>(bytes) / kGiB);
}

std::string FormatResources(const Resources& resources) {
  return fmt::format("{} and {}", FormatCores(resources.cores), FormatBytes(resources.memory_bytes));
}

}  // namespace triplane::control
