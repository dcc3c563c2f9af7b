// Load for the gateway benchmark (bench/gateway/run.sh), two modes:
//
//   gateway_load rate --url U --rate R --seconds S [--key K] [--model M]
//     Open loop: request i is sent at t0 + i/R whatever the earlier ones are doing, and its
//     latency is counted from that planned time, so a stall shows as latency instead of
//     silently lowering the rate (no coordinated omission). Non-streamed /v1/completions
//     of one token. Prints {"rate","sent","ok","failed","achieved_rate","latency_ms":{p50,
//     p90,p99,p999,max}} as JSON.
//
//   gateway_load streams --url U --streams N --pid P [--key K] [--model M] [--hold S]
//     Opens N streaming /v1/completions at once, waits until every one has received its
//     first event, holds them for S seconds while sampling process P's resident memory
//     (VmRSS), then cancels them. Prints {"streams","held","failed","rss_idle_bytes",
//     "rss_held_bytes","bytes_per_stream"} as JSON; P is the process under test (the
//     gateway), measured before the streams open and at its peak while they are held.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "common/http_client.h"
#include "load_stats.h"
#include "nlohmann/json.hpp"

namespace {

using triplane::bench::Percentile;
using triplane::common::HttpClient;
using triplane::common::HttpClientRequest;
using triplane::common::HttpMethod;
using Clock = std::chrono::steady_clock;

HttpClientRequest Completion(const std::string& url, const std::string& key, const nlohmann::json& body) {
  HttpClientRequest request{.method = HttpMethod::kPost, .url = url + "/v1/completions", .body = body.dump()};
  request.headers.Set("content-type", "application/json");
  if (!key.empty()) request.headers.Set("authorization", "Bearer " + key);
  return request;
}

int64_t ResidentBytes(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6)) * 1024;  // "VmRSS:  1234 kB"
  }
  return -1;
}

int Rate(const std::string& url, const std::string& key, const std::string& model, double rate, double seconds) {
  const auto total = static_cast<int64_t>(rate * seconds);
  // Declared before the client: its callbacks may still run while it shuts down.
  std::vector<double> latency_ms(static_cast<size_t>(total), -1);
  std::atomic<int64_t> done{0}, failed{0};
  std::mutex mu;
  std::condition_variable all_done;
  HttpClient client({.max_idle_per_host = 256, .threads = 1});
  const nlohmann::json body = {{"model", model}, {"prompt", "a"}, {"max_tokens", 1}, {"ignore_eos", true}};
  for (int i = 0; i < 200; ++i) (void)client.Send(Completion(url, key, body));  // warm up connections
  const auto t0 = Clock::now() + std::chrono::milliseconds(10);
  for (int64_t i = 0; i < total; ++i) {
    const auto planned = t0 + std::chrono::nanoseconds(static_cast<int64_t>(1e9 * static_cast<double>(i) / rate));
    std::this_thread::sleep_until(planned);
    client.SendAsync(Completion(url, key, body), [&, i, planned](auto response) {
      if (response.ok() && response->status == 200) {
        latency_ms[static_cast<size_t>(i)] = std::chrono::duration<double, std::milli>(Clock::now() - planned).count();
      } else {
        ++failed;
      }
      if (++done == total) {
        std::lock_guard lock(mu);
        all_done.notify_all();
      }
    });
  }
  const double sending_s = std::chrono::duration<double>(Clock::now() - t0).count();
  {
    std::unique_lock lock(mu);
    all_done.wait_for(lock, std::chrono::seconds(60), [&] { return done.load() == total; });
  }
  std::vector<double> ok;
  for (double v : latency_ms) {
    if (v >= 0) ok.push_back(v);
  }
  const nlohmann::json out = {
      {"rate", rate},
      {"sent", total},
      {"ok", ok.size()},
      {"failed", failed.load()},
      {"achieved_rate", static_cast<double>(total) / sending_s},
      {"latency_ms",
       {{"p50", Percentile(ok, 50)}, {"p90", Percentile(ok, 90)}, {"p99", Percentile(ok, 99)},
        {"p999", Percentile(ok, 99.9)}, {"max", Percentile(ok, 100)}}}};
  std::printf("%s\n", out.dump().c_str());
  return failed.load() == 0 && done.load() == total ? 0 : 1;
}

