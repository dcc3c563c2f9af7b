#include "control/providers/local/local_provider.h"

#include <sched.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/http_client.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "common/subprocess.h"
#include "control/deploy/resources.h"
#include "control/providers/local/local_process.h"
#include "fmt/format.h"
#include "spdlog/spdlog.h"

namespace triplane::control {
namespace {

// How often a monitor looks for an exit or a stop request between health checks: the
// delay before Observe() shows a crash.
constexpr absl::Duration kTick = absl::Milliseconds(50);
// Entries of instances that are gone are kept this long so that the reconciler can
// observe how they ended, then forgotten.
constexpr absl::Duration kForgetAfter = absl::Minutes(10);

// Instance ids may contain '/' (deployment names do); file names may not.
std::string FileStem(std::string_view id) {
  std::string stem(id);
  std::replace(stem.begin(), stem.end(), '/', '-');
  return stem;
}

int32_t DetectCores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return static_cast<int32_t>(std::max(1u, std::thread::hardware_concurrency()));
}

int64_t DetectMemoryBytes() {
  std::ifstream meminfo("/proc/meminfo");
  std::string line;
  while (std::getline(meminfo, line)) {
    long long kib = 0;
    if (std::sscanf(line.c_str(), "MemTotal: %lld kB", &kib) == 1)
      return static_cast<int64_t>(static_cast<double>(kib) * 1024 * 0.9);
  }
  return 0;
}

}  // namespace

class LocalProvider::Impl {
 public:
  explicit Impl(LocalProviderOptions options)
      : options_(std::move(options)),
        health_client_({.connect_timeout = HealthTimeout(), .request_timeout = HealthTimeout(),
                        .max_idle_per_host = 2}) {}

  ~Impl() {
    std::vector<std::shared_ptr<Entry>> entries;
    {
      absl::MutexLock lock(&mu_);
      for (auto& [id, entry] : entries_) {
        if (!IsTerminal(entry->obs.state)) {
          spdlog::warn("local provider: killing instance {} (pid {}) at shutdown", id,
                       entry->pid);
        }
        entry->shutdown = true;
        entry->wake.Signal();
        entries.push_back(entry);
      }
      entries_.clear();
    }
    for (auto& entry : entries) entry->monitor.join();
  }

  Resources Capacity() const {
    return {.cores = options_.cores > 0 ? options_.cores : DetectCores(),
            .memory_bytes =
                options_.memory_bytes > 0 ? options_.memory_bytes : DetectMemoryBytes()};
  }

  Resources Demand(const InstanceLaunch& launch) const {
    return {.cores = Threads(launch), .memory_bytes = EstimateInstanceMemoryBytes(launch)};
  }

  absl::StatusOr<Instance> Start(const InstanceLaunch& launch) {
    TP_RETURN_IF_ERROR(ValidateName("instance", launch.id));
    if (launch.model_path.empty())
      return absl::InvalidArgumentError(fmt::format("instance {}: no model file", launch.id));
    ForgetOldEntries();
    auto entry = std::make_shared<Entry>(launch.id, options_.work_dir);
    {
      absl::MutexLock lock(&mu_);
      auto it = entries_.find(launch.id);
      if (it != entries_.end() && !IsTerminal(it->second->obs.state))
        return absl::AlreadyExistsError(fmt::format("instance {} exists", launch.id));
    }
    std::error_code ec;
    std::filesystem::create_directories(options_.work_dir, ec);
    if (ec) {
      return absl::FailedPreconditionError(
          fmt::format("cannot create {}: {}", options_.work_dir, ec.message()));
    }
    // The files are opened for appending: empty them so that an old URL line or log of
    // an earlier process under the same name cannot be mistaken for this one's.
    std::ofstream(entry->out_path, std::ios::trunc);
    std::ofstream(entry->log_path, std::ios::trunc);
    absl::StatusOr<std::unique_ptr<common::Subprocess>> child = common::Subprocess::Spawn(
        {.argv = CommandLine(launch),
         // The gateway calls its own engines without a key, over plain HTTP on loopback:
         // a key or certificate meant for a standalone engine (or for this server) must
         // not reach them through the environment.
         .env = {"TRIPLANE_API_KEY=", "TRIPLANE_TLS_CERT=", "TRIPLANE_TLS_KEY="},
         .stdout_path = entry->out_path,
         .stderr_path = entry->log_path});
    if (!child.ok()) return child.status();
    entry->child = *std::move(child);
    entry->pid = entry->child->pid();
    entry->obs = {.state = InstanceState::kStarting, .host = options_.host, .pid = entry->pid};
    spdlog::info("local provider: started instance {} of {} (pid {}, log {})", launch.id,
                 launch.deployment, entry->pid, entry->log_path);
    TP_RETURN_IF_ERROR(Track(entry));  // on a lost race `entry` kills its child
    return Instance{.id = launch.id,
                    .deployment = launch.deployment,
                    .model = launch.model,
                    .version = launch.version,
                    .provider = "local",
                    .host = options_.host,
                    .pid = entry->pid,
                    .state = InstanceState::kStarting,
                    .provider_data = {{"log", entry->log_path}}};
  }

