#include "control/control_plane.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "common/status_macros.h"
#include "control/admin/api_keys.h"
#include "control/store/store_factory.h"
#include "fmt/format.h"
#include "spdlog/spdlog.h"

namespace triplane::control {
namespace {

// Writes `text` to `path` readable by the owner only, replacing any old file.
absl::Status WritePrivateFile(const std::string& path, const std::string& text) {
  const std::string temp = path + ".tmp";
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return absl::InternalError(fmt::format("cannot write {}: {}", temp, std::strerror(errno)));
  ::fchmod(fd, 0600);  // also when the file existed with wider permissions
  const bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  if (!written || !synced || ::rename(temp.c_str(), path.c_str()) != 0) {
    const std::string error = std::strerror(errno);
    ::unlink(temp.c_str());
    return absl::InternalError(fmt::format("cannot write {}: {}", path, error));
  }
  return absl::OkStatus();
}

nlohmann::json CapacityJson(Provider& provider, Store& store) {
  const Resources capacity = provider.Capacity();
  Resources used;
  absl::StatusOr<std::vector<Instance>> instances = store.ListInstances("");
  if (instances.ok()) {
    for (const Instance& instance : *instances) {
      if (instance.provider != provider.name() || instance.state == InstanceState::kStopped ||
          instance.state == InstanceState::kFailed) {
        continue;
      }
      absl::StatusOr<ModelVersion> version = store.GetModelVersion(instance.model, instance.version);
      absl::StatusOr<Deployment> deployment = store.GetDeployment(instance.deployment);
      if (!version.ok()) continue;
      InstanceLaunch launch{.id = instance.id,
                            .deployment = instance.deployment,
                            .model = instance.model,
                            .version = instance.version,
                            .model_path = version->file_path,
                            .model_bytes = version->size_bytes,
                            .engine = deployment.ok() ? deployment->spec.engine : EngineSettings{},
                            .gguf = version->gguf};
      const Resources demand = provider.Demand(launch);
      used.cores += demand.cores;
      used.memory_bytes += demand.memory_bytes;
    }
  }
  return {{"provider", provider.name()},
          {"cores", capacity.cores},
          {"memory_bytes", capacity.memory_bytes},
          {"used_cores", used.cores},
          {"used_memory_bytes", used.memory_bytes}};
}

}  // namespace

absl::StatusOr<std::unique_ptr<ControlPlane>> ControlPlane::Start(ControlPlaneOptions options) {
  if (!options.read_gguf) return absl::InvalidArgumentError("control plane: no GGUF reader");
  if (options.local.engine_binary.empty()) {
    return absl::InvalidArgumentError("control plane: no engine binary");
  }
  std::error_code error;
  std::filesystem::create_directories(options.data_dir, error);
  if (error) {
    return absl::FailedPreconditionError(
        fmt::format("cannot create data dir {}: {}", options.data_dir, error.message()));
  }
  auto plane = std::unique_ptr<ControlPlane>(new ControlPlane());
  // One control plane per data dir: a second one would adopt the first one's engines and
  // fight over them. The lock goes with the process (also on kill -9).
  const std::string lock_path = (std::filesystem::path(options.data_dir) / "triplane.lock").string();
  plane->lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (plane->lock_fd_ < 0) {
    return absl::FailedPreconditionError(
        fmt::format("cannot open {}: {}", lock_path, std::strerror(errno)));
  }
  if (::flock(plane->lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    return absl::FailedPreconditionError(fmt::format(
        "data dir {} is in use by another triplane process (give each its own --data-dir)",
        options.data_dir));
  }
  TP_ASSIGN_OR_RETURN(plane->store_, OpenStore(options.store, options.data_dir));
  TP_RETURN_IF_ERROR(plane->EnsureAdminKey(options));

  const std::filesystem::path data_dir(options.data_dir);
  plane->repository_ = std::make_unique<ModelRepository>(
      *plane->store_, RepositoryOptions{.models_dir = (data_dir / "models").string(),
                                        .read_gguf = options.read_gguf,
                                        .refused_hosts = options.refused_pull_hosts});
  if (options.local.work_dir.empty()) options.local.work_dir = (data_dir / "instances").string();
  plane->provider_ = std::make_unique<LocalProvider>(options.local);
  ControlPlane* raw = plane.get();
  // The gateway feed updates its routes as soon as the ready instances change, before the
  // reconciler reports a deployment running (so `deploy --wait` means routable).
  options.reconciler.on_endpoints_changed = [raw] {
    if (absl::Status status = raw->feed_->RefreshNow(); !status.ok()) raw->feed_->Refresh();
  };
  plane->reconciler_ =
      std::make_unique<Reconciler>(*plane->store_, *plane->provider_, options.reconciler);
  plane->feed_ = std::make_unique<GatewayFeed>(
      *plane->store_, [raw] { return raw->reconciler_->ReadyEndpoints(); });
  TP_RETURN_IF_ERROR(plane->feed_->Start());
  TP_RETURN_IF_ERROR(plane->reconciler_->Start());

  options.monitor.targets = [raw] { return TargetsFromStore(*raw->store_); };
  const absl::Duration monitor_interval = options.monitor.interval;
  plane->monitor_ = std::make_unique<Monitor>(std::move(options.monitor));
  plane->monitor_->Start();
  if (options.metrics != nullptr) {
    plane->metrics_ = options.metrics;
    options.metrics->SetCollector(
        "control.monitor",
        [raw](const std::function<bool(std::string_view)>& taken, std::string* out) {
          raw->monitor_->history().AppendRelabelled(taken, out);
        });
  }

  plane->canary_ = std::make_unique<CanaryAnalysis>(*plane->store_, CanaryAnalysisOptions{.on_rollback = [raw] {
    raw->reconciler_->Trigger();
    raw->feed_->Refresh();
  }});
  plane->canary_->Start();

  plane->autoscaler_ = std::make_unique<Autoscaler>(
      *plane->store_, plane->monitor_->history(),
      AutoscalerOptions{.outstanding = std::move(options.outstanding), .on_scaled = [raw] {
                          raw->reconciler_->Trigger();
                          raw->feed_->Refresh();
                        }});
  plane->autoscaler_->Start();

  plane->config_ = std::make_unique<ConfigFollower>(*plane->store_);
  const auto initial_level = spdlog::level::to_string_view(spdlog::get_level());
  plane->config_->On("log.level",
                     LogLevelHandler(std::string(initial_level.data(), initial_level.size())));
  plane->config_->On("monitor.interval", MonitorIntervalHandler(*plane->monitor_, monitor_interval));
  TP_RETURN_IF_ERROR(plane->config_->Start());

  plane->admin_ = std::make_unique<AdminApi>(AdminApiOptions{
      .store = plane->store_.get(),
      .repository = plane->repository_.get(),
      .on_deployments_changed =
          [raw] {
            raw->reconciler_->Trigger();
            raw->feed_->Refresh();
          },
      .on_change =
          [raw] {
            if (absl::Status status = raw->feed_->RefreshNow(); !status.ok()) raw->feed_->Refresh();
          },
      .capacity = [raw] { return CapacityJson(*raw->provider_, *raw->store_); },
      .metrics = &plane->monitor_->history(),
      .wake = [raw](const std::string& deployment) { raw->autoscaler_->Wake(deployment); },
  });
  spdlog::info("control plane: store {}, data dir {}", plane->store_->description(),
               options.data_dir);
  return plane;
}

absl::Status ControlPlane::EnsureAdminKey(const ControlPlaneOptions& options) {
  admin_key_file_ = (std::filesystem::path(options.data_dir) / "admin.key").string();
  TP_ASSIGN_OR_RETURN(std::vector<ApiKey> keys, store_->ListApiKeys());
  const bool have_admin = std::any_of(keys.begin(), keys.end(), [](const ApiKey& key) {
    return key.role == KeyRole::kAdmin && !key.revoked_at.has_value();
  });
  std::string secret = options.admin_key;
  if (!secret.empty()) {
    if (!LooksLikeApiKey(secret)) {
      return absl::InvalidArgumentError(
          "TRIPLANE_ADMIN_KEY must look like a Triplane key: 'tp-' and at least 32 letters or "
          "digits");
    }
    if (store_->GetApiKeyByDigest(ApiKeyDigest(secret)).ok()) return absl::OkStatus();
  } else if (have_admin) {
    return absl::OkStatus();
  } else {
    secret = GenerateApiKey();
  }
  const bool admin_id_taken = std::any_of(keys.begin(), keys.end(),
                                          [](const ApiKey& key) { return key.id == "admin"; });
  ApiKey key{.id = admin_id_taken ? GenerateKeyId() : "admin",
             .name = options.admin_key.empty() ? "first admin key" : "TRIPLANE_ADMIN_KEY",
             .digest = ApiKeyDigest(secret),
             .role = KeyRole::kAdmin};
  TP_RETURN_IF_ERROR(store_->CreateApiKey(key, {.actor = "system"}).status());
  TP_RETURN_IF_ERROR(WritePrivateFile(admin_key_file_, secret + "\n"));
  if (options.admin_key.empty()) new_admin_key_ = secret;
  return absl::OkStatus();
}

ControlPlane::~ControlPlane() {
  if (reconciler_ != nullptr) Shutdown(false);
  admin_.reset();
  reconciler_.reset();
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

void ControlPlane::AddRoutes(common::HttpRouter& router) {
  admin_->AddRoutes(router);
  feed_->AddRoutes(router);
}

void ControlPlane::Shutdown(bool stop_instances) {
  if (stopped_) return;
  stopped_ = true;
  // The admin API's workers may hold exchanges of the server: end them first (the
  // caller has shut the server down).
  admin_.reset();
  if (metrics_ != nullptr) metrics_->SetCollector("control.monitor", {});
  if (autoscaler_ != nullptr) autoscaler_->Stop();
  if (monitor_ != nullptr) monitor_->Stop();
  if (canary_ != nullptr) canary_->Stop();
  if (feed_ != nullptr) feed_->Stop();
  if (config_ != nullptr) config_->Stop();
  reconciler_->Stop(stop_instances);
}

}  // namespace triplane::control