int Streams(const std::string& url, const std::string& key, const std::string& model, int streams, int pid,
            double hold_s, int max_tokens) {
  // Declared before the client: its callbacks may still run while it shuts down.
  std::atomic<int> started{0}, failed{0}, first_failure{0};
  std::vector<std::unique_ptr<std::atomic<bool>>> seen;
  HttpClient client({.request_timeout = std::chrono::minutes(5), .max_idle_per_host = 8, .threads = 2});
  const nlohmann::json body = {{"model", model}, {"prompt", "a"}, {"max_tokens", max_tokens},
                               {"ignore_eos", true}, {"stream", true}};
  (void)client.Send(Completion(url, key, {{"model", model}, {"prompt", "a"}, {"max_tokens", 1}}));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const int64_t idle = ResidentBytes(pid);
  std::vector<std::shared_ptr<triplane::common::HttpStreamHandle>> handles;
  for (int i = 0; i < streams; ++i) seen.push_back(std::make_unique<std::atomic<bool>>(false));
  for (int i = 0; i < streams; ++i) {
    std::atomic<bool>* first = seen[static_cast<size_t>(i)].get();
    handles.push_back(client.Stream(Completion(url, key, body),
                                    {.on_head = [&, first](int status, const auto&) {
                                       if (status == 200) return;
                                       first->store(true);  // not a stream: never counted as held
                                       int none = 0;
                                       first_failure.compare_exchange_strong(none, status);
                                       ++failed;
                                     },
                                     .on_data = [&, first](std::string_view) {
                                       if (!first->exchange(true)) ++started;
                                       return true;
                                     },
                                     .on_done = [&, first](absl::Status status) {
                                       // A stream that ends before the hold is over was not held.
                                       if (!status.ok() && !first->load()) ++failed;
                                     }}));
  }
  const auto deadline = Clock::now() + std::chrono::seconds(120);
  while (started.load() + failed.load() < streams && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const int held = started.load();
  int64_t peak = ResidentBytes(pid);
  const auto hold_end = Clock::now() + std::chrono::duration<double>(hold_s);
  while (Clock::now() < hold_end) {
    peak = std::max(peak, ResidentBytes(pid));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  for (auto& handle : handles) handle->Cancel();
  const nlohmann::json out = {{"streams", streams},
                              {"held", held},
                              {"failed", failed.load()},
                              {"first_failure_status", first_failure.load()},
                              {"rss_idle_bytes", idle},
                              {"rss_held_bytes", peak},
                              {"bytes_per_stream", held > 0 ? (peak - idle) / held : 0}};
  std::printf("%s\n", out.dump().c_str());
  return held == streams ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("Load for the gateway benchmark");
  app.require_subcommand(1);
  std::string url, key, model = "tiny";
  double rate = 1000, seconds = 10, hold = 3;
  int streams = 1000, pid = 0, max_tokens = 1000;
  for (CLI::App* sub : {app.add_subcommand("rate", "Fixed-rate latency"),
                        app.add_subcommand("streams", "Held SSE streams and memory per stream")}) {
    sub->add_option("--url", url, "Base URL (engine or gateway)")->required();
    sub->add_option("--key", key, "API key");
    sub->add_option("--model", model, "Model name");
  }
  CLI::App* rate_app = app.get_subcommand("rate");
  rate_app->add_option("--rate", rate, "Requests per second")->check(CLI::PositiveNumber);
  rate_app->add_option("--seconds", seconds, "Duration")->check(CLI::PositiveNumber);
  CLI::App* streams_app = app.get_subcommand("streams");
  streams_app->add_option("--streams", streams, "Streams held at once")->check(CLI::Range(1, 100000));
  streams_app->add_option("--pid", pid, "Process whose memory is measured")->required();
  streams_app->add_option("--hold", hold, "Seconds to hold every stream open")->check(CLI::NonNegativeNumber);
  streams_app->add_option("--max-tokens", max_tokens, "Tokens per stream (long enough to outlast the hold)");
  CLI11_PARSE(app, argc, argv);
  if (rate_app->parsed()) return Rate(url, key, model, rate, seconds);
  return Streams(url, key, model, streams, pid, hold, max_tokens);
}
