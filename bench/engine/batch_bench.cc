// Aggregate generation throughput of the serving core (engine/runtime/engine.h) with N
// concurrent requests (greedy unless --temperature), in process (no HTTP): the scheduler's batching alone.
// Prints one JSON object: tokens/s at each concurrency and the ratio to the first one,
// overall and for decode alone (the steps after every request has its first token).
// `--repeat N` runs N rounds over the concurrencies in turn and reports medians: on a
// machine whose speed drifts, the ratios are then taken between neighbouring runs.
// `--kernel-target AVX2` (any Highway target name this CPU supports) runs the kernels of
// that target, e.g. to measure an AVX2 machine's code path on an AVX-512 one.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/synchronization/mutex.h"
#include "engine/kernels/cpu/matmul.h"
#include "engine/model/model.h"
#include "engine/runtime/engine.h"
#include "hwy/targets.h"
#include "nlohmann/json.hpp"

using triplane::engine::Engine;
using triplane::engine::FinishReason;
using triplane::engine::GenerationRequest;
using triplane::engine::TokenEvent;

int main(int argc, char** argv) {
  CLI::App app("Serving-core throughput at several concurrencies");
  std::string model_path;
  int threads = 1, prompt = 32, gen = 64, repeat = 1;
  float temperature = 0, top_p = 1;
  std::vector<int> concurrency = {1, 4, 16, 64};
  std::string kernel_target, kv_type_name = "f16";
  app.add_option("-m,--model", model_path, "GGUF model")->required();
  app.add_option("-t,--threads", threads, "compute threads");
  app.add_option("-p,--prompt", prompt, "prompt tokens per request");
  app.add_option("-n,--gen", gen, "tokens generated per request");
  app.add_option("-c,--concurrency", concurrency, "concurrencies");
  app.add_option("--temperature", temperature, "sampling temperature (0 = greedy)")->check(CLI::Range(0.0, 2.0));
  app.add_option("--top-p", top_p, "nucleus sampling mass")->check(CLI::Range(0.01, 1.0));
  app.add_option("-r,--repeat", repeat, "rounds over the concurrencies (medians reported)")->check(CLI::PositiveNumber);
  app.add_option("--kernel-target", kernel_target, "Highway target to run (default: the best)");
  app.add_option("--kv-type", kv_type_name, "KV cache entries")->check(CLI::IsMember({"f16", "q8_0"}));
  CLI11_PARSE(app, argc, argv);
  if (!kernel_target.empty()) {
    int64_t chosen = 0;
    for (int64_t t : triplane::engine::cpu::KernelTargets()) {
      if (kernel_target == hwy::TargetName(t)) chosen = t;
    }
    if (chosen == 0) {
      std::fprintf(stderr, "kernel target %s is not built or not supported here\n", kernel_target.c_str());
      return 1;
    }
    hwy::SetSupportedTargetsForTest(chosen);
  }

  const triplane::engine::KvType kv_type = *triplane::engine::ParseKvType(kv_type_name);
  auto model = triplane::engine::Model::Load(model_path);
  if (!model.ok()) {
    std::fprintf(stderr, "%s\n", std::string(model.status().message()).c_str());
    return 1;
  }
  const int64_t vocab = (*model)->config().vocab_size;
  // One run at concurrency c: all c requests submitted at once, timed to the last token.
  struct Run {
    int64_t tokens = 0, steps = 0;
    double seconds = 0, tps = 0, decode_tps = 0;
  };
  auto run_once = [&](int c) -> absl::StatusOr<Run> {
    const int64_t ctx = prompt + gen + 16;
    const int64_t kv = c * ((ctx + 15) / 16) * triplane::engine::PagedKvCache::BytesPerBlock((*model)->config(), kv_type);
    auto engine = Engine::Create(**model, {.threads = threads, .ctx = ctx, .kv_memory_bytes = kv, .kv_type = kv_type,
                                           .max_batch_tokens = std::max(512, c), .max_seqs = c});
    if (!engine.ok()) return engine.status();
    absl::Mutex mu;
    int done = 0, started = 0;
    int64_t tokens = 0, decode_tokens = 0;
    const auto start = std::chrono::steady_clock::now();
    std::chrono::steady_clock::time_point decode_start;  // when every request has its first token
    for (int r = 0; r < c; ++r) {
      GenerationRequest req{.sampling = {.temperature = temperature, .top_p = top_p, .seed = static_cast<uint64_t>(r + 1)},
                            .max_tokens = gen, .ignore_eos = true};
      for (int i = 0; i < prompt; ++i) req.prompt.push_back(static_cast<int32_t>((r * 977 + i * 131) % vocab));
      auto id = (*engine)->Submit(std::move(req), [&, first = true](const TokenEvent& e) mutable {
        absl::MutexLock lock(&mu);
        if (e.token >= 0) {
          if (started == c) ++decode_tokens;
          if (first && ++started == c) decode_start = std::chrono::steady_clock::now();
          first = false;
          ++tokens;
        }
        if (e.finish != FinishReason::kNone) ++done;
      });
      if (!id.ok()) return id.status();
    }
    {
      absl::MutexLock lock(&mu);
      auto all_done = [&] { return done == c; };
      mu.Await(absl::Condition(&all_done));
    }
    const auto end = std::chrono::steady_clock::now();
    Run run{.tokens = tokens, .steps = (*engine)->Stats().steps};
    run.seconds = std::chrono::duration<double>(end - start).count();
    run.tps = static_cast<double>(tokens) / run.seconds;
    // Decode alone: the tokens that came after every request had its first one (so no
    // step in the window holds prompt tokens), over that window.
    run.decode_tps = static_cast<double>(decode_tokens) / std::chrono::duration<double>(end - decode_start).count();
    return run;
  };
  // Rounds over all concurrencies in turn, so that a slow spell of the machine touches
  // every concurrency alike; medians per concurrency.
  std::vector<std::vector<Run>> runs(concurrency.size());
  for (int round = 0; round < repeat; ++round) {
    for (size_t i = 0; i < concurrency.size(); ++i) {
      absl::StatusOr<Run> run = run_once(concurrency[i]);
      if (!run.ok()) {
        std::fprintf(stderr, "%s\n", std::string(run.status().message()).c_str());
        return 1;
      }
      runs[i].push_back(*run);
    }
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  };
  nlohmann::json results = nlohmann::json::array();
  double single = 0, single_decode = 0;
  for (size_t i = 0; i < concurrency.size(); ++i) {
    std::vector<double> tps, decode_tps;
    for (const Run& run : runs[i]) {
      tps.push_back(run.tps);
      decode_tps.push_back(run.decode_tps);
    }
    const double t = median(tps), d = median(decode_tps);
    if (i == 0) {
      single = t;
      single_decode = d;
    }
    results.push_back({{"concurrency", concurrency[i]}, {"tokens", runs[i].front().tokens},
                       {"steps", runs[i].front().steps}, {"tokens_per_s", t}, {"vs_first", t / single},
                       {"decode_tokens_per_s", d}, {"decode_vs_first", d / single_decode},
                       {"runs_tokens_per_s", tps}, {"runs_decode_tokens_per_s", decode_tps}});
  }
  const nlohmann::json report = {{"kernel_target", triplane::engine::cpu::ActiveKernelTarget()},
                                 {"threads", threads},
                                 {"kv_type", kv_type_name},
                                 {"prompt", prompt},
                                 {"gen", gen},
                                 {"repeat", repeat},
                                 {"temperature", temperature},
                                 {"top_p", top_p},
                                 {"results", results}};
  std::printf("%s\n", report.dump().c_str());
  return 0;
}
