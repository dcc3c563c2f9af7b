// `triplane engine`: load one model and serve it over the engine API (docs/api.md).
//
// The HTTP server listens first, so /health answers "starting" (503) while the model
// loads; once the engine runs, one line with the listening URL is printed on stdout (for
// whoever spawned the process) and logged. SIGTERM/SIGINT drain: health turns to
// "draining", new requests get 503, requests in flight finish (up to --drain-timeout),
// then the process exits 0.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <set>
#include <string>
#include <thread>

#include "cli/commands.h"
#include "cli/http_flags.h"
#include "common/build_info.h"
#include "common/http_server.h"
#include "common/metrics.h"
#include "common/process_metrics.h"
#include "common/signals.h"
#include "common/strings.h"
#include "engine/engine_options.h"
#include "engine/server/engine_server.h"
#include "engine/server/serving_model.h"
#include "fmt/format.h"
#include "spdlog/spdlog.h"

namespace triplane::cli {
namespace {

struct EngineFlags {
  engine::EngineOptions engine;
  common::HttpServerOptions http{.port = 8081};
  int64_t max_waiting = 256;
  bool mmap = false;
  // A label given by whoever spawned the process (the control plane's local provider),
  // so that a restarted control plane can recognise its instance in /proc/PID/cmdline.
  std::string instance_id;
};

// Physical cores (distinct core ids per package), or the hardware threads when unknown.
int PhysicalCores() {
  std::set<std::pair<std::string, std::string>> cores;
  const unsigned cpus = std::max(1u, std::thread::hardware_concurrency());
  for (unsigned cpu = 0; cpu < cpus; ++cpu) {
    const std::string base = fmt::format("/sys/devices/system/cpu/cpu{}/topology/", cpu);
    std::string package, core;
    std::ifstream(base + "physical_package_id") >> package;
    std::ifstream(base + "core_id") >> core;
    if (package.empty() || core.empty()) return static_cast<int>(cpus);
    cores.emplace(package, core);
  }
  return std::max<int>(1, static_cast<int>(cores.size()));
}

// The name the API shows when --served-model-name is not given: the file name without
// its directory and ".gguf".
std::string DefaultModelName(const std::string& path) {
  std::string name = path.substr(path.find_last_of('/') + 1);
  if (name.size() > 5 && name.ends_with(".gguf")) name.resize(name.size() - 5);
  for (char& c : name) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) c = '_';
  }
  return name.empty() ? "model" : name;
}

int EngineError(std::string_view message) {
  std::fprintf(stderr, "triplane engine: %.*s\n", static_cast<int>(message.size()), message.data());
  return 1;
}

