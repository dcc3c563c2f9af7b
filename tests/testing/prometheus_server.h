#pragma once

// A real Prometheus server for tests: /usr/bin/prometheus (Debian package `prometheus`)
// scraping one target every second, its config and TSDB in a temp dir, its web API on a
// free 127.0.0.1 port; stopped and removed by the destructor.
//
// A missing installation is an error with instructions (scripts/setup installs it),
// never a skip. $TRIPLANE_PROMETHEUS overrides the binary.

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/http_client.h"
#include "common/json.h"
#include "common/subprocess.h"
#include "fmt/format.h"
#include "testing/server_process_util.h"

namespace triplane::testing {

class PrometheusServer {
 public:
  // Starts a server scraping `target` ("127.0.0.1:PORT", path /metrics) every second,
  // keeping the target's labels (honor_labels, as deploy/prometheus.yml does).
  // FailedPrecondition with instructions when prometheus is missing; Internal with its
  // log when it is not ready within 60 s.
  static absl::StatusOr<std::unique_ptr<PrometheusServer>> Start(const std::string& target) {
    std::filesystem::path bin = "/usr/bin/prometheus";
    if (const char* env = std::getenv("TRIPLANE_PROMETHEUS"); env != nullptr && *env != '\0') bin = env;
    if (!std::filesystem::exists(bin)) {
      return absl::FailedPreconditionError(fmt::format(
          "{} not found: run scripts/setup, which installs the Debian package `prometheus`, or set "
          "TRIPLANE_PROMETHEUS",
          bin.string()));
    }
    std::string pattern = (std::filesystem::temp_directory_path() / "triplane-prometheus-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) return absl::InternalError("mkdtemp failed");
    std::unique_ptr<PrometheusServer> server(new PrometheusServer(pattern));
    const std::filesystem::path config = server->dir_ / "prometheus.yml";
    std::ofstream(config) << fmt::format(
        "global:\n"
        "  scrape_interval: 1s\n"
        "  evaluation_interval: 1s\n"
        "scrape_configs:\n"
        "  - job_name: triplane\n"
        "    honor_labels: true\n"
        "    static_configs:\n"
        "      - targets: ['{}']\n",
        target);
    absl::Status last;
    for (int attempt = 0; attempt < 5; ++attempt) {  // a free port may be taken meanwhile
      const int port = FreeLoopbackPort();
      if (port <= 0) return absl::InternalError("no free port");
      last = server->StartOnPort(bin, config, port);
      if (last.ok()) return server;
    }
    return last;
  }

  ~PrometheusServer() {
    Stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  PrometheusServer(const PrometheusServer&) = delete;
  PrometheusServer& operator=(const PrometheusServer&) = delete;

  std::string Url() const { return fmt::format("http://127.0.0.1:{}", port_); }

  // SIGTERM (Prometheus shuts down cleanly), SIGKILL after 20 s.
  void Stop() {
    if (process_ != nullptr) process_->Terminate(std::chrono::seconds(20));
    process_.reset();
  }

  // GET /api/v1/query?query=PROMQL: the `data.result` array of a successful answer.
  absl::StatusOr<nlohmann::json> Query(const std::string& promql) {
    absl::StatusOr<common::HttpResponse> response =
        client_.Send({.url = Url() + "/api/v1/query?query=" + common::PercentEncode(promql)});
    if (!response.ok()) return response.status();
    absl::StatusOr<nlohmann::json> body = common::ParseJson(response->body);
    if (response->status != 200 || !body.ok() || body->value("status", "") != "success") {
      return absl::InternalError(fmt::format("query {}: HTTP {}: {}", promql, response->status, response->body));
    }
    return (*body)["data"]["result"];
  }

  std::string LogTail() const { return FileTail((dir_ / "prometheus.log").string()); }

 private:
  explicit PrometheusServer(std::filesystem::path dir) : dir_(std::move(dir)) {}

  absl::Status StartOnPort(const std::filesystem::path& bin, const std::filesystem::path& config, int port) {
    Stop();
    port_ = port;
    const std::string log = (dir_ / "prometheus.log").string();
    auto process = common::Subprocess::Spawn(
        {.argv = {bin.string(), "--config.file=" + config.string(),
                  "--storage.tsdb.path=" + (dir_ / "data").string(),
                  fmt::format("--web.listen-address=127.0.0.1:{}", port)},
         .stdout_path = log,
         .stderr_path = log});
    if (!process.ok()) return process.status();
    process_ = *std::move(process);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      absl::StatusOr<common::HttpResponse> ready = client_.Send({.url = Url() + "/-/ready"});
      if (ready.ok() && ready->status == 200) return absl::OkStatus();
      if (process_->Poll().has_value()) break;  // exited: the port was taken, most likely
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    Stop();
    return absl::InternalError(fmt::format("prometheus on port {} did not start; log:\n{}", port, FileTail(log)));
  }

  const std::filesystem::path dir_;
  std::unique_ptr<common::Subprocess> process_;
  int port_ = 0;
  common::HttpClient client_{{.connect_timeout = std::chrono::milliseconds(2000),
                              .request_timeout = std::chrono::milliseconds(10000)}};
};

}  // namespace triplane::testing