  absl::StatusOr<InstanceObservation> Observe(std::string_view id) {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(id);
    if (it == entries_.end())
      return absl::NotFoundError(fmt::format("instance {} is not known here", id));
    return it->second->obs;
  }

  void Stop(std::string_view id, absl::Duration grace) {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(id);
    if (it == entries_.end() || IsTerminal(it->second->obs.state)) return;
    Entry& entry = *it->second;
    entry.stop_requested = true;
    entry.kill_at = std::min(entry.kill_at, absl::Now() + grace);
    entry.obs.state = InstanceState::kDraining;
    entry.wake.Signal();
  }

  void Kill(std::string_view id) {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(id);
    if (it == entries_.end() || IsTerminal(it->second->obs.state)) return;
    it->second->stop_requested = true;
    it->second->kill_at = absl::InfinitePast();
    it->second->wake.Signal();
  }

  absl::Status Adopt(const Instance& instance) {
    {
      absl::MutexLock lock(&mu_);
      auto it = entries_.find(instance.id);
      if (it != entries_.end() && !IsTerminal(it->second->obs.state)) return absl::OkStatus();
    }
    auto entry = std::make_shared<Entry>(instance.id, options_.work_dir);
    entry->pid = instance.pid;
    if (!local::ProcessRunning(instance.pid) || !local::CommandLineHasInstanceId(instance.pid, instance.id)) {
      return absl::NotFoundError(
          fmt::format("instance {} (pid {}) is no longer running", instance.id, instance.pid));
    }
    std::optional<int32_t> port = local::ReadUrlPort(entry->out_path);
    if (!port && instance.port > 0) port = instance.port;
    InstanceState state = InstanceState::kStarting;  // still loading: no URL line yet
    if (port) {
      absl::StatusOr<int> health = CheckHealth(*port);
      if (!health.ok()) {
        // Ours (the command line says so) but unusable: kill it rather than leave an
        // orphan beside the replacement the caller will start.
        ::kill(static_cast<pid_t>(instance.pid), SIGKILL);
        return absl::NotFoundError(
            fmt::format("instance {} (pid {}) does not answer health checks ({}); killed it",
                        instance.id, instance.pid, common::ToStd(health.status().message())));
      }
      if (*health == 200) state = InstanceState::kReady;
    }
    entry->obs = {.state = state,
                  .host = instance.host.empty() ? options_.host : instance.host,
                  .port = port.value_or(0),
                  .pid = instance.pid};
    spdlog::info("local provider: adopted instance {} (pid {}, {})", instance.id, instance.pid,
                 ToString(state));
    return Track(entry);
  }

