// `triplane serve` (all three planes on one machine) and `triplane control` (the
// management plane alone).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>

#include "cli/commands.h"
#include "cli/gguf_summary.h"
#include "cli/http_flags.h"
#include "common/build_info.h"
#include "common/http_client.h"
#include "common/http_server.h"
#include "common/metrics.h"
#include "common/process_metrics.h"
#include "common/signals.h"
#include "common/status_macros.h"
#include "control/control_plane.h"
#include "control/usage_recorder.h"
#include "engine/model/random_model.h"
#include "fmt/format.h"
#include "gateway/gateway.h"
#include "gateway/gateway_state.h"
#include "gateway/proxy.h"
#include "gateway/web_assets.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace triplane::cli {

namespace {

// Flags shared by `serve` and `control`.
struct PlaneFlags {
  common::HttpServerOptions http;
  std::string data_dir = "./triplane-data";
  std::string store = "sqlite";
  double drain_timeout_s = 30;
  int32_t local_cores = 0;
  int64_t local_memory = 0;
  int32_t engine_threads = 1;
  bool demo = true;
  std::string limits = "memory";
  bool limits_fail_open = false;
  double hold_timeout_s = 60;
};

void AddPlaneFlags(CLI::App& app, PlaneFlags& flags) {
  AddHttpServerFlags(app, flags.http);
  app.add_option("--data-dir", flags.data_dir,
                 "Directory of the store, model files, instance logs and admin.key")
      ->capture_default_str();
  app.add_option("--store", flags.store,
                 "State store: sqlite (DATA_DIR/triplane.db), sqlite:PATH, or postgres://...")
      ->capture_default_str();
  app.add_option("--drain-timeout", flags.drain_timeout_s,
                 "Seconds to let in-flight requests (and engines) finish on SIGTERM/SIGINT")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--local-cores", flags.local_cores,
                 "CPU cores engines may use in all (0 = the cores this process may run on)")
      ->check(CLI::Range(0, 1 << 16))
      ->capture_default_str();
  app.add_option("--local-memory", flags.local_memory,
                 "Memory engines may use in all, units allowed (0 = 90% of MemTotal)")
      ->transform(CLI::AsSizeValue(false))
      ->capture_default_str();
  app.add_option("--engine-threads", flags.engine_threads,
                 "Compute threads of an engine whose deployment does not say")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
}

// Fails fast, before the control plane touches the data dir or starts engines, when the
// port is taken (the server binds for real later; this is only the early, clear error).
absl::Status ProbePort(const common::HttpServerOptions& http) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(http.port);
  if (http.port == 0 || ::inet_pton(AF_INET, http.host.c_str(), &address.sin_addr) != 1) {
    return absl::OkStatus();  // a free port, or a name/IPv6 address: the server checks
  }
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::OkStatus();
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  const bool taken = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0;
  const int error = errno;
  ::close(fd);
  if (!taken) return absl::OkStatus();
  return absl::UnavailableError(
      fmt::format("cannot listen on {}:{}: {}", http.host, http.port, std::strerror(error)));
}

std::string SelfExecutable() {
  std::error_code error;
  std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", error);
  return error ? std::string() : self.string();
}

// The gateway's proxy once it exists: the autoscaler's count of requests in flight.
using ProxySlot = std::shared_ptr<std::atomic<gateway::Proxy*>>;

absl::StatusOr<std::unique_ptr<control::ControlPlane>> StartControlPlane(const PlaneFlags& flags,
                                                                         ProxySlot proxy) {
  const char* admin_key = std::getenv("TRIPLANE_ADMIN_KEY");
  control::ControlPlaneOptions options{
      .data_dir = flags.data_dir,
      .store = flags.store,
      .admin_key = admin_key != nullptr ? admin_key : "",
      .read_gguf = ReadGgufSummary,
      .local = {.engine_binary = SelfExecutable(),
                .cores = flags.local_cores,
                .memory_bytes = flags.local_memory,
                .default_threads = flags.engine_threads},
      .reconciler = {.drain_timeout = absl::Seconds(flags.drain_timeout_s)},
      .metrics = &common::MetricsRegistry::Default(),  // /metrics re-exports the engines'
  };
  if (proxy != nullptr) {
    options.outstanding = [proxy](const std::string& instance) -> int64_t {
      gateway::Proxy* p = proxy->load();
      return p != nullptr ? p->Outstanding(instance) : 0;
    };
  }
  return control::ControlPlane::Start(std::move(options));
}

