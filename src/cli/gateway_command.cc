// `triplane gateway`: the public OpenAI API on its own, following a control plane
// (`triplane control` or `serve`) for keys, config and instances by long poll.

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "cli/commands.h"
#include "cli/http_flags.h"
#include "common/build_info.h"
#include "common/http_client.h"
#include "common/http_server.h"
#include "common/http_types.h"
#include "common/metrics.h"
#include "common/process_metrics.h"
#include "common/signals.h"
#include "fmt/format.h"
#include "gateway/gateway.h"
#include "gateway/gateway_options.h"
#include "gateway/gateway_state.h"
#include "gateway/proxy.h"
#include "gateway/usage_shipper.h"
#include "gateway/web_assets.h"
#include "spdlog/spdlog.h"

namespace triplane::cli {
namespace {

struct GatewayFlags {
  common::HttpServerOptions http{.port = 8080};
  gateway::GatewayOptions gateway;
  std::string admin_key;
  double drain_timeout_s = 30;
  std::string limits = "memory";
  bool limits_fail_open = false;
  double hold_timeout_s = 60;
};

int GatewayError(const absl::Status& status) {
  std::fprintf(stderr, "triplane gateway: %s\n", std::string(status.message()).c_str());
  return 1;
}

int RunGateway(GatewayFlags& flags) {
  flags.gateway.host = flags.http.host;
  flags.gateway.port = flags.http.port;
  if (absl::Status status = flags.gateway.Validate(); !status.ok()) return GatewayError(status);
  // Before waiting for the control plane: an unusable TLS file is an error at once.
  if (absl::Status status = common::CheckTlsFiles(flags.http); !status.ok()) return GatewayError(status);
  if (flags.admin_key.empty()) {
    return GatewayError(absl::InvalidArgumentError(
        "an admin key is needed to follow the control plane: --admin-key or TRIPLANE_ADMIN_KEY"));
  }
  common::BlockTerminationSignals();
  common::MetricsRegistry& registry = common::MetricsRegistry::Default();
  common::RegisterProcessMetrics(registry);

  gateway::GatewayState state;
  gateway::StateFollower follower(flags.gateway.control_url, flags.admin_key, state);
  if (absl::Status status = follower.Start(absl::Seconds(30)); !status.ok()) return GatewayError(status);

  common::HttpRouter router;
  router.Add(common::HttpMethod::kGet, "/health",
             common::HttpSyncHandler([](const common::HttpRequest&) {
               return common::HttpResponse::Json(200, {{"status", "ready"}});
             }));
  common::AddMetricsRoute(router, registry);
  std::unique_ptr<common::HttpServer> server;  // destroyed after what forwards requests
  // A connection that reaches this gateway itself (a backend whose address leads back
  // here; the control plane does not know this process's port) is refused before a
  // request is forwarded: it would forward each request to itself.
  std::atomic<int> own_port{-1};
  common::HttpClient upstream_client(
      {.threads = 2, .refuse_peer = [&own_port, bound = common::CanonicalHost(flags.http.host)](
                                         std::string_view address, int port) {
         // This machine as a server bound to `bound` answers it: loopback, unspecified or
         // the bound address itself (common::CanonicalHost folds the first two together).
         if (port != own_port.load()) return false;
         const std::string host = common::CanonicalHost(address);
         return host == "127.0.0.1" || host == bound;
       }});
  gateway::Proxy proxy({.client = &upstream_client});
  absl::StatusOr<std::unique_ptr<gateway::LimitCounters>> limits = gateway::MakeLimitCounters(
      flags.limits, flags.limits_fail_open ? gateway::FailMode::kOpen : gateway::FailMode::kClosed);
  if (!limits.ok()) return GatewayError(limits.status());
  gateway::UsageShipper shipper({.control_url = flags.gateway.control_url, .admin_key = flags.admin_key});
  // Requests for a model scaled to zero wait here; the control plane learns of them by
  // POST /admin/v1/deployments/{name}/wake.
  auto holder = std::make_unique<gateway::RequestHolder>(
      state, gateway::RequestHolderOptions{.timeout = absl::Seconds(flags.hold_timeout_s),
              .wake = [&upstream_client, &flags](const std::string& deployment) {
                common::HttpClientRequest request{
                    .method = common::HttpMethod::kPost,
                    .url = fmt::format("{}/admin/v1/deployments/{}/wake", flags.gateway.control_url, deployment),
                    .body = "{}",
                    .timeout = std::chrono::milliseconds(2000)};
                request.headers.Set("authorization", "Bearer " + flags.admin_key);
                request.headers.Set("content-type", "application/json");
                absl::StatusOr<common::HttpResponse> response = upstream_client.Send(std::move(request));
                if (!response.ok() || response->status != 200) {
                  spdlog::warn("gateway: cannot wake deployment {}: {}", deployment,
                               response.ok() ? std::to_string(response->status)
                                             : std::string(response.status().message()));
                }
              }});
  gateway::Gateway api({.state = &state,
                        .proxy = &proxy,
                        .usage = [&shipper](gateway::UsageEvent event) { shipper.Record(event); },
                        .limits = limits->get(),
                        .holder = holder.get()});
  api.AddRoutes(router);
  gateway::AddWebRoutes(router);  // the chat page at /, the admin console at /admin
  server = std::make_unique<common::HttpServer>(flags.http, std::move(router));
  if (absl::Status status = server->Start(); !status.ok()) return GatewayError(status);
  own_port = server->port();
  const std::string url = ServerUrl(flags.http, server->port());
  spdlog::info("triplane {} gateway: serving on {} (control plane {})", common::GetBuildInfo().version,
               url, flags.gateway.control_url);
  std::printf("%s\n", url.c_str());
  std::fflush(stdout);

  const int signal_number = common::WaitForTerminationSignal();
  spdlog::info("signal {} received: draining for up to {}s", signal_number, flags.drain_timeout_s);
  holder->Close();  // answers held requests (503) rather than hold the drain up
  server->Shutdown(std::chrono::milliseconds(static_cast<int64_t>(flags.drain_timeout_s * 1000)));
  shipper.Stop();  // sends what is queued
  return 0;
}

}  // namespace

Command AddGatewayCommand(CLI::App& root) {
  auto flags = std::make_shared<GatewayFlags>();
  CLI::App* app = root.add_subcommand(
      "gateway", "Business plane: the OpenAI-compatible API with API keys, routing to engines");
  AddHttpServerFlags(*app, flags->http);
  app->add_option("--control", flags->gateway.control_url, "URL of the control plane to follow")
      ->capture_default_str();
  app->add_option("--admin-key", flags->admin_key, "Admin key for the control plane's state feed");
  app->add_option("--limits", flags->limits,
                  "Where rate-limit counters live: memory (this process) or redis://HOST:PORT "
                  "(shared by gateways)")
      ->capture_default_str();
  app->add_flag("--limits-fail-open", flags->limits_fail_open,
                "When Redis is down, allow requests uncounted (default: refuse with 503)");
  app->add_option("--hold-timeout", flags->hold_timeout_s,
                  "Seconds a request for a model scaled to zero waits for an instance before a 503")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app->add_option("--drain-timeout", flags->drain_timeout_s,
                  "Seconds to let in-flight requests finish on SIGTERM/SIGINT")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  return {app, [flags] { return RunGateway(*flags); }};
}

}  // namespace triplane::cli
