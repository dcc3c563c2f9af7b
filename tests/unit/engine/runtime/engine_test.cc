// The serving core against the single-sequence forward pass: continuous batching,
// chunked prefill, prefix caching and preemption must not change a single logit, so
// greedy tokens must equal those of each request run alone.

#include "engine/runtime/engine.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <future>
#include <memory>
#include <numeric>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "engine/model/forward.h"
#include "engine/model/random_model.h"
#include "testing/test_models.h"

namespace triplane::engine {
namespace {

constexpr int kVocab = 300;

// Collects one request's events; Wait() returns when the final one has arrived.
class Collector {
 public:
  Engine::Callback Callback() {
    return [this](const TokenEvent& e) {
      absl::MutexLock lock(&mu_);
      if (e.token >= 0) tokens_.push_back(e.token);
      events_.push_back(e);
      if (e.finish != FinishReason::kNone) done_ = true;
    };
  }
  const std::vector<TokenEvent>& Wait() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(&done_));
    return events_;
  }
  std::vector<int32_t> tokens() {
    Wait();
    absl::MutexLock lock(&mu_);
    return tokens_;
  }
  int64_t count() {
    absl::MutexLock lock(&mu_);
    return static_cast<int64_t>(tokens_.size());
  }

 private:
  absl::Mutex mu_;
  bool done_ = false;
  std::vector<int32_t> tokens_;
  std::vector<TokenEvent> events_;
};

class EngineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::filesystem::path(std::filesystem::temp_directory_path() /
                                     ("triplane-engine-" + std::to_string(::getpid())));
    std::filesystem::create_directories(*dir_);
    const std::string path = (*dir_ / "model.gguf").string();
    ASSERT_TRUE(WriteRandomModel({.architecture = "llama", .size = "tiny", .type = GgmlType::kQ8_0,
                                  .vocab_from = testing::WriteVocab(*dir_, kVocab), .seed = 3},
                                 path)
                    .ok());
    auto model = Model::Load(path);
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = model->release();
  }
  static void TearDownTestSuite() {
    delete model_;
    std::filesystem::remove_all(*dir_);
    delete dir_;
  }

  static std::vector<int32_t> Prompt(int n, int seed) {
    std::vector<int32_t> p(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) p[static_cast<size_t>(i)] = (seed * 31 + i * 7) % (kVocab - 1);
    return p;
  }

  // Greedy tokens of one prompt alone, by the single-sequence forward pass.
  static std::vector<int32_t> Alone(const std::vector<int32_t>& prompt, int n, KvType kv_type = KvType::kF16) {
    WorkerTeam team(1);
    ForwardPass pass(*model_, team);
    KvCache cache(model_->config(), 256, kv_type);
    std::vector<float> logits(static_cast<size_t>(model_->config().vocab_size));
    std::vector<int32_t> out, history = prompt;
    EXPECT_TRUE(pass.Forward(prompt, cache, logits).ok());
    Sampler sampler({.temperature = 0}, model_->config().vocab_size);
    for (int i = 0; i < n; ++i) {
      const int32_t t = sampler.Sample(logits, history);
      out.push_back(t);
      history.push_back(t);
      if (i + 1 < n) {
        EXPECT_TRUE(pass.Forward(std::span(&t, 1), cache, logits).ok());
      }
    }
    return out;
  }

  static GenerationRequest Greedy(std::vector<int32_t> prompt, int n) {
    return {.prompt = std::move(prompt), .sampling = {.temperature = 0}, .max_tokens = n, .ignore_eos = true};
  }

  static std::unique_ptr<Engine> Start(EngineConfig config) {
    config.eog_tokens = {kVocab - 1};
    auto engine = Engine::Create(*model_, config);
    if (!engine.ok()) {
      ADD_FAILURE() << engine.status();
      return nullptr;
    }
    return std::move(*engine);
  }

  static void WaitIdle(Engine& engine) {
    for (int i = 0; i < 500 && (engine.Stats().running > 0 || engine.Stats().waiting > 0); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  static inline std::filesystem::path* dir_ = nullptr;
  static inline Model* model_ = nullptr;
};

TEST_F(EngineTest, OneRequestGeneratesWhatTheForwardPassGenerates) {
  auto engine = Start({.threads = 2, .ctx = 256, .max_batch_tokens = 64, .max_seqs = 8});
  Collector c;
  ASSERT_TRUE(engine->Submit(Greedy(Prompt(40, 1), 12), c.Callback()).ok());
  EXPECT_EQ(c.tokens(), Alone(Prompt(40, 1), 12));
  const TokenEvent& last = c.Wait().back();
  EXPECT_EQ(last.finish, FinishReason::kLength);
  EXPECT_EQ(last.prompt_tokens, 40);
  EXPECT_EQ(last.generated_tokens, 12);
}

TEST_F(EngineTest, ConcurrentRequestsInOneBatchMatchEachRunAlone) {
  // A small step budget forces chunked prefill mixed with decodes.
  auto engine = Start({.threads = 2, .ctx = 256, .max_batch_tokens = 24, .max_seqs = 6});
  std::vector<std::unique_ptr<Collector>> collectors;
  for (int r = 0; r < 8; ++r) {
    collectors.push_back(std::make_unique<Collector>());
    ASSERT_TRUE(engine->Submit(Greedy(Prompt(5 + 9 * r, r), 10 + r), collectors.back()->Callback()).ok());
  }
  for (int r = 0; r < 8; ++r) EXPECT_EQ(collectors[r]->tokens(), Alone(Prompt(5 + 9 * r, r), 10 + r)) << r;
  WaitIdle(*engine);
  const EngineStats stats = engine->Stats();
  EXPECT_EQ(stats.running, 0);
  EXPECT_EQ(stats.kv_blocks_used, 0);
  EXPECT_GT(stats.steps, 0);
}

TEST_F(EngineTest, AnEightBitKvCacheHoldsMoreTokensAndKeepsBatchesExact) {
  const int64_t kv = 40 * PagedKvCache::BytesPerBlock(model_->config());
  auto f16 = Start({.threads = 2, .ctx = 256, .kv_memory_bytes = kv, .max_batch_tokens = 24, .max_seqs = 6});
  auto q8 = Start({.threads = 2, .ctx = 256, .kv_memory_bytes = kv, .kv_type = KvType::kQ8_0,
                   .max_batch_tokens = 24, .max_seqs = 6});
  EXPECT_GE(q8->Stats().kv_blocks_total, f16->Stats().kv_blocks_total * 18 / 10);
  std::vector<std::unique_ptr<Collector>> collectors;
  for (int r = 0; r < 6; ++r) {
    collectors.push_back(std::make_unique<Collector>());
    ASSERT_TRUE(q8->Submit(Greedy(Prompt(5 + 11 * r, r), 12), collectors.back()->Callback()).ok());
  }
  for (int r = 0; r < 6; ++r) {
    EXPECT_EQ(collectors[r]->tokens(), Alone(Prompt(5 + 11 * r, r), 12, KvType::kQ8_0)) << r;
  }
  WaitIdle(*q8);
  EXPECT_EQ(q8->Stats().kv_blocks_used, 0);
}

TEST_F(EngineTest, RepeatedPrefixComesFromTheCacheWithTheSameResult) {
  auto engine = Start({.threads = 1, .ctx = 256, .max_batch_tokens = 64, .max_seqs = 4});
  std::vector<int32_t> prompt = Prompt(70, 9);
  Collector first;
  ASSERT_TRUE(engine->Submit(Greedy(prompt, 6), first.Callback()).ok());
  const std::vector<int32_t> want = first.tokens();
  Collector second;
  ASSERT_TRUE(engine->Submit(Greedy(prompt, 6), second.Callback()).ok());
  EXPECT_EQ(second.tokens(), want);
  EXPECT_EQ(second.Wait().back().cached_prompt_tokens, 64);  // 4 full blocks; the rest computed
  // A prompt sharing only the first 2 blocks reuses those.
  prompt[40] = (prompt[40] + 1) % (kVocab - 1);
  Collector third;
  ASSERT_TRUE(engine->Submit(Greedy(prompt, 6), third.Callback()).ok());
  EXPECT_EQ(third.tokens(), Alone(prompt, 6));
  EXPECT_EQ(third.Wait().back().cached_prompt_tokens, 32);
  EXPECT_GT(engine->Stats().prefix_cache_hits, 0);
}

TEST_F(EngineTest, PreemptionUnderMemoryPressureKeepsResultsExact) {
  // Room for one full context (8 blocks of 16) shared by four long generations.
  const int64_t block = PagedKvCache::BytesPerBlock(model_->config());
  auto engine = Start({.threads = 2, .ctx = 128, .kv_memory_bytes = 8 * block, .max_batch_tokens = 32, .max_seqs = 4});
  std::vector<std::unique_ptr<Collector>> collectors;
  for (int r = 0; r < 4; ++r) {
    collectors.push_back(std::make_unique<Collector>());
    ASSERT_TRUE(engine->Submit(Greedy(Prompt(20, 40 + r), 40), collectors.back()->Callback()).ok());
  }
  for (int r = 0; r < 4; ++r) EXPECT_EQ(collectors[r]->tokens(), Alone(Prompt(20, 40 + r), 40)) << r;
  EXPECT_GT(engine->Stats().preemptions, 0);
}

TEST_F(EngineTest, CancelStopsARequestAndFreesItsBlocks) {
  auto engine = Start({.threads = 1, .ctx = 256, .max_batch_tokens = 64, .max_seqs = 4});
  Collector c;
  auto id = engine->Submit(Greedy(Prompt(30, 2), 200), c.Callback());
  ASSERT_TRUE(id.ok());
  for (int i = 0; i < 500 && c.count() < 3; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  engine->Cancel(*id);
  const TokenEvent& last = c.Wait().back();
  EXPECT_EQ(last.finish, FinishReason::kCancelled);
  EXPECT_EQ(last.token, -1);
  EXPECT_LT(c.count(), 200);
  WaitIdle(*engine);
  EXPECT_EQ(engine->Stats().kv_blocks_used, 0);
  engine->Cancel(*id);  // finished: no effect
}

TEST_F(EngineTest, StopsAtEndOfGenerationUnlessIgnored) {
  auto engine = Start({.threads = 1, .ctx = 256, .max_batch_tokens = 64, .max_seqs = 4});
  const std::vector<int32_t> alone = Alone(Prompt(12, 5), 8);
  Collector c;
  GenerationRequest r = Greedy(Prompt(12, 5), 8);
  r.ignore_eos = false;
  r.stop_token_ids = {alone[3]};
  ASSERT_TRUE(engine->Submit(r, c.Callback()).ok());
  const std::vector<int32_t> got = c.tokens();
  EXPECT_EQ(c.Wait().back().finish, FinishReason::kStop);
  EXPECT_EQ(got.back(), alone[3]);
  EXPECT_LE(got.size(), 4u);
}

TEST_F(EngineTest, LogprobsDescribeTheModelsDistribution) {
  auto engine = Start({.threads = 1, .ctx = 256, .max_batch_tokens = 64, .max_seqs = 4});
  Collector c;
  GenerationRequest r = Greedy(Prompt(10, 6), 3);
  r.top_logprobs = 5;
  ASSERT_TRUE(engine->Submit(r, c.Callback()).ok());
  for (const TokenEvent& e : c.Wait()) {
    ASSERT_EQ(e.top.size(), 5u);
    EXPECT_EQ(e.top[0].first, e.token);  // greedy picks the most likely
    EXPECT_FLOAT_EQ(e.top[0].second, e.logprob);
    EXPECT_LE(e.logprob, 0.0f);
    EXPECT_GE(e.top[0].second, e.top[4].second);
  }
}

TEST_F(EngineTest, RejectsBadRequestsAndAFullQueue) {
  Collector a, b;  // outlive the engine, which cancels what still runs when it goes
  auto engine = Start({.threads = 1, .ctx = 64, .max_batch_tokens = 16, .max_seqs = 1, .max_waiting = 1});
  auto code = [&](GenerationRequest r) { return engine->Submit(std::move(r), [](const TokenEvent&) {}).status().code(); };
  EXPECT_EQ(code(Greedy({}, 4)), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code(Greedy({1, kVocab}, 4)), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code(Greedy(Prompt(60, 1), 5)), absl::StatusCode::kInvalidArgument);  // 65 > ctx
  EXPECT_EQ(code(Greedy(Prompt(4, 1), 0)), absl::StatusCode::kInvalidArgument);
  GenerationRequest bad = Greedy(Prompt(4, 1), 4);
  bad.sampling.top_p = 2;
  EXPECT_EQ(code(bad), absl::StatusCode::kInvalidArgument);
  // One running, one waiting: the next is refused until there is room.
  ASSERT_TRUE(engine->Submit(Greedy(Prompt(4, 1), 50), a.Callback()).ok());
  absl::StatusCode third = absl::StatusCode::kOk;
  for (int i = 0; i < 20 && third != absl::StatusCode::kResourceExhausted; ++i) {
    auto s = engine->Submit(Greedy(Prompt(4, 2), 50), b.Callback());
    third = s.status().code();
    if (s.ok()) continue;  // the first one was admitted already; this one waits
  }
  EXPECT_EQ(third, absl::StatusCode::kResourceExhausted);
}

TEST_F(EngineTest, AKvCacheLargerThanMemoryIsAnErrorNotACrash) {
  // 2^50 bytes: more than any machine's memory and address space.
  EngineConfig config{.threads = 1, .ctx = 256, .kv_memory_bytes = int64_t{1} << 50, .max_batch_tokens = 16,
                      .max_seqs = 2};
  auto engine = Engine::Create(*model_, config);
  ASSERT_FALSE(engine.ok());
  EXPECT_EQ(engine.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(engine.status().message()), ::testing::HasSubstr("--kv-memory"));
}

TEST_F(EngineTest, EmbeddingsArePooledNormalisedAndDeterministic) {
  auto engine = Start({.threads = 2, .ctx = 256, .max_batch_tokens = 16, .max_seqs = 2});
  auto a = engine->Embed(Prompt(40, 3));
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_EQ(static_cast<int64_t>(a->size()), model_->config().embedding);
  double norm = 0;
  for (float v : *a) norm += double{v} * v;
  EXPECT_NEAR(norm, 1.0, 1e-5);
  auto again = engine->Embed(Prompt(40, 3));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*a, *again);
  auto other = engine->Embed(Prompt(40, 4));
  ASSERT_TRUE(other.ok());
  EXPECT_NE(*a, *other);
  EXPECT_EQ(engine->Embed({}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(engine->Stats().kv_blocks_used, 0);
}

TEST_F(EngineTest, ShutdownCancelsWhatIsRunning) {
  auto engine = Start({.threads = 1, .ctx = 256, .max_batch_tokens = 64, .max_seqs = 4});
  Collector c;
  ASSERT_TRUE(engine->Submit(Greedy(Prompt(30, 8), 200), c.Callback()).ok());
  engine.reset();
  EXPECT_EQ(c.Wait().back().finish, FinishReason::kCancelled);
}

}  // namespace
}  // namespace triplane::engine