// The demo model, registered and deployed once per data dir: a tiny random-weight model
// with a byte-level vocabulary, so that the API answers within seconds of a first start.
absl::Status EnsureDemo(control::ControlPlane& plane, const PlaneFlags& flags) {
  control::Store& store = plane.store();
  if (store.GetConfig("serve.demo").ok()) return absl::OkStatus();
  absl::StatusOr<std::vector<control::Model>> models = store.ListModels();
  if (!models.ok()) return models.status();
  if (models->empty()) {
    const std::string source = (std::filesystem::path(flags.data_dir) / ".demo.gguf").string();
    engine::RandomModelOptions random{.architecture = "llama",
                                      .size = "tiny",
                                      .type = engine::GgmlType::kQ8_0,
                                      .seed = 1};
    if (absl::Status status = engine::WriteRandomModel(random, source); !status.ok()) return status;
    absl::StatusOr<control::ModelVersion> version = plane.repository().AddFromPath(
        {.model = "demo",
         .version = "1",
         .description = "Random weights, not a language model: a demonstration of the API "
                        "that answers with random bytes",
         .path = source},
        {.actor = "system"});
    std::filesystem::remove(source);
    if (!version.ok()) return version.status();
    absl::StatusOr<control::Deployment> deployment = store.CreateDeployment(
        "demo", {.model = "demo", .version = "1", .replicas = 1}, {.actor = "system"});
    if (!deployment.ok()) return deployment.status();
    plane.reconciler().Trigger();
    if (absl::Status status = plane.gateway_feed().RefreshNow(); !status.ok()) return status;
  }
  return store.SetConfig("serve.demo", {{"registered", !models->empty() ? false : true}},
                         {.actor = "system"})
      .status();
}

control::UsageRecord ToUsageRecord(gateway::UsageEvent event) {
  const gateway::ForwardResult& r = event.result;
  return {.request_id = std::move(event.request_id),
          .time = absl::Now(),  // finished now
          .key_id = std::move(event.key_id),
          .team = std::move(event.team),
          .model = std::move(event.model),
          .version = r.version,
          .deployment = r.deployment,
          .instance = std::move(event.instance),
          .endpoint = std::move(event.endpoint),
          .status = r.status,
          .stream = r.stream,
          .prompt_tokens = r.prompt_tokens,
          .completion_tokens = r.completion_tokens,
          .cached_tokens = r.cached_tokens,
          .latency_seconds = r.latency_seconds,
          .ttft_seconds = r.ttft_seconds,
          .cost_micros = event.cost_micros,
          .error = r.error};
}

// Adds the tokens used since the start of today and of this month (UTC), per key and per
// team, to the counters' day and month windows.
absl::Status SeedBudgets(control::Store& store, gateway::LimitCounters& counters) {
  const absl::Time now = absl::Now();
  const absl::CivilDay today = absl::ToCivilDay(now, absl::UTCTimeZone());
  const absl::Time day_start = absl::FromCivil(today, absl::UTCTimeZone());
  const absl::Time month_start = absl::FromCivil(absl::CivilMonth(today), absl::UTCTimeZone());
  for (auto [group, prefix] : {std::pair{control::UsageGroupBy::kKey, "key:"},
                               std::pair{control::UsageGroupBy::kTeam, "team:"}}) {
    absl::StatusOr<std::vector<control::UsageTotals>> month = store.SummarizeUsage({.from = month_start}, group);
    if (!month.ok()) return month.status();
    absl::StatusOr<std::vector<control::UsageTotals>> day = store.SummarizeUsage({.from = day_start}, group);
    if (!day.ok()) return day.status();
    std::map<std::string, int64_t> today_tokens;
    for (const control::UsageTotals& t : *day) today_tokens[t.group] = t.prompt_tokens + t.completion_tokens;
    for (const control::UsageTotals& t : *month) {
      if (t.group.empty()) continue;  // no key / no team
      const std::string scope = prefix + t.group;
      const int64_t on_day = today_tokens[t.group];
      const int64_t earlier = t.prompt_tokens + t.completion_tokens - on_day;
      // Today's tokens count for the day and the month; earlier ones for the month only
      // (charged at the month's first instant, whose minute and day are long over).
      if (on_day > 0) TP_RETURN_IF_ERROR(counters.AddUsage(scope, on_day, now));
      if (earlier > 0 && day_start > month_start) {
        TP_RETURN_IF_ERROR(counters.AddUsage(scope, earlier, month_start));
      }
    }
  }
  return absl::OkStatus();
}

