// Soak: `triplane serve` and its engine under mixed traffic — plain completions,
// streamed chats, and streams the client abandons after a few events — for
// TRIPLANE_SOAK_SECONDS (40 in CI; bench/soak runs it for longer). Every process's
// resident memory, open descriptors and threads are sampled each second from /proc;
// they must stay bounded, and the engine must be back to no running request and no KV
// block in use once the traffic stops. Latency is reported, never asserted.

#include <dirent.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/http_client.h"
#include "common/sse.h"
#include "fmt/format.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "testing/control_plane_fixture.h"
#include "testing/sanitizer.h"

namespace triplane {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::ReadWholeFile;
using Clock = std::chrono::steady_clock;

struct ProcessSample {
  int64_t rss_kb = 0;
  int64_t fds = 0;
  int64_t threads = 0;
};

int64_t StatusField(const std::string& status, const std::string& name) {
  const size_t at = status.find("\n" + name + ":");
  return at == std::string::npos ? 0 : std::atoll(status.c_str() + at + name.size() + 2);
}

ProcessSample Sample(int64_t pid) {
  const std::string status = "\n" + ReadWholeFile(fmt::format("/proc/{}/status", pid));
  ProcessSample s{.rss_kb = StatusField(status, "VmRSS"), .threads = StatusField(status, "Threads")};
  if (DIR* dir = ::opendir(fmt::format("/proc/{}/fd", pid).c_str())) {
    while (const dirent* entry = ::readdir(dir)) s.fds += entry->d_name[0] != '.';
    ::closedir(dir);
  }
  return s;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

// A value of `name` (no labels) in a Prometheus text page; -1 when absent.
double MetricValue(const std::string& page, const std::string& name) {
  std::istringstream lines(page);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.starts_with(name + " ") || line.starts_with(name + "{")) {
      return std::atof(line.c_str() + line.rfind(' ') + 1);
    }
  }
  return -1;
}

class SoakTest : public testing::ControlPlaneTest {};

