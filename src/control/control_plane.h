#pragma once

// The management plane assembled: store, model repository, local instance provider,
// reconciler and admin API, over one data directory. `triplane control` serves it alone;
// `triplane serve` mounts it next to the public API.
//
// Start() opens (and migrates) the store, makes sure an admin key exists, adopts the
// instances an earlier run left running and starts the reconciler. The first admin key
// comes from `admin_key` (TRIPLANE_ADMIN_KEY) when given, else it is generated; either
// way it is written to DATA_DIR/admin.key (mode 0600) and returned once in
// `new_admin_key` so that the caller can print it. Only its digest is stored. Config
// keys this process applies live are listed in config_follower.h.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/http_router.h"
#include "common/metrics.h"
#include "control/admin/admin_api.h"
#include "control/autoscale/autoscaler.h"
#include "control/config_follower.h"
#include "control/gateway_feed.h"
#include "control/deploy/canary_analysis.h"
#include "control/deploy/reconciler.h"
#include "control/monitor/monitor.h"
#include "control/providers/local/local_provider.h"
#include "control/repository/repository.h"
#include "control/store/store.h"

namespace triplane::control {

struct ControlPlaneOptions {
  std::string data_dir = "./triplane-data";
  std::string store = "sqlite";   // see OpenStore
  std::string admin_key;          // a key to register as admin when it is unknown
  GgufSummaryReader read_gguf;    // required (the CLI passes the engine's reader)
  LocalProviderOptions local;     // engine_binary required; work_dir defaults to DATA_DIR/instances
  ReconcilerOptions reconciler;
  std::vector<std::string> refused_pull_hosts;  // the control plane's own host:port
  MonitorOptions monitor;  // `targets` is filled in (the store's instances)
  // Where the monitor re-exports the engines' series, relabelled (a collector); none
  // when null.
  common::MetricsRegistry* metrics = nullptr;
  // Requests in flight per instance, for the autoscaler (AutoscalerOptions::outstanding):
  // `triplane serve` passes its gateway's count; empty for a control plane alone.
  std::function<int64_t(const std::string& instance)> outstanding;
};

class ControlPlane {
 public:
  // InvalidArgument for bad options; the store's errors (Unavailable, …) as they come.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<ControlPlane>> Start(
      ControlPlaneOptions options);
  ~ControlPlane();  // Shutdown(false) when still running.

  ControlPlane(const ControlPlane&) = delete;
  ControlPlane& operator=(const ControlPlane&) = delete;

  // The admin API's routes (/admin/v1/...), the gateway state feed's included.
  void AddRoutes(common::HttpRouter& router);

  // A key made at this start (print it once), or nullopt when one already existed.
  const std::optional<std::string>& new_admin_key() const { return new_admin_key_; }
  const std::string& admin_key_file() const { return admin_key_file_; }

  Store& store() { return *store_; }
  ModelRepository& repository() { return *repository_; }
  Reconciler& reconciler() { return *reconciler_; }
  Provider& provider() { return *provider_; }
  GatewayFeed& gateway_feed() { return *feed_; }
  Monitor& monitor() { return *monitor_; }
  Autoscaler& autoscaler() { return *autoscaler_; }

  // Stops the reconciler; with `stop_instances` every engine drains and stops (a normal
  // shutdown), without it they keep running for the next start to adopt.
  void Shutdown(bool stop_instances);

 private:
  ControlPlane() = default;
  [[nodiscard]] absl::Status EnsureAdminKey(const ControlPlaneOptions& options);

  std::unique_ptr<Store> store_;
  std::unique_ptr<ModelRepository> repository_;
  std::unique_ptr<LocalProvider> provider_;
  std::unique_ptr<Reconciler> reconciler_;
  std::unique_ptr<Monitor> monitor_;
  std::unique_ptr<CanaryAnalysis> canary_;
  std::unique_ptr<Autoscaler> autoscaler_;
  common::MetricsRegistry* metrics_ = nullptr;  // holds the monitor's collector
  std::unique_ptr<AdminApi> admin_;
  std::unique_ptr<ConfigFollower> config_;
  std::unique_ptr<GatewayFeed> feed_;
  std::optional<std::string> new_admin_key_;
  std::string admin_key_file_;
  bool stopped_ = false;
  int lock_fd_ = -1;  // flock on DATA_DIR/triplane.lock while this process runs
};

}  // namespace triplane::control
