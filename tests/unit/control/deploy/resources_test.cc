#include "control/deploy/resources.h"

#include "gtest/gtest.h"

namespace triplane::control {
namespace {

GgufSummary Llama(nlohmann::json extra) {
  return {.architecture = "llama", .context_length = 8192, .extra = std::move(extra)};
}

TEST(ResourcesTest, KvCacheFollowsTheEnginesDefaultPoolOfFourContexts) {
  // 2 (K, V) * 16 layers * 8 KV heads * 64 head dim * 4096 ctx * 2 bytes * 4 contexts.
  const GgufSummary gguf = Llama({{"block_count", 16},
                                  {"embedding_length", 2048},
                                  {"head_count", 32},
                                  {"head_count_kv", 8}});
  EXPECT_EQ(EstimateKvCacheBytes({}, gguf), int64_t{2} * 16 * 8 * 64 * 4096 * 2 * 4);
  EXPECT_EQ(EstimateKvCacheBytes({.context_length = 1024}, gguf),
            int64_t{2} * 16 * 8 * 64 * 1024 * 2 * 4);
}

TEST(ResourcesTest, KvCacheContextIsCappedAtTheModels) {
  GgufSummary gguf = Llama({{"block_count", 2}, {"embedding_length", 64}, {"head_count", 4}});
  gguf.context_length = 256;
  // No head_count_kv: as many as the query heads; head dim 64 / 4.
  EXPECT_EQ(EstimateKvCacheBytes({.context_length = 100000}, gguf),
            int64_t{2} * 2 * 4 * 16 * 256 * 2 * 4);
}

TEST(ResourcesTest, KvCacheReadsAttentionPrefixedKeysAndKeyLength) {
  const GgufSummary gguf = Llama({{"block_count", 4},
                                  {"embedding_length", 1024},
                                  {"attention.head_count", 8},
                                  {"attention.head_count_kv", 2},
                                  {"attention.key_length", 256}});
  EXPECT_EQ(EstimateKvCacheBytes({.context_length = 512}, gguf),
            int64_t{2} * 4 * 2 * 256 * 512 * 2 * 4);
}

TEST(ResourcesTest, An8BitKvCacheTakesItsBytesPlusAScalePerHead) {
  const GgufSummary gguf = Llama({{"block_count", 4},
                                  {"embedding_length", 1024},
                                  {"attention.head_count", 8},
                                  {"attention.head_count_kv", 2},
                                  {"attention.key_length", 256}});
  EXPECT_EQ(EstimateKvCacheBytes({.context_length = 512, .kv_type = "q8_0"}, gguf),
            int64_t{2} * 4 * 2 * (256 + 4) * 512 * 4);
  EXPECT_EQ(EstimateKvCacheBytes({.context_length = 512, .kv_type = "f16"}, gguf),
            EstimateKvCacheBytes({.context_length = 512}, gguf));
}

TEST(ResourcesTest, KvCacheSettingWinsAndUnknownModelsGetTheDefault) {
  EXPECT_EQ(EstimateKvCacheBytes({.kv_memory_bytes = 12345}, Llama({{"block_count", 2}})), 12345);
  EXPECT_EQ(EstimateKvCacheBytes({}, Llama({{"block_count", 2}})), kUnknownKvCacheBytes);
  EXPECT_EQ(EstimateKvCacheBytes({}, Llama({{"block_count", "two"},
                                            {"embedding_length", 64},
                                            {"head_count", 4}})),
            kUnknownKvCacheBytes);
  EXPECT_EQ(EstimateKvCacheBytes({}, Llama(nullptr)), kUnknownKvCacheBytes);
}

TEST(ResourcesTest, InstanceMemoryIsModelPlusKvPlusOverhead) {
  const InstanceLaunch launch{.model_bytes = int64_t{1} << 30,
                              .engine = {.kv_memory_bytes = int64_t{512} << 20}};
  EXPECT_EQ(EstimateInstanceMemoryBytes(launch),
            (int64_t{1} << 30) + (int64_t{512} << 20) + kEngineOverheadBytes);
}

TEST(ResourcesTest, FormatsForPeople) {
  EXPECT_EQ(FormatResources({.cores = 1, .memory_bytes = int64_t{300} << 20}), "1 core and 300 MiB");
  EXPECT_EQ(FormatResources({.cores = 2, .memory_bytes = int64_t{1288490189}}),
            "2 cores and 1.2 GiB");
  EXPECT_EQ(FormatCores(0), "0 cores");
}

}  // namespace
}  // namespace triplane::control