int RunEngine(EngineFlags flags) {
  engine::EngineOptions& options = flags.engine;
  options.host = flags.http.host;
  options.port = flags.http.port;
  if (options.served_model_name.empty())
    options.served_model_name = DefaultModelName(options.model);
  if (absl::Status status = options.Validate(); !status.ok())
    return EngineError(common::ToStd(status.message()));

  // Before any thread exists, so that only WaitForTerminationSignal() sees the signals.
  common::BlockTerminationSignals();
  common::MetricsRegistry& registry = common::MetricsRegistry::Default();
  common::RegisterProcessMetrics(registry);
  const common::BuildInfo& build = common::GetBuildInfo();
  registry
      .AddGauge("triplane_build_info", "Always 1; labels say which build is running.",
                {"version", "commit"})
      .WithLabels({build.version, build.git_commit})
      .Set(1);

  engine::server::EngineServer api(
      {.served_model_name = options.served_model_name, .metrics = &registry, .api_key = options.api_key});
  common::HttpRouter router;
  api.AddRoutes(router);
  flags.http.metrics = &registry;
  common::HttpServer server(flags.http, std::move(router));
  if (absl::Status status = server.Start(); !status.ok())
    return EngineError(common::ToStd(status.message()));
  const std::string url = ServerUrl(flags.http, server.port());
  if (!flags.instance_id.empty()) spdlog::info("instance {}", flags.instance_id);
  if (!options.api_key.empty()) spdlog::info("the API requires a key (Bearer or x-api-key)");
  spdlog::info("listening on {} while {} loads", url, options.model);

  const int threads = options.threads > 0 ? options.threads : PhysicalCores();
  const auto started = std::chrono::steady_clock::now();
  absl::StatusOr<std::unique_ptr<engine::server::ServingModel>> model =
      engine::server::LoadServingModel({
          .path = options.model,
          .engine = {.threads = threads,
                     .ctx = options.ctx,
                     .kv_memory_bytes = options.kv_memory_bytes,
                     .kv_type = engine::ParseKvType(options.kv_type).value_or(engine::KvType::kF16),
                     .max_batch_tokens = options.max_batch_tokens,
                     .max_seqs = options.max_seqs,
                     .max_waiting = flags.max_waiting},
          .load = {.huge_pages = !flags.mmap},
      });
  if (!model.ok()) {
    server.Shutdown(std::chrono::milliseconds(0));
    return EngineError(common::ToStd(model.status().message()));
  }
  const engine::EngineConfig config = (*model)->engine->config();
  const bool own_template = (*model)->chat_template_from_model;
  api.Attach(*std::move(model));
  spdlog::info(
      "triplane {} engine serving {} on {} (loaded in {:.1f}s; {} threads, context {}, batch {} "
      "tokens, {} sequences, {} KV cache, chat template: {})",
      build.version, options.served_model_name, url,
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(),
      config.threads, config.ctx, config.max_batch_tokens, config.max_seqs, engine::KvTypeName(config.kv_type),
      own_template ? "the model's" : "ChatML");
  std::printf("%s\n", url.c_str());
  std::fflush(stdout);

  const int signal_number = common::WaitForTerminationSignal();
  const auto drain =
      std::chrono::milliseconds(static_cast<int64_t>(options.drain_timeout_s * 1000));
  spdlog::info("signal {} received: draining {} requests for up to {}s", signal_number,
               api.in_flight(), options.drain_timeout_s);
  const auto drain_start = std::chrono::steady_clock::now();
  api.StartDraining();
  const bool idle = api.WaitIdle(drain);
  const auto left = std::max(std::chrono::milliseconds(0),
                             drain - std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::steady_clock::now() - drain_start));
  // Responses that just completed are still being written: give them the time left.
  server.Shutdown(idle ? std::max(left, std::chrono::milliseconds(1000))
                       : std::chrono::milliseconds(0));
  if (!idle) spdlog::warn("drain timeout: {} requests cancelled", api.in_flight());
  spdlog::info("stopped");
  return 0;
}

}  // namespace

Command AddEngineCommand(CLI::App& root) {
  auto flags = std::make_shared<EngineFlags>();
  engine::EngineOptions& o = flags->engine;
  CLI::App* app =
      root.add_subcommand("engine", "Data plane: load one model and serve it over the engine API");
  app->add_option("--model", o.model, "GGUF model file to serve")
      ->required()
      ->check(CLI::ExistingFile);
  AddHttpServerFlags(*app, flags->http);
  app->add_option("--threads", o.threads, "Compute threads (0 = one per physical core)")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
  app->add_option("--ctx", o.ctx,
                  "Most tokens (prompt + completion) per sequence; capped at the model's")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  app->add_option("--kv-memory", o.kv_memory_bytes,
                  "KV cache size in bytes, units allowed (512MiB, 8GiB); 0 = room for "
                  "min(--max-seqs, 4) full contexts")
      ->transform(CLI::AsSizeValue(false))
      ->capture_default_str();
  app->add_option("--kv-type", o.kv_type,
                  "KV cache entries: f16, or q8_0 (int8 with a scale per position and head: "
                  "about half the memory and attention time, slightly less exact)")
      ->check(CLI::IsMember({"f16", "q8_0"}))
      ->capture_default_str();
  app->add_option("--max-batch-tokens", o.max_batch_tokens,
                  "Tokens per scheduler step (decodes + prompt chunks)")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  app->add_option("--max-seqs", o.max_seqs, "Sequences running at once")
      ->check(CLI::Range(1, 1 << 16))
      ->capture_default_str();
  app->add_option("--max-waiting", flags->max_waiting,
                  "Queued requests beyond which new ones get 503")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 20))
      ->capture_default_str();
  app->add_option("--served-model-name", o.served_model_name,
                  "The model's name in the API (default: the file name without .gguf)");
  app->add_option("--drain-timeout", o.drain_timeout_s,
                  "Seconds to let in-flight requests finish on SIGTERM/SIGINT")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app->add_option("--api-key", o.api_key,
                  "Require this key on the API (Bearer or x-api-key); prefer TRIPLANE_API_KEY, "
                  "which other users cannot see in the process list");
  app->add_option("--instance-id", flags->instance_id,
                  "A label for this process (logged), set by the control plane");
  app->add_flag(
      "--mmap", flags->mmap,
      "Use the weights in place from the file mapping (zero copy, less memory, slower decode)");
  return {app, [flags] { return RunEngine(*flags); }};
}

}  // namespace triplane::cli
