// A closed-loop load generator for OpenAI-compatible completion servers: `concurrency`
// clients each send streaming /v1/completions requests back to back until `requests`
// have been sent, and the run reports aggregate output tokens/s and per-request time to
// first token (TTFT), time per output token after the first (TPOT) and end-to-end
// latency as one JSON object on stdout.
//
// Prompts are made of common English words, deterministic per request index; with
// --prefix-words every prompt starts with the same words (a shared system prompt).
// Output tokens are counted from the final usage chunk when the server sends one
// (stream_options.include_usage), otherwise one per streamed chunk with text.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "load_stats.h"
#include "common/http_client.h"
#include "nlohmann/json.hpp"

namespace {

using triplane::bench::Percentile;
using Clock = std::chrono::steady_clock;

constexpr const char* kWords[] = {
    "the", "of", "and", "to", "in", "is", "was", "for", "on", "that", "with", "as", "by", "at",
    "from", "his", "it", "an", "were", "are", "which", "this", "be", "or", "has", "had", "first",
    "one", "their", "its", "new", "after", "who", "they", "have", "her", "she", "two", "been",
    "other", "when", "there", "all", "during", "into", "school", "time", "may", "years", "more",
    "most", "only", "over", "city", "some", "world", "would", "where", "later", "up", "such",
    "used", "many", "can", "state", "about", "national", "out", "known", "university", "united",
    "then", "made", "river", "music", "number", "water", "light", "system", "house", "small"};

std::string Words(std::mt19937& rng, int n) {
  std::string out;
  std::uniform_int_distribution<size_t> pick(0, std::size(kWords) - 1);
  for (int i = 0; i < n; ++i) {
    if (i) out += ' ';
    out += kWords[pick(rng)];
  }
  return out;
}

struct Sample {
  bool ok = false;
  double ttft_ms = 0, tpot_ms = 0, e2e_ms = 0;
  int64_t tokens = 0;
};


}  // namespace

int main(int argc, char** argv) {
  CLI::App app("Streaming /v1/completions load generator");
  std::string url, model = "model", prefix_text;
  int concurrency = 1, requests = 0, prompt_words = 32, prefix_words = 0, max_tokens = 64, warmup = 1;
  uint32_t seed = 1;
  app.add_option("--url", url, "server base URL, e.g. http://127.0.0.1:8081")->required();
  app.add_option("--model", model, "model name to send");
  app.add_option("--concurrency", concurrency, "clients sending at once")->check(CLI::Range(1, 1024));
  app.add_option("--requests", requests, "requests in all (default 4 x concurrency)");
  app.add_option("--prompt-words", prompt_words, "words per prompt after the prefix");
  app.add_option("--prefix-words", prefix_words, "words of a prefix shared by every prompt");
  app.add_option("--max-tokens", max_tokens, "tokens to generate per request (ignore_eos)");
  app.add_option("--warmup", warmup, "untimed requests first (they also cache the prefix)");
  app.add_option("--seed", seed, "prompt generator seed");
  CLI11_PARSE(app, argc, argv);
  if (requests <= 0) requests = 4 * concurrency;

  std::mt19937 prefix_rng(seed * 7919u);
  const std::string prefix = prefix_words > 0 ? Words(prefix_rng, prefix_words) + " " : "";
  auto body_for = [&](int index) {
    std::mt19937 rng(seed * 1000003u + static_cast<uint32_t>(index));
    nlohmann::json body = {{"model", model},
                           {"prompt", prefix + Words(rng, prompt_words)},
                           {"max_tokens", max_tokens},
                           {"temperature", 0},
                           {"stream", true},
                           {"ignore_eos", true},
                           {"stream_options", {{"include_usage", true}}}};
    return body.dump();
  };

  triplane::common::HttpClient client({.request_timeout = std::chrono::minutes(10),
                                       .max_idle_per_host = std::max(32, concurrency),
                                       .threads = 2});
  auto run_one = [&](int index) {
    Sample s;
    triplane::common::HttpClientRequest req;
    req.method = triplane::common::HttpMethod::kPost;
    req.url = url + "/v1/completions";
    req.headers.Set("Content-Type", "application/json");
    req.body = body_for(index);
    const auto start = Clock::now();
    Clock::time_point first{}, last{};
    int64_t chunks = 0, usage_tokens = -1;
    const absl::Status status = client.ReadSse(std::move(req), [&](const triplane::common::SseEvent& e) {
      if (e.data == "[DONE]") return false;
      auto j = nlohmann::json::parse(e.data, nullptr, false);
      if (j.is_discarded()) return true;
      if (j.contains("usage") && j["usage"].is_object() && j["usage"].contains("completion_tokens")) {
        usage_tokens = j["usage"]["completion_tokens"].get<int64_t>();
      }
      if (j.contains("choices") && j["choices"].is_array() && !j["choices"].empty()) {
        const auto& c = j["choices"][0];
        if (c.contains("text") && c["text"].is_string() && !c["text"].get<std::string>().empty()) {
          const auto now = Clock::now();
          if (chunks++ == 0) first = now;
          last = now;
        }
      }
      return true;
    });
    const auto end = Clock::now();
    s.ok = status.ok() && chunks > 0;
    s.tokens = usage_tokens >= 0 ? usage_tokens : chunks;
    auto ms = [](auto d) { return std::chrono::duration<double, std::milli>(d).count(); };
    s.ttft_ms = ms(first - start);
    s.e2e_ms = ms(end - start);
    s.tpot_ms = s.tokens > 1 ? ms(last - first) / static_cast<double>(s.tokens - 1) : 0;
    if (!status.ok()) std::fprintf(stderr, "request %d: %s\n", index, std::string(status.message()).c_str());
    return s;
  };

  for (int i = 0; i < warmup; ++i) run_one(-1 - i);

  std::vector<Sample> samples(static_cast<size_t>(requests));
  std::atomic<int> next{0};
  const auto t0 = Clock::now();
  std::vector<std::thread> clients;
  for (int c = 0; c < concurrency; ++c) {
    clients.emplace_back([&] {
      for (int i = next++; i < requests; i = next++) samples[static_cast<size_t>(i)] = run_one(i);
    });
  }
  for (auto& t : clients) t.join();
  const double wall_s = std::chrono::duration<double>(Clock::now() - t0).count();

  std::vector<double> ttft, tpot, e2e;
  int64_t tokens = 0, ok = 0;
  for (const Sample& s : samples) {
    if (!s.ok) continue;
    ++ok;
    tokens += s.tokens;
    ttft.push_back(s.ttft_ms);
    tpot.push_back(s.tpot_ms);
    e2e.push_back(s.e2e_ms);
  }
  nlohmann::json out = {
      {"concurrency", concurrency},
      {"requests", requests},
      {"ok", ok},
      {"failed", requests - ok},
      {"prompt_words", prompt_words},
      {"prefix_words", prefix_words},
      {"max_tokens", max_tokens},
      {"output_tokens", tokens},
      {"wall_s", wall_s},
      {"output_tokens_per_s", static_cast<double>(tokens) / wall_s},
      {"ttft_ms", {{"p50", Percentile(ttft, 50)}, {"p99", Percentile(ttft, 99)}}},
      {"tpot_ms", {{"p50", Percentile(tpot, 50)}, {"p99", Percentile(tpot, 99)}}},
      {"e2e_ms", {{"p50", Percentile(e2e, 50)}, {"p99", Percentile(e2e, 99)}}}};
  std::printf("%s\n", out.dump().c_str());
  return ok == requests ? 0 : 1;
}