  void StopAll(absl::Duration grace) {
    absl::MutexLock lock(&mu_);
    const absl::Time kill_at = absl::Now() + grace;
    for (auto& [id, entry] : entries_) {
      if (IsTerminal(entry->obs.state)) continue;
      entry->stop_requested = true;
      entry->kill_at = std::min(entry->kill_at, kill_at);
      entry->obs.state = InstanceState::kDraining;
      entry->wake.Signal();
    }
    auto all_gone = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return std::all_of(entries_.begin(), entries_.end(),
                         [](const auto& e) { return IsTerminal(e.second->obs.state); });
    };
    mu_.Await(absl::Condition(&all_gone));
  }

 private:
  // One tracked process. Its monitor thread alone touches `child`; the rest of the
  // mutable state is guarded by Impl::mu_.
  struct Entry {
    Entry(std::string_view instance_id, const std::string& work_dir)
        : id(instance_id),
          out_path((std::filesystem::path(work_dir) / (FileStem(id) + ".out")).string()),
          log_path((std::filesystem::path(work_dir) / (FileStem(id) + ".log")).string()) {}

    const std::string id;
    const std::string out_path;  // stdout: the URL line
    const std::string log_path;  // stderr: the engine's log
    int64_t pid = 0;
    std::unique_ptr<common::Subprocess> child;  // null for an adopted process
    std::thread monitor;                        // joined by whoever drops the entry
    absl::CondVar wake;                         // a stop request or shutdown

    InstanceObservation obs;
    bool stop_requested = false;  // Stop, Kill or StopAll: the exit is kStopped
    absl::Time kill_at = absl::InfiniteFuture();
    bool shutdown = false;        // the provider is going away: SIGKILL
    absl::Time ended_at = absl::InfiniteFuture();
  };

  std::chrono::milliseconds HealthTimeout() const {
    return std::chrono::milliseconds(
        std::max<int64_t>(1000, absl::ToInt64Milliseconds(options_.health_interval)));
  }

  int32_t Threads(const InstanceLaunch& launch) const {
    return launch.engine.threads > 0 ? launch.engine.threads
                                     : std::max(1, options_.default_threads);
  }

  std::vector<std::string> CommandLine(const InstanceLaunch& launch) const {
    std::vector<std::string> argv = {options_.engine_binary,
                                     "engine",
                                     "--model",
                                     launch.model_path,
                                     "--host",
                                     options_.host,
                                     "--port",
                                     "0",
                                     "--served-model-name",
                                     launch.model,
                                     "--instance-id",
                                     launch.id,
                                     "--threads",
                                     std::to_string(Threads(launch))};
    const EngineSettings& e = launch.engine;
    if (e.context_length > 0) argv.insert(argv.end(), {"--ctx", std::to_string(e.context_length)});
    if (e.kv_memory_bytes > 0)
      argv.insert(argv.end(), {"--kv-memory", std::to_string(e.kv_memory_bytes)});
    if (e.max_batch_tokens > 0)
      argv.insert(argv.end(), {"--max-batch-tokens", std::to_string(e.max_batch_tokens)});
    if (!e.kv_type.empty()) argv.insert(argv.end(), {"--kv-type", e.kv_type});
    argv.insert(argv.end(), options_.extra_engine_args.begin(), options_.extra_engine_args.end());
    return argv;
  }

  // The HTTP status of GET /health, or why there was none.
  absl::StatusOr<int> CheckHealth(int32_t port) {
    absl::StatusOr<common::HttpResponse> response = health_client_.Send(
        {.url = fmt::format("http://{}:{}/health", options_.host, port)});
    if (!response.ok()) return response.status();
    return response->status;
  }

  // Adds `entry` and starts its monitor. An entry of the same id whose instance is gone
  // is replaced (its monitor joined); a live one makes it AlreadyExists.
  absl::Status Track(const std::shared_ptr<Entry>& entry) {
    std::shared_ptr<Entry> replaced;
    {
      absl::MutexLock lock(&mu_);
      auto it = entries_.find(entry->id);
      if (it != entries_.end()) {
        if (!IsTerminal(it->second->obs.state))
          return absl::AlreadyExistsError(fmt::format("instance {} exists", entry->id));
        replaced = std::move(it->second);
        entries_.erase(it);
      }
      entries_[entry->id] = entry;
      entry->monitor = std::thread([this, entry] { Monitor(*entry); });
    }
    if (replaced != nullptr) replaced->monitor.join();
    return absl::OkStatus();
  }

  // Joins and drops the entries of instances gone for longer than kForgetAfter.
  void ForgetOldEntries() {
    std::vector<std::shared_ptr<Entry>> old;
    {
      absl::MutexLock lock(&mu_);
      const absl::Time cutoff = absl::Now() - kForgetAfter;
      for (auto it = entries_.begin(); it != entries_.end();) {
        if (it->second->ended_at < cutoff) {
          old.push_back(it->second);
          it = entries_.erase(it);
        } else {
          ++it;
        }
      }
    }
    for (auto& entry : old) entry->monitor.join();
  }

  // Signals the process, making sure an adopted pid still is our instance.
  static void SendSignal(Entry& entry, int signal) {
    if (entry.child != nullptr) {
      entry.child->Signal(signal);
    } else if (local::CommandLineHasInstanceId(entry.pid, entry.id)) {
      ::kill(static_cast<pid_t>(entry.pid), signal);
    }
  }

  // The monitor thread of one instance: reaps its exit, delivers stop requests, reads
  // the URL line and polls health. Returns once the process is gone. File and network
  // I/O happen outside mu_, so Observe() and Start() never wait for them.
  void Monitor(Entry& entry) {
    bool term_sent = false;
    bool kill_sent = false;
    int failures = 0;
    std::string health_error;  // set when failed health checks got the process killed
    absl::Time next_health = absl::InfinitePast();
    while (true) {
      std::optional<common::ExitStatus> exit;
      bool gone = false;
      if (entry.child != nullptr) {
        exit = entry.child->Poll();
        gone = exit.has_value();
      } else {  // not our child: no exit status, only /proc
        gone = !local::ProcessRunning(entry.pid) ||
               !local::CommandLineHasInstanceId(entry.pid, entry.id);
      }
      if (gone) return Finish(entry, exit, health_error);

      bool stopping = false;
      bool kill = false;
      int32_t port = 0;
      {
        absl::MutexLock lock(&mu_);
        stopping = entry.stop_requested;
        kill = entry.shutdown || (stopping && absl::Now() >= entry.kill_at) ||
               !health_error.empty();
        port = entry.obs.port;
      }
      if (kill && !kill_sent) {
        SendSignal(entry, SIGKILL);
        kill_sent = term_sent = true;
      } else if (stopping && !term_sent) {
        SendSignal(entry, SIGTERM);  // the engine drains, then exits 0
        term_sent = true;
      }
      if (port == 0) {
        if (std::optional<int32_t> url_port = local::ReadUrlPort(entry.out_path)) {
          port = *url_port;
          absl::MutexLock lock(&mu_);
          entry.obs.port = port;
        }
      }
      if (port != 0 && !stopping && !kill && absl::Now() >= next_health) {
        absl::StatusOr<int> health = CheckHealth(port);
        next_health = absl::Now() + options_.health_interval;
        absl::MutexLock lock(&mu_);
        if (health.ok() && *health == 200) {
          failures = 0;
          if (entry.obs.state == InstanceState::kStarting) {
            entry.obs.state = InstanceState::kReady;
            spdlog::info("local provider: instance {} is ready on port {}", entry.id, port);
          }
        } else if (entry.obs.state == InstanceState::kReady || !health.ok()) {
          // 503 is fine while loading; from a ready engine it means it serves no more.
          const std::string why = health.ok() ? fmt::format("HTTP {}", *health)
                                              : std::string(common::ToStd(health.status().message()));
          if (++failures >= options_.health_failures && !entry.stop_requested) {
            health_error = fmt::format("{} health checks failed in a row (last: {})", failures, why);
            spdlog::warn("local provider: instance {}: {}; killing it", entry.id, health_error);
          }
        }
      }
      absl::MutexLock lock(&mu_);
      if (!entry.shutdown && !(entry.stop_requested && !term_sent)) entry.wake.WaitWithTimeout(&mu_, kTick);
    }
  }

  void Finish(Entry& entry, const std::optional<common::ExitStatus>& exit,
              const std::string& health_error) {
    const std::string status = exit ? exit->ToString() : "the process exited";
    const std::string line = local::LastLogLine(entry.log_path);
    absl::MutexLock lock(&mu_);
    entry.ended_at = absl::Now();
    if (entry.stop_requested && health_error.empty()) {
      entry.obs.state = InstanceState::kStopped;
      entry.obs.last_error = status;
    } else {
      entry.obs.state = InstanceState::kFailed;
      entry.obs.last_error = line.empty() ? status : fmt::format("{}: {}", status, line);
      if (!health_error.empty()) entry.obs.last_error = health_error + "; " + entry.obs.last_error;
      spdlog::warn("local provider: instance {} failed: {}", entry.id, entry.obs.last_error);
    }
  }

  const LocalProviderOptions options_;
  common::HttpClient health_client_;
  absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<Entry>, std::less<>> entries_ ABSL_GUARDED_BY(mu_);
};

LocalProvider::LocalProvider(LocalProviderOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}
LocalProvider::~LocalProvider() = default;

Resources LocalProvider::Capacity() const { return impl_->Capacity(); }
Resources LocalProvider::Demand(const InstanceLaunch& launch) const {
  return impl_->Demand(launch);
}
absl::StatusOr<Instance> LocalProvider::Start(const InstanceLaunch& launch) {
  return impl_->Start(launch);
}
absl::StatusOr<InstanceObservation> LocalProvider::Observe(std::string_view id) {
  return impl_->Observe(id);
}
void LocalProvider::Stop(std::string_view id, absl::Duration grace) { impl_->Stop(id, grace); }
void LocalProvider::Kill(std::string_view id) { impl_->Kill(id); }
absl::Status LocalProvider::Adopt(const Instance& instance) { return impl_->Adopt(instance); }
void LocalProvider::StopAll(absl::Duration grace) { impl_->StopAll(grace); }

}  // namespace triplane::control
