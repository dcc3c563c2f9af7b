#pragma once

// Resource arithmetic shared by providers and the reconciler: the memory an engine
// instance needs (model file + KV cache + overhead), and resources as people read them
// ("2 cores and 1.2 GiB"). Pure functions; thread-safe.

#include <cstdint>
#include <string>

#include "control/deploy/provider.h"
#include "control/store/store_types.h"

namespace triplane::control {

// Memory an engine process needs beyond its weights and KV cache (code, HTTP buffers,
// scratch activations).
inline constexpr int64_t kEngineOverheadBytes = int64_t{64} << 20;
// KV cache assumed when neither the settings nor the GGUF summary tell its size.
inline constexpr int64_t kUnknownKvCacheBytes = int64_t{256} << 20;
// The engine's context length when the settings say 0 (engine_options.h: ctx).
inline constexpr int64_t kEngineDefaultContext = 4096;
// Contexts the engine's default KV pool holds: min(max_seqs, 4) with max_seqs 64.
inline constexpr int64_t kEngineDefaultKvContexts = 4;

// The bytes of the KV cache an engine started with `engine` allocates for the model
// `gguf` describes: `engine.kv_memory_bytes` when set; else, like the engine, room for
// kEngineDefaultKvContexts contexts of f16 keys and values:
//   2 (K, V) * block_count * head_count_kv * head_dim * ctx * 2 bytes * contexts,
// ctx = engine.context_length (0: 4096) capped at gguf.context_length, head_dim =
// key_length or embedding_length / head_count. Reads these keys of `gguf.extra`, each
// with or without an "attention." prefix (integers, as in the GGUF metadata without the
// "<arch>." prefix): "block_count", "embedding_length", "head_count", and optionally
// "head_count_kv" (default head_count) and "key_length". kUnknownKvCacheBytes when a
// required key is missing or not a positive integer.
int64_t EstimateKvCacheBytes(const EngineSettings& engine, const GgufSummary& gguf);

// model_bytes + EstimateKvCacheBytes + kEngineOverheadBytes.
int64_t EstimateInstanceMemoryBytes(const InstanceLaunch& launch);

// "1 core", "3 cores".
std::string FormatCores(int64_t cores);
// "512 MiB", "1.2 GiB".
std::string FormatBytes(int64_t bytes);
// "2 cores and 1.2 GiB".
std::string FormatResources(const Resources& resources);

}  // namespace triplane::control
