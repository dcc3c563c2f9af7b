// `triplane serve`: the all-in-one process for one machine. At this stage it runs the
// shared HTTP runtime with health and metrics; the control plane, gateway and engines
// join it as their issues land (see README "What works today").

#include <chrono>
#include <cstdio>

#include "cli/commands.h"
#include "cli/http_flags.h"
#include "common/build_info.h"
#include "common/http_server.h"
#include "common/metrics.h"
#include "common/process_metrics.h"
#include "common/signals.h"
#include "common/strings.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace triplane::cli {

namespace {

struct ServeOptions {
  common::HttpServerOptions http{.port = 8080};
  double drain_timeout_s = 30;
};

common::HttpRouter ServeRoutes(common::MetricsRegistry& registry) {
  common::HttpRouter router;
  router.Add(common::HttpMethod::kGet, "/health",
             common::HttpSyncHandler([](const common::HttpRequest&) {
               return common::HttpResponse::Json(200, {{"status", "ready"}});
             }));
  common::AddMetricsRoute(router, registry);
  return router;
}

int RunServe(const ServeOptions& options) {
  // Before any server thread exists, so that only WaitForTerminationSignal() sees them.
  common::BlockTerminationSignals();
  common::MetricsRegistry& registry = common::MetricsRegistry::Default();
  common::RegisterProcessMetrics(registry);
  const common::BuildInfo& build = common::GetBuildInfo();
  registry.AddGauge("triplane_build_info", "Always 1; labels say which build is running.",
                    {"version", "commit"})
      .WithLabels({build.version, build.git_commit})
      .Set(1);

  common::HttpServer server(options.http, ServeRoutes(registry));
  if (absl::Status status = server.Start(); !status.ok()) {
    std::fprintf(stderr, "triplane serve: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  spdlog::info("triplane {} serving on http://{}:{} (health: /health, metrics: /metrics)",
               build.version, options.http.host, server.port());
  int signal_number = common::WaitForTerminationSignal();
  spdlog::info("signal {} received: draining for up to {}s", signal_number, options.drain_timeout_s);
  server.Shutdown(std::chrono::milliseconds(static_cast<int64_t>(options.drain_timeout_s * 1000)));
  spdlog::info("stopped");
  return 0;
}

}  // namespace

Command AddServeCommand(CLI::App& root) {
  auto options = std::make_shared<ServeOptions>();
  CLI::App* app = root.add_subcommand(
      "serve", "Run Triplane on one machine: API, admin and metrics on one port");
  AddHttpServerFlags(*app, options->http);
  app->add_option("--drain-timeout", options->drain_timeout_s,
                  "Seconds to let in-flight requests finish on SIGTERM/SIGINT")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  return {app, [options] { return RunServe(*options); }};
}

}  // namespace triplane::cli