TEST_F(SoakTest, MixedTrafficWithDisconnectsKeepsResourcesBounded) {
  const char* env = std::getenv("TRIPLANE_SOAK_SECONDS");
  const int seconds = env != nullptr ? std::max(10, std::atoi(env)) : 40;
  ASSERT_NO_FATAL_FAILURE(StartServe());
  ChatUntilAnswered("demo");
  json instances = Instances("demo");
  ASSERT_EQ(instances.size(), 1u);
  const int64_t engine_pid = instances[0].value("pid", int64_t{0});
  const std::string engine_url = instances[0].value("url", "");
  ASSERT_GT(engine_pid, 0);
  const std::string key = CliJson({"keys", "create", "soak"})["key"];

  std::atomic<bool> stop{false};
  std::mutex mu;
  std::vector<double> latency_first, latency_second;  // seconds, by half of the run
  int64_t requests = 0, disconnects = 0, failures = 0;
  std::vector<std::string> failure_notes;
  const Clock::time_point start = Clock::now(), half = start + std::chrono::seconds(seconds / 2);

  std::vector<std::thread> clients;
  for (int c = 0; c < 6; ++c) {
    clients.emplace_back([&, c] {
      common::HttpClient http;
      std::mt19937 rng(1234 + c);
      while (!stop.load()) {
        const int kind = static_cast<int>(rng() % 10);  // 0-3 plain, 4-7 streamed, 8-9 abandoned
        const int max_tokens = 4 + static_cast<int>(rng() % 29);
        const bool stream = kind >= 4;
        json body = {{"model", "demo"}, {"max_tokens", max_tokens}, {"stream", stream}};
        std::string path = "/v1/completions";
        if (stream) {
          path = "/v1/chat/completions";
          body["messages"] = {{{"role", "user"}, {"content", fmt::format("soak {} {}", c, rng() % 1000)}}};
        } else {
          body["prompt"] = fmt::format("soak {} {}", c, rng() % 1000);
        }
        common::HttpClientRequest request{.method = common::HttpMethod::kPost, .url = url_ + path, .body = body.dump()};
        request.headers.Set("authorization", "Bearer " + key);
        const Clock::time_point t0 = Clock::now();
        bool ok = false, abandoned = false;
        std::string note;
        if (!stream) {
          auto response = http.Send(request);
          ok = response.ok() && response->status == 200;
          if (!ok) note = response.ok() ? response->body : response.status().ToString();
        } else {
          const int keep = kind >= 8 ? 1 + static_cast<int>(rng() % 3) : -1;
          int events = 0;
          bool done = false;
          absl::Status s = http.ReadSse(request, [&](const common::SseEvent& event) {
            if (event.data == "[DONE]") done = true;
            return keep < 0 || ++events < keep;
          });
          abandoned = keep > 0 && !done;
          ok = abandoned || (s.ok() && done);
          if (!ok) note = s.ToString();
        }
        const double latency = std::chrono::duration<double>(Clock::now() - t0).count();
        std::lock_guard lock(mu);
        ++requests;
        if (abandoned) {
          ++disconnects;
        } else if (!ok) {
          ++failures;
          if (failure_notes.size() < 5) failure_notes.push_back(note);
        } else {
          (t0 < half ? latency_first : latency_second).push_back(latency);
        }
      }
    });
  }

  // One sample per process per second; the first fifth of the run is warm-up.
  struct Row {
    ProcessSample serve, engine;
  };
  std::vector<Row> samples;
  while (Clock::now() - start < std::chrono::seconds(seconds)) {
    std::this_thread::sleep_for(1s);
    samples.push_back({Sample(serve_->pid()), Sample(engine_pid)});
  }
  stop = true;
  for (std::thread& t : clients) t.join();

  EXPECT_EQ(failures, 0) << (failure_notes.empty() ? "" : failure_notes[0]);
  EXPECT_GT(disconnects, 0);
  ASSERT_GE(samples.size(), 5u);

  // At rest: no running request and no KV block in use in the engine.
  double running = -1, kv = -1;
  for (int i = 0; i < 300; ++i) {
    auto metrics = http_.Send({.url = engine_url + "/metrics"});
    if (metrics.ok()) {
      running = MetricValue(metrics->body, "triplane_num_requests_running");
      kv = MetricValue(metrics->body, "triplane_kv_cache_usage_perc");
      if (running == 0 && kv == 0) break;
    }
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(running, 0);
  EXPECT_EQ(kv, 0);

  // Bounded: the end of the run holds no more than the warm part of it plus slack.
  const size_t warm = samples.size() / 5;
  auto check = [&](const char* who, auto field, int64_t slack, double factor) {
    int64_t warm_max = 0;
    for (size_t i = warm; i < samples.size() / 2; ++i) warm_max = std::max(warm_max, field(samples[i]));
    const int64_t last = field(samples.back());
    EXPECT_LE(last, static_cast<int64_t>(static_cast<double>(warm_max) * factor) + slack)
        << who << ": " << warm_max << " in the first half, " << last << " at the end";
    return std::pair(warm_max, last);
  };
  // Under AddressSanitizer RSS climbs until its quarantine of freed memory is full, so
  // only the release build bounds it (leaks are LeakSanitizer's there, at exit).
  const int64_t rss_slack = testing::kAddressSanitizer ? int64_t{1} << 40 : 16 << 10;
  auto serve_rss = check("serve RSS (kB)", [](const Row& r) { return r.serve.rss_kb; }, rss_slack, 1.25);
  auto engine_rss = check("engine RSS (kB)", [](const Row& r) { return r.engine.rss_kb; }, rss_slack, 1.25);
  auto serve_fds = check("serve fds", [](const Row& r) { return r.serve.fds; }, 8, 1.0);
  auto engine_fds = check("engine fds", [](const Row& r) { return r.engine.fds; }, 8, 1.0);
  auto serve_threads = check("serve threads", [](const Row& r) { return r.serve.threads; }, 2, 1.0);
  auto engine_threads = check("engine threads", [](const Row& r) { return r.engine.threads; }, 2, 1.0);

  std::printf(
      "[ figures ] soak %d s: %lld requests (%lld abandoned mid-stream, %lld failed); latency p50/p99 "
      "%.1f/%.1f ms in the first half, %.1f/%.1f ms in the second; serve RSS %lld -> %lld kB, fds %lld -> "
      "%lld, threads %lld -> %lld; engine RSS %lld -> %lld kB, fds %lld -> %lld, threads %lld -> %lld\n",
      seconds, static_cast<long long>(requests), static_cast<long long>(disconnects),
      static_cast<long long>(failures), 1e3 * Percentile(latency_first, 0.5), 1e3 * Percentile(latency_first, 0.99),
      1e3 * Percentile(latency_second, 0.5), 1e3 * Percentile(latency_second, 0.99),
      static_cast<long long>(serve_rss.first), static_cast<long long>(serve_rss.second),
      static_cast<long long>(serve_fds.first), static_cast<long long>(serve_fds.second),
      static_cast<long long>(serve_threads.first), static_cast<long long>(serve_threads.second),
      static_cast<long long>(engine_rss.first), static_cast<long long>(engine_rss.second),
      static_cast<long long>(engine_fds.first), static_cast<long long>(engine_fds.second),
      static_cast<long long>(engine_threads.first), static_cast<long long>(engine_threads.second));
}

}  // namespace
}  // namespace triplane
