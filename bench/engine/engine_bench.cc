// engine_bench: prefill and decode tokens/s of the CPU forward pass on one model file,
// measured the way llama.cpp's `llama-bench -p P -n N -r R` measures them, so that
// bench/engine/run.sh can put the two side by side:
//
//   prefill  P random token ids as one batch into a fresh cache (logits of the last);
//   decode   N tokens one at a time into a fresh cache, from position 0, each step
//            computing the logits of its token (the next id is random, not sampled).
//
// Before timing, one prefill of P tokens and one single-token decode warm up the
// mapped weights, the caches and the worker team (llama-bench's warm-up runs). Each
// repetition gives one tokens/s sample per phase; the output is one JSON object with
// their mean and standard deviation (llama-bench's avg_ts / stddev_ts), plus the bytes
// of weights one decode step reads (every matrix of every layer and the output matrix;
// the token embedding is a row lookup) for the bandwidth share.
//
//   engine_bench -m model.gguf -t 2 -p 128 -n 64 -r 3

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "common/json.h"
#include "common/strings.h"
#include "engine/gguf/ggml_type.h"
#include "engine/kernels/cpu/matmul.h"
#include "engine/model/forward.h"
#include "engine/model/kv_cache.h"
#include "engine/model/model.h"
#include "engine/runtime/worker_team.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"

namespace triplane::engine {
namespace {

using Clock = std::chrono::steady_clock;

struct BenchFlags {
  std::string model;
  int threads = 1;
  int prompt = 128;     // llama-bench -p
  int generate = 64;    // llama-bench -n
  int repetitions = 5;  // llama-bench -r (its default)
  uint64_t seed = 1;
};

// Mean and sample standard deviation of tokens/s over the repetitions, as llama-bench
// reports avg_ts and stddev_ts.
nlohmann::json Summary(const std::vector<double>& samples) {
  double mean = 0;
  for (double s : samples) mean += s;
  mean /= static_cast<double>(samples.size());
  double var = 0;
  for (double s : samples) var += (s - mean) * (s - mean);
  const double stddev =
      samples.size() > 1 ? std::sqrt(var / static_cast<double>(samples.size() - 1)) : 0.0;
  return {{"mean_tokens_per_s", mean},
          {"stddev_tokens_per_s", stddev},
          {"samples_tokens_per_s", samples}};
}

uint64_t MatrixBytes(const WeightMatrix& m) { return static_cast<uint64_t>(m.rows * m.row_bytes); }

// Weight bytes one decode step streams from memory: every layer matrix once and the
// output matrix once; token_embd contributes one row (ignored).
uint64_t DecodeWeightBytes(const Model& model) {
  const ModelWeights& w = model.weights();
  uint64_t bytes = MatrixBytes(w.output);
  for (const LayerWeights& l : w.layers) {
    for (const WeightMatrix* m : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) {
      bytes += MatrixBytes(*m);
    }
  }
  return bytes;
}

// Name of the type most layer matrices have ("q4_K"), for the report.
std::string MatrixTypeName(const Model& model) {
  const GgmlType type = model.weights().layers.empty() ? model.weights().output.type
                                                       : model.weights().layers[0].w_gate.type;
  auto traits = GetGgmlTypeTraits(static_cast<uint32_t>(type));
  return traits ? std::string(traits->name) : "unknown";
}

class Bench {
 public:
  Bench(const Model& model, const BenchFlags& f)
      : model_(model),
        flags_(f),
        team_(f.threads),
        pass_(model, team_),  // batches of up to 512 tokens, llama-bench's n_ubatch
        logits_(static_cast<size_t>(model.config().vocab_size)),
        rng_(f.seed) {}

  // Seconds for one prefill of `n` random tokens into a fresh cache.
  absl::StatusOr<double> Prefill(int n) {
    KvCache cache(model_.config(), CacheCapacity());
    std::vector<int32_t> tokens(static_cast<size_t>(n));
    for (int32_t& t : tokens) t = RandomToken();
    const auto start = Clock::now();
    if (absl::Status s = pass_.Forward(tokens, cache, logits_); !s.ok()) return s;
    return std::chrono::duration<double>(Clock::now() - start).count();
  }

