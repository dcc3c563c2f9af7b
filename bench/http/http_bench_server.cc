// http_bench_server: the shared HTTP runtime (common/http_server.h) behind trivial
// handlers, for bench/http/run.sh to load with wrk next to a peer server.
//
//   GET /hello          200 "hello" (text/plain)
//   GET /json           200 a small JSON object
//   GET /sse?events=N   an SSE stream of N small `data:` events, then `data: [DONE]`
//
// The SSE events are written from the handler itself: each one is queued as its own
// chunk and flushed on its own, as a token stream from the scheduler would be. Logging
// is at warn so that per-request lines never dominate. SIGINT/SIGTERM stop it cleanly.

#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "common/http_server.h"
#include "common/logging.h"
#include "common/signals.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace triplane::bench {
namespace {

// Upper bound on events per SSE request: all of them are queued at once, so this
// bounds the memory one request can take (well under max_buffered_bytes).
constexpr int kMaxSseEvents = 100'000;
constexpr int kDefaultSseEvents = 16;

// The N-th event's payload. bench/http/run.sh writes the same bytes into the static
// file that the peer serves, so keep the two in step.
std::string EventPayload(int index) { return "{\"i\":" + std::to_string(index) + "}"; }

// Parses the `events` query parameter: absent means kDefaultSseEvents; anything but an
// integer in [0, kMaxSseEvents] is nullopt (answered with 400).
std::optional<int> ParseEventCount(const common::HttpRequest& request) {
  const std::optional<std::string> text = request.QueryParam("events");
  if (!text.has_value()) return kDefaultSseEvents;
  int count = 0;
  const char* end = text->data() + text->size();
  const auto [ptr, ec] = std::from_chars(text->data(), end, count);
  if (ec != std::errc() || ptr != end || count < 0 || count > kMaxSseEvents) {
    return std::nullopt;
  }
  return count;
}

common::HttpRouter BenchRoutes() {
  common::HttpRouter router;
  router.Add(common::HttpMethod::kGet, "/hello",
             common::HttpSyncHandler([](const common::HttpRequest&) {
               return common::HttpResponse::Text(200, "hello");
             }));
  router.Add(common::HttpMethod::kGet, "/json",
             common::HttpSyncHandler([](const common::HttpRequest&) {
               return common::HttpResponse::Json(
                   200, {{"object", "bench"}, {"id", 42}, {"ok", true}, {"text", "hello"}});
             }));
  router.Add(common::HttpMethod::kGet, "/sse",
             common::HttpHandler([](std::shared_ptr<common::Responder> responder) {
               const std::optional<int> events = ParseEventCount(responder->request());
               if (!events.has_value()) {
                 responder->Send(common::HttpResponse::Text(
                     400, "events must be an integer in [0, " +
                              std::to_string(kMaxSseEvents) + "]\n"));
                 return;
               }
               responder->StartSse();
               for (int i = 0; i < *events; ++i) {
                 if (!responder->WriteSseData(EventPayload(i))) return;  // client left
               }
               responder->WriteSseData("[DONE]");
               responder->Finish();
             }));
  return router;
}

int Run(const common::HttpServerOptions& options) {
  // Before any server thread exists, so that only WaitForTerminationSignal() sees them.
  common::BlockTerminationSignals();
  common::HttpServer server(options, BenchRoutes());
  if (const absl::Status status = server.Start(); !status.ok()) {
    std::fprintf(stderr, "http_bench_server: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  // run.sh waits for this line (on stdout, unlike the logs) before it starts wrk.
  std::printf("listening on http://%s:%u\n", options.host.c_str(),
              static_cast<unsigned>(server.port()));
  std::fflush(stdout);
  common::WaitForTerminationSignal();
  server.Shutdown(std::chrono::milliseconds(1000));
  return 0;
}

int Main(int argc, char** argv) {
  common::HttpServerOptions options{.port = 0, .threads = 2};
  std::string log_level = "warn";
  CLI::App app("Triplane HTTP server benchmark target (see bench/http/run.sh)");
  app.add_option("--host", options.host, "Address to listen on")->capture_default_str();
  app.add_option("--port", options.port, "TCP port (0 picks a free one)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  app.add_option("--threads", options.threads, "HTTP I/O threads (0 = automatic)")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error|critical|off")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  if (const absl::Status status = common::InitLogging({.level = log_level}); !status.ok()) {
    std::fprintf(stderr, "http_bench_server: %s\n", std::string(status.message()).c_str());
    return 2;
  }
  return Run(options);
}

}  // namespace
}  // namespace triplane::bench

int main(int argc, char** argv) {
  try {
    return triplane::bench::Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "http_bench_server: fatal: %s\n", e.what());
  } catch (...) {
    std::fputs("http_bench_server: fatal: unknown exception\n", stderr);
  }
  return 1;
}