void RegisterBuildInfo(common::MetricsRegistry& registry) {
  common::RegisterProcessMetrics(registry);
  const common::BuildInfo& build = common::GetBuildInfo();
  registry.AddGauge("triplane_build_info", "Always 1; labels say which build is running.",
                    {"version", "commit"})
      .WithLabels({build.version, build.git_commit})
      .Set(1);
}

// Runs the control plane (and, for serve, the public API) until SIGTERM/SIGINT.
int RunPlanes(const PlaneFlags& flags, bool with_public_api) {
  const char* name = with_public_api ? "serve" : "control";
  // Before any thread exists, so that only WaitForTerminationSignal() sees the signals.
  common::BlockTerminationSignals();
  common::MetricsRegistry& registry = common::MetricsRegistry::Default();
  RegisterBuildInfo(registry);

  // Before the control plane touches the data dir or starts engines: a taken port or an
  // unusable TLS file is a one-line error at once.
  absl::Status early = ProbePort(flags.http);
  if (early.ok()) early = common::CheckTlsFiles(flags.http);
  if (!early.ok()) {
    std::fprintf(stderr, "triplane %s: %s\n", name, std::string(early.message()).c_str());
    return 1;
  }
  // Set below once the proxy exists; the control plane is shut down before it goes.
  ProxySlot proxy_slot = with_public_api ? std::make_shared<std::atomic<gateway::Proxy*>>(nullptr) : nullptr;
  absl::StatusOr<std::unique_ptr<control::ControlPlane>> plane = StartControlPlane(flags, proxy_slot);
  if (!plane.ok()) {
    std::fprintf(stderr, "triplane %s: %s\n", name, std::string(plane.status().message()).c_str());
    return 1;
  }
  if (with_public_api && flags.demo) {
    if (absl::Status status = EnsureDemo(**plane, flags); !status.ok()) {
      spdlog::error("the demo model could not be set up: {}", std::string(status.message()));
    }
  }

  common::HttpRouter router;
  router.Add(common::HttpMethod::kGet, "/health",
             common::HttpSyncHandler([](const common::HttpRequest&) {
               return common::HttpResponse::Json(200, {{"status", "ready"}});
             }));
  common::AddMetricsRoute(router, registry);
  (*plane)->AddRoutes(router);
  gateway::AddWebRoutes(router);  // the chat page at /, the admin console at /admin
  // Declared before what forwards requests, so that it is destroyed after them: the
  // proxy's upstream callbacks hold responders of this server's exchanges.
  std::unique_ptr<common::HttpServer> server;
  // A connection that reaches this server itself (an external backend whose host name
  // resolves here, which the admin API's literal check cannot see) is refused before a
  // request is forwarded: it would forward each request to itself.
  control::ControlPlane* self = plane->get();
  common::HttpClient upstream_client({.threads = 2, .refuse_peer = [self](std::string_view address, int port) {
                                        return self->repository().IsOwnAddress(address, port);
                                      }});
  // The gateway follows the control plane's state in-process (a split gateway does the
  // same over GET /admin/v1/gateway/state).
  gateway::GatewayState state;
  (*plane)->gateway_feed().Subscribe(
      [&state](std::shared_ptr<const nlohmann::json> snapshot) { state.Apply(*snapshot); });
  gateway::Proxy proxy({.client = &upstream_client});
  if (proxy_slot != nullptr) proxy_slot->store(&proxy);
  absl::StatusOr<std::unique_ptr<gateway::LimitCounters>> limits = gateway::MakeLimitCounters(
      flags.limits, flags.limits_fail_open ? gateway::FailMode::kOpen : gateway::FailMode::kClosed);
  if (!limits.ok()) {
    std::fprintf(stderr, "triplane %s: --limits: %s\n", name, std::string(limits.status().message()).c_str());
    (*plane)->Shutdown(true);
    return 1;
  }
  if (flags.limits == "memory" || flags.limits.empty()) {
    // In-process counters start at zero: seed today's and this month's token budgets from
    // the ledger, so that a restart does not hand out a budget again. (Redis keeps its own.)
    if (absl::Status status = SeedBudgets((*plane)->store(), **limits); !status.ok()) {
      spdlog::warn("limits: budgets not seeded from the usage ledger: {}", std::string(status.message()));
    }
  }
  // Usage rows go to the ledger in batches; Stop() below writes what is queued.
  control::UsageRecorder recorder((*plane)->store());
  // Requests for a model scaled to zero wait here while the autoscaler starts an instance.
  control::ControlPlane* raw_plane = plane->get();
  auto holder = std::make_unique<gateway::RequestHolder>(
      state, gateway::RequestHolderOptions{.timeout = absl::Seconds(flags.hold_timeout_s),
              .wake = [raw_plane](const std::string& deployment) { raw_plane->autoscaler().Wake(deployment); }});
  gateway::Gateway gateway({.state = &state,
                            .proxy = &proxy,
                            .usage = [&recorder](gateway::UsageEvent event) {
                              recorder.Record(ToUsageRecord(std::move(event)));
                            },
                            .limits = limits->get(),
                            .holder = holder.get()});
  if (with_public_api) gateway.AddRoutes(router);

  server = std::make_unique<common::HttpServer>(flags.http, std::move(router));
  if (absl::Status status = server->Start(); !status.ok()) {
    std::fprintf(stderr, "triplane %s: %s\n", name, std::string(status.message()).c_str());
    (*plane)->Shutdown(true);
    return 1;
  }
  // Pulls from this server's own address are refused; with --port 0 the port is known
  // only now (before any request can come).
  for (const std::string& host : {flags.http.host, std::string("127.0.0.1"), std::string("localhost")}) {
    (*plane)->repository().RefusePullsFrom(fmt::format("{}:{}", host, server->port()));
  }
  const std::string url = ServerUrl(flags.http, server->port());
  spdlog::info("triplane {} {}: serving on {} (admin API /admin/v1/, metrics /metrics)",
               common::GetBuildInfo().version, name, url);
  // The one place a secret is shown: on the terminal, once, never in the log.
  if (const auto& key = (*plane)->new_admin_key()) {
    std::printf("Admin key (shown once; also in %s): %s\n", (*plane)->admin_key_file().c_str(),
                key->c_str());
  }
  std::printf("%s\n", url.c_str());
  std::fflush(stdout);

  const int signal_number = common::WaitForTerminationSignal();
  spdlog::info("signal {} received: draining for up to {}s", signal_number, flags.drain_timeout_s);
  holder->Close();  // answers held requests (503) rather than hold the drain up
  server->Shutdown(std::chrono::milliseconds(static_cast<int64_t>(flags.drain_timeout_s * 1000)));
  recorder.Stop();
  (*plane)->Shutdown(/*stop_instances=*/true);
  spdlog::info("stopped");
  return 0;
}

}  // namespace

Command AddServeCommand(CLI::App& root) {
  auto flags = std::make_shared<PlaneFlags>();
  flags->http.port = 8080;
  CLI::App* app = root.add_subcommand(
      "serve",
      "Run Triplane on one machine: the OpenAI API (/v1), the admin API (/admin/v1) and "
      "metrics on one port, engines as child processes");
  AddPlaneFlags(*app, *flags);
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
  app->add_flag("--demo,!--no-demo", flags->demo,
                "On first start, register and deploy the random-weight demo model 'demo'")
      ->capture_default_str();
  return {app, [flags] { return RunPlanes(*flags, /*with_public_api=*/true); }};
}

Command AddControlCommand(CLI::App& root) {
  auto flags = std::make_shared<PlaneFlags>();
  flags->http.port = 8090;
  CLI::App* app = root.add_subcommand(
      "control",
      "Management plane: model repository, deployments on local engines, config, audit and "
      "the admin API (/admin/v1)");
  AddPlaneFlags(*app, *flags);
  return {app, [flags] { return RunPlanes(*flags, /*with_public_api=*/false); }};
}

}  // namespace triplane::cli