  // Seconds for `n` single-token steps into a fresh cache, from position 0.
  absl::StatusOr<double> Decode(int n) {
    KvCache cache(model_.config(), CacheCapacity());
    int32_t token = RandomToken();
    const auto start = Clock::now();
    for (int i = 0; i < n; ++i) {
      if (absl::Status s = pass_.Forward(std::span(&token, 1), cache, logits_); !s.ok()) return s;
      token = RandomToken();
    }
    return std::chrono::duration<double>(Clock::now() - start).count();
  }

 private:
  // llama-bench's context: n_prompt + n_gen positions.
  int64_t CacheCapacity() const { return std::max(1, flags_.prompt + flags_.generate); }
  int32_t RandomToken() {
    return std::uniform_int_distribution<int32_t>(
        0, static_cast<int32_t>(model_.config().vocab_size) - 1)(rng_);
  }

  const Model& model_;
  const BenchFlags& flags_;
  WorkerTeam team_;
  ForwardPass pass_;
  std::vector<float> logits_;  // [vocab]
  std::mt19937_64 rng_;
};

int Fail(std::string_view message) {
  std::fprintf(stderr, "engine_bench: %.*s\n", static_cast<int>(message.size()), message.data());
  return 1;
}

int Run(const BenchFlags& f) {
  auto model = Model::Load(f.model);
  if (!model.ok()) return Fail(common::ToStd(model.status().message()));
  const ModelConfig& config = (*model)->config();
  if (f.prompt + f.generate > config.context_length) {
    return Fail(fmt::format("-p {} + -n {} exceeds the model's context of {}", f.prompt, f.generate,
                            config.context_length));
  }
  Bench bench(**model, f);

  // Warm-up, as llama-bench: one full prefill and one single-token decode.
  if (f.prompt > 0) {
    if (auto s = bench.Prefill(f.prompt); !s.ok()) return Fail(common::ToStd(s.status().message()));
  }
  if (f.generate > 0) {
    if (auto s = bench.Decode(1); !s.ok()) return Fail(common::ToStd(s.status().message()));
  }

  std::vector<double> prefill_tps, decode_tps;
  for (int r = 0; r < f.repetitions; ++r) {
    if (f.prompt > 0) {
      auto s = bench.Prefill(f.prompt);
      if (!s.ok()) return Fail(common::ToStd(s.status().message()));
      prefill_tps.push_back(f.prompt / *s);
    }
    if (f.generate > 0) {
      auto s = bench.Decode(f.generate);
      if (!s.ok()) return Fail(common::ToStd(s.status().message()));
      decode_tps.push_back(f.generate / *s);
    }
  }

  nlohmann::json out = {
      {"model", f.model},
      {"type", MatrixTypeName(**model)},
      {"threads", f.threads},
      {"prompt_tokens", f.prompt},
      {"generated_tokens", f.generate},
      {"repetitions", f.repetitions},
      {"kernel_target", cpu::ActiveKernelTarget()},
      {"weight_bytes", (*model)->weight_bytes()},
      {"decode_weight_bytes_per_token", DecodeWeightBytes(**model)},
  };
  if (!prefill_tps.empty()) out["prefill"] = Summary(prefill_tps);
  if (!decode_tps.empty()) out["decode"] = Summary(decode_tps);
  std::puts(common::DumpJson(out).c_str());
  return 0;
}

}  // namespace
}  // namespace triplane::engine

int main(int argc, char** argv) {
  triplane::engine::BenchFlags f;
  CLI::App app{"Prefill and decode tokens/s of the CPU forward pass (like llama-bench -p/-n)"};
  app.add_option("-m,--model", f.model, "GGUF model file")->required()->check(CLI::ExistingFile);
  app.add_option("-t,--threads", f.threads, "Threads of the worker team")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app.add_option("-p,--prompt", f.prompt, "Prompt tokens prefilled as one batch (0 = skip)")
      ->check(CLI::Range(0, 1 << 16))
      ->capture_default_str();
  app.add_option("-n,--generate", f.generate, "Tokens decoded one at a time (0 = skip)")
      ->check(CLI::Range(0, 1 << 16))
      ->capture_default_str();
  app.add_option("-r,--repetitions", f.repetitions, "Timed repetitions of each phase")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  app.add_option("--seed", f.seed, "Seed of the random token ids")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (f.prompt == 0 && f.generate == 0) {
    std::fputs("engine_bench: nothing to measure (-p 0 -n 0)\n", stderr);
    return 1;
  }
  return triplane::engine::Run(f);
}
