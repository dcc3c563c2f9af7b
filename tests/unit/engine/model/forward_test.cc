#include "engine/model/forward.h"

#include <cmath>
#include <filesystem>

#include "engine/model/random_model.h"
#include "engine/sampling/sampler.h"
#include "gtest/gtest.h"
#include "testing/test_models.h"

namespace triplane::engine {
namespace {

using testing::WriteVocab;

class ForwardTest : public ::testing::TestWithParam<std::tuple<std::string, GgmlType>> {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("triplane-forward-" + std::to_string(::getpid()) + "-" +
            std::to_string(::testing::UnitTest::GetInstance()->random_seed()));
    std::filesystem::create_directories(dir_);
    auto [arch, type] = GetParam();
    std::string path = (dir_ / "model.gguf").string();
    ASSERT_TRUE(WriteRandomModel({.architecture = arch, .size = "tiny", .type = type,
                                  .vocab_from = WriteVocab(dir_, 300), .seed = 7},
                                 path)
                    .ok());
    auto model = Model::Load(path);
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = std::move(*model);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::filesystem::path dir_;
  std::unique_ptr<Model> model_;
};

TEST_P(ForwardTest, PrefillMatchesTokenByTokenDecodeAndThreadCounts) {
  const int64_t vocab = model_->config().vocab_size;
  const std::vector<int32_t> tokens = {1, 17, 42, 299, 0, 5, 5, 123, 64, 7};
  const int64_t n = static_cast<int64_t>(tokens.size());

  WorkerTeam one(1);
  ForwardPass single(*model_, one);
  KvCache decode_cache(model_->config(), 64);
  std::vector<float> decoded(static_cast<size_t>(n * vocab));
  for (int64_t t = 0; t < n; ++t) {
    ASSERT_TRUE(single.Forward(std::span(tokens).subspan(t, 1), decode_cache,
                               std::span(decoded).subspan(t * vocab, vocab))
                    .ok());
  }

  WorkerTeam two(2);
  ForwardPass chunked(*model_, two, /*max_batch=*/4);  // 10 tokens in chunks of 4
  KvCache prefill_cache(model_->config(), 64);
  std::vector<float> prefilled(static_cast<size_t>(n * vocab));
  ASSERT_TRUE(chunked.Forward(tokens, prefill_cache, prefilled).ok());
  EXPECT_EQ(prefill_cache.size(), n);

  // The same arithmetic per output whatever the batch, span or thread split.
  double max_abs = 0;
  for (size_t i = 0; i < prefilled.size(); ++i) {
    ASSERT_TRUE(std::isfinite(prefilled[i]));
    ASSERT_EQ(prefilled[i], decoded[i]) << "logit " << i % vocab << " of token " << i / vocab;
    max_abs = std::max(max_abs, static_cast<double>(std::fabs(decoded[i])));
  }
  EXPECT_GT(max_abs, 0.0);
}

std::vector<float> LastLogits(const Model& model) {
  const std::vector<int32_t> tokens = {3, 1, 4, 1, 5, 9, 2, 6};
  WorkerTeam team(2);
  ForwardPass pass(model, team);
  KvCache cache(model.config(), 16);
  std::vector<float> logits(static_cast<size_t>(model.config().vocab_size));
  EXPECT_TRUE(pass.Forward(tokens, cache, logits).ok());
  return logits;
}

TEST_P(ForwardTest, HugePageCopyAndMappedWeightsGiveIdenticalLogitsInGgufLayout) {
  auto mapped = Model::Load((dir_ / "model.gguf").string(), {.huge_pages = false});
  ASSERT_TRUE(mapped.ok()) << mapped.status();
  auto copied = Model::Load((dir_ / "model.gguf").string(), {.huge_pages = true, .interleave = false});
  ASSERT_TRUE(copied.ok()) << copied.status();
  EXPECT_EQ(LastLogits(**copied), LastLogits(**mapped));
}

// The interleaved layout (the default where the CPU has its kernels) sums each row's
// blocks in another order; random-weight models amplify that through activation
// quantization, as with llama.cpp (the oracle tolerances).
TEST_P(ForwardTest, InterleavedWeightsAgreeWithGgufLayout) {
  auto plain = Model::Load((dir_ / "model.gguf").string(), {.huge_pages = true, .interleave = false});
  ASSERT_TRUE(plain.ok()) << plain.status();
  const std::vector<float> want = LastLogits(**plain);
  const std::vector<float> got = LastLogits(*model_);
  double max_abs = 0, max_diff = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    max_abs = std::max(max_abs, std::fabs(double{want[i]}));
    max_diff = std::max(max_diff, std::fabs(double{got[i]} - want[i]));
  }
  EXPECT_LE(max_diff, 1.5e-2 * max_abs);
}

// An 8-bit KV cache: prefill and token-by-token decode still agree bit for bit, and the
// logits stay close to the f16 cache's (int8 keys and values lose ~0.4 % per entry).
TEST_P(ForwardTest, An8BitKvCacheIsBatchInvariantAndCloseToF16) {
  const int64_t vocab = model_->config().vocab_size;
  const std::vector<int32_t> tokens = {1, 17, 42, 299, 0, 5, 5, 123, 64, 7, 33, 250, 8, 19, 2, 77, 91, 140};
  const int64_t n = static_cast<int64_t>(tokens.size());
  WorkerTeam one(1), two(2);
  ForwardPass single(*model_, one);
  KvCache decode_cache(model_->config(), 64, KvType::kQ8_0);
  std::vector<float> decoded(static_cast<size_t>(n * vocab));
  for (int64_t t = 0; t < n; ++t) {
    ASSERT_TRUE(single.Forward(std::span(tokens).subspan(t, 1), decode_cache,
                               std::span(decoded).subspan(t * vocab, vocab))
                    .ok());
  }
  ForwardPass chunked(*model_, two, /*max_batch=*/5);
  KvCache prefill_cache(model_->config(), 64, KvType::kQ8_0);
  std::vector<float> prefilled(static_cast<size_t>(n * vocab));
  ASSERT_TRUE(chunked.Forward(tokens, prefill_cache, prefilled).ok());
  KvCache f16_cache(model_->config(), 64);
  std::vector<float> f16(static_cast<size_t>(n * vocab));
  ASSERT_TRUE(chunked.Forward(tokens, f16_cache, f16).ok());
  EXPECT_LT(prefill_cache.bytes(), f16_cache.bytes() * 6 / 10);

  double max_abs = 0, max_diff = 0;
  for (size_t i = 0; i < prefilled.size(); ++i) {
    ASSERT_EQ(prefilled[i], decoded[i]) << "logit " << i % vocab << " of token " << i / vocab;
    max_abs = std::max(max_abs, std::fabs(double{f16[i]}));
    max_diff = std::max(max_diff, std::fabs(double{prefilled[i]} - f16[i]));
  }
  EXPECT_GT(max_diff, 0.0);  // it is a different cache
  EXPECT_LE(max_diff, 5e-2 * max_abs);
}

TEST_P(ForwardTest, RejectsBadInputsWithoutTouchingTheCache) {
  WorkerTeam team(1);
  ForwardPass pass(*model_, team);
  KvCache cache(model_->config(), 4);
  std::vector<float> logits(static_cast<size_t>(model_->config().vocab_size));
  const std::vector<int32_t> bad_id = {1, 300};
  EXPECT_EQ(pass.Forward(bad_id, cache, logits).code(), absl::StatusCode::kInvalidArgument);
  const std::vector<int32_t> too_long = {1, 2, 3, 4, 5};
  EXPECT_EQ(pass.Forward(too_long, cache, logits).code(), absl::StatusCode::kInvalidArgument);
  std::vector<float> wrong(3);
  EXPECT_EQ(pass.Forward(std::vector<int32_t>{1}, cache, wrong).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(cache.size(), 0);
}

std::string ParamName(const ::testing::TestParamInfo<std::tuple<std::string, GgmlType>>& info) {
  auto traits = GetGgmlTypeTraits(static_cast<uint32_t>(std::get<1>(info.param)));
  std::string name = std::get<0>(info.param) + "_" + std::string(traits->name);
  for (char& c : name) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return name;
}

INSTANTIATE_TEST_SUITE_P(
    ArchitecturesAndTypes, ForwardTest,
    ::testing::Values(std::make_tuple("llama", GgmlType::kF32), std::make_tuple("qwen2", GgmlType::kF16),
                      std::make_tuple("qwen3", GgmlType::kQ8_0), std::make_tuple("llama", GgmlType::kQ4_0),
                      std::make_tuple("llama", GgmlType::kQ4_K), std::make_tuple("qwen3", GgmlType::kQ6_K),
                      std::make_tuple("qwen2", GgmlType::kBF16)),
    ParamName);

// Samples from a copy (Sample modifies its logits in place).
int32_t SampleCopy(Sampler& sampler, const std::vector<float>& logits,
                   std::span<const int32_t> history = {}) {
  std::vector<float> copy = logits;
  return sampler.Sample(copy, history);
}

TEST(SamplerTest, GreedyPicksTheArgmaxAndSeedsRepeat) {
  std::vector<float> logits = {0.1f, 2.0f, -1.0f, 1.9f};
  Sampler greedy({.temperature = 0.0f}, 4);
  EXPECT_EQ(SampleCopy(greedy, logits), 1);
  auto draw = [&](uint64_t seed) {
    Sampler s({.temperature = 1.0f, .seed = seed}, 4);
    std::vector<int32_t> out;
    for (int i = 0; i < 20; ++i) out.push_back(SampleCopy(s, logits));
    return out;
  };
  EXPECT_EQ(draw(42), draw(42));
  EXPECT_NE(draw(42), draw(43));
}

TEST(SamplerTest, TopKOneIsGreedyAndPenaltiesChangeTheChoice) {
  std::vector<float> logits = {0.1f, 2.0f, -1.0f, 1.9f};
  Sampler top1({.temperature = 5.0f, .top_k = 1, .seed = 3}, 4);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(SampleCopy(top1, logits), 1);
  Sampler penalised({.temperature = 0.0f, .repetition_penalty = 2.0f}, 4);
  const std::vector<int32_t> history = {1};
  EXPECT_EQ(SampleCopy(penalised, logits, history), 3);  // 2.0/2 < 1.9
  Sampler biased({.temperature = 0.0f, .logit_bias = {{2, 10.0f}}}, 4);
  EXPECT_EQ(SampleCopy(biased, logits), 2);
}

TEST(SamplerTest, ValidatesParameters) {
  EXPECT_FALSE(ValidateSamplingParams({.top_p = 0.0f}, 10).ok());
  EXPECT_FALSE(ValidateSamplingParams({.temperature = -1.0f}, 10).ok());
  EXPECT_FALSE(ValidateSamplingParams({.logit_bias = {{10, 1.0f}}}, 10).ok());
  EXPECT_TRUE(ValidateSamplingParams({.temperature = 0.7f, .top_k = 40, .top_p = 0.9f}, 10).ok());
}

TEST(SamplerTest, TopLogprobsAreSortedLogSoftmax) {
  std::vector<float> logits = {1.0f, 3.0f, 2.0f};
  auto top = TopLogprobs(logits, 2);
  ASSERT_EQ(top.size(), 2u);
  EXPECT_EQ(top[0].first, 1);
  EXPECT_EQ(top[1].first, 2);
  double z = std::exp(1.0) + std::exp(3.0) + std::exp(2.0);
  EXPECT_NEAR(top[0].second, 3.0 - std::log(z), 1e-5);
  EXPECT_NEAR(TokenLogprob(logits, 0), 1.0 - std::log(z), 1e-5);
}

}  // namespace
}  // namespace triplane::engine
