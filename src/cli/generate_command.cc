// `triplane generate`: load a model file and generate text on this machine, no server.
// Streams text to stdout, or prints one JSON object with --json (field names are a
// stable interface: prompt_token_ids, token_ids, text, top_logprobs,
// prefill_tokens_per_s, decode_tokens_per_s).

#include <chrono>
#include <cstdio>
#include <thread>

#include "cli/commands.h"
#include "common/json.h"
#include "common/strings.h"
#include "engine/model/forward.h"
#include "engine/model/model.h"
#include "engine/sampling/sampler.h"
#include "engine/tokenizer/incremental_detokenizer.h"
#include "engine/tokenizer/tokenizer.h"
#include "engine/tokenizer/vocab_loader.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"

namespace triplane::cli {

namespace {

struct GenerateFlags {
  std::string model;
  std::string prompt;
  int max_tokens = 128;
  int threads = 0;
  int ctx = 0;
  bool json = false;
  int top_logprobs = 0;
  bool mmap = false;
  engine::SamplingParams sampling{.temperature = 0.8f, .top_k = 40, .top_p = 0.95f, .min_p = 0.05f};
};

int GenerateError(std::string_view message) {
  std::fprintf(stderr, "triplane generate: %.*s\n", static_cast<int>(message.size()), message.data());
  return 1;
}

int GenerateError(const absl::Status& status) { return GenerateError(common::ToStd(status.message())); }

int RunGenerate(const GenerateFlags& f) {
  using Clock = std::chrono::steady_clock;
  auto model = engine::Model::Load(f.model, {.huge_pages = !f.mmap});
  if (!model.ok()) return GenerateError(model.status());
  auto vocab = engine::LoadVocab((*model)->file());
  if (!vocab.ok()) return GenerateError(vocab.status());
  auto tokenizer = engine::Tokenizer::Create(std::move(*vocab));
  if (!tokenizer.ok()) return GenerateError(tokenizer.status());
  const engine::ModelConfig& config = (*model)->config();
  if (absl::Status s = engine::ValidateSamplingParams(f.sampling, config.vocab_size); !s.ok()) {
    return GenerateError(s);
  }

  std::vector<int32_t> prompt =
      (*tokenizer)->Encode(f.prompt, {.add_special = true, .parse_special = true});
  if (prompt.empty()) return GenerateError("the prompt has no tokens");
  const int64_t ctx = f.ctx > 0 ? f.ctx : std::min<int64_t>(config.context_length, static_cast<int64_t>(prompt.size()) + f.max_tokens);
  if (static_cast<int64_t>(prompt.size()) >= ctx) {
    return GenerateError(fmt::format("the prompt has {} tokens; the context holds {}", prompt.size(), ctx));
  }
  const int threads = f.threads > 0 ? f.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  engine::WorkerTeam team(threads);
  engine::ForwardPass pass(**model, team);
  engine::KvCache cache(config, ctx);
  engine::Sampler sampler(f.sampling, config.vocab_size);
  engine::IncrementalDetokenizer detokenizer(**tokenizer);

  std::vector<float> logits(static_cast<size_t>(config.vocab_size));
  auto start = Clock::now();
  if (absl::Status s = pass.Forward(prompt, cache, logits); !s.ok()) return GenerateError(s);
  const double prefill_s = std::chrono::duration<double>(Clock::now() - start).count();

  std::vector<int32_t> history = prompt;
  std::vector<int32_t> generated;
  std::string text;
  nlohmann::json top_logprobs = nlohmann::json::array();
  double decode_s = 0;
  int64_t decode_steps = 0;
  for (int i = 0; i < f.max_tokens && cache.size() < ctx; ++i) {
    if (f.top_logprobs > 0) {
      nlohmann::json entry = nlohmann::json::array();
      for (const auto& [id, logprob] : engine::TopLogprobs(logits, f.top_logprobs)) entry.push_back({id, logprob});
      top_logprobs.push_back(std::move(entry));
    }
    const int32_t token = sampler.Sample(logits, history);
    generated.push_back(token);
    history.push_back(token);
    if ((*tokenizer)->IsEog(token)) break;
    std::string piece = detokenizer.Push(token);
    text += piece;
    if (!f.json && !piece.empty()) {
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
    }
    if (i + 1 == f.max_tokens || cache.size() >= ctx) break;
    auto step = Clock::now();
    if (absl::Status s = pass.Forward(std::span(&token, 1), cache, logits); !s.ok()) return GenerateError(s);
    decode_s += std::chrono::duration<double>(Clock::now() - step).count();
    ++decode_steps;
  }
  std::string tail = detokenizer.Flush();
  text += tail;
  const double prefill_tps = prefill_s > 0 ? static_cast<double>(prompt.size()) / prefill_s : 0;
  const double decode_tps = decode_s > 0 ? static_cast<double>(decode_steps) / decode_s : 0;
  if (f.json) {
    nlohmann::json out = {
        {"prompt_token_ids", prompt},
        {"token_ids", generated},
        {"text", text},
        {"prefill_tokens_per_s", prefill_tps},
        {"decode_tokens_per_s", decode_tps},
    };
    if (f.top_logprobs > 0) out["top_logprobs"] = std::move(top_logprobs);
    std::puts(common::DumpJson(out).c_str());
  } else {
    std::fwrite(tail.data(), 1, tail.size(), stdout);
    std::fputc('\n', stdout);
    std::fprintf(stderr, "prefill: %zu tokens, %.1f tokens/s; decode: %zu tokens, %.1f tokens/s; %d threads\n",
                 prompt.size(), prefill_tps, generated.size(), decode_tps, threads);
  }
  return 0;
}

}  // namespace

Command AddGenerateCommand(CLI::App& root) {
  auto f = std::make_shared<GenerateFlags>();
  CLI::App* app = root.add_subcommand(
      "generate", "Generate text from a model file on this machine, without a server");
  app->add_option("--model", f->model, "GGUF model file")->required()->check(CLI::ExistingFile);
  app->add_option("--prompt", f->prompt, "Prompt text (control tokens such as <|im_start|> are recognised)")
      ->required();
  app->add_option("-n,--max-tokens", f->max_tokens, "Tokens to generate at most")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  app->add_option("--temp", f->sampling.temperature, "Temperature; 0 is greedy")->capture_default_str();
  app->add_option("--top-k", f->sampling.top_k, "Top-k (0 = off)")->capture_default_str();
  app->add_option("--top-p", f->sampling.top_p, "Top-p (1 = off)")->capture_default_str();
  app->add_option("--min-p", f->sampling.min_p, "Min-p (0 = off)")->capture_default_str();
  app->add_option("--repeat-penalty", f->sampling.repetition_penalty, "Repetition penalty (1 = off)")
      ->capture_default_str();
  app->add_option("--presence-penalty", f->sampling.presence_penalty, "Presence penalty")->capture_default_str();
  app->add_option("--frequency-penalty", f->sampling.frequency_penalty, "Frequency penalty")->capture_default_str();
  app->add_option("--seed", f->sampling.seed, "Sampling seed")->capture_default_str();
  app->add_option("--threads", f->threads, "Threads (0 = every core)")->check(CLI::Range(0, 1024))->capture_default_str();
  app->add_option("--ctx", f->ctx, "Context size (0 = prompt + max tokens, capped by the model's)")
      ->check(CLI::Range(0, 1 << 24))
      ->capture_default_str();
  app->add_flag("--json", f->json, "Print one JSON object instead of streaming text");
  app->add_option("--top-logprobs", f->top_logprobs, "With --json: the K most likely tokens at each step")
      ->check(CLI::Range(0, 20))
      ->capture_default_str();
  app->add_flag("--mmap", f->mmap,
                "Use the weights in place from the file mapping (zero copy, less memory, slower "
                "decode) instead of copying them into huge pages");
  return {app, [f] { return RunGenerate(*f); }};
}

}  // namespace triplane::cli
