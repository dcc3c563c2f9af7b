#pragma once

// The admin API: REST + JSON under /admin/v1/ over the store, the model repository and
// the reconciler. Every route needs an admin key (`Authorization: Bearer KEY` or
// `x-api-key: KEY`): 401 without a valid, unrevoked, unexpired key, 403 for a user key.
// Every mutation is audited with the caller's key id as actor. Errors are OpenAI-style
// bodies (docs/api.md lists every route). Handlers run their store calls on a thread
// pool, never on the HTTP server's I/O threads; config watches wait on their own threads
// (at most `max_watches` at once, 503 beyond).

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/http_router.h"
#include "control/deploy/provider.h"
#include "control/monitor/metrics_history.h"
#include "control/repository/repository.h"
#include "control/store/store.h"
#include "nlohmann/json.hpp"

namespace triplane::control {

struct AdminApiOptions {
  Store* store = nullptr;                // required
  ModelRepository* repository = nullptr; // required
  // Called after every change to deployments (the reconciler's Trigger).
  std::function<void()> on_deployments_changed;
  // Called after every successful mutation (POST, PUT, PATCH, DELETE), before the answer
  // is sent: e.g. the gateway feed's RefreshNow, so that a key works once it is created.
  std::function<void()> on_change;
  // Capacity and use of the instance provider, for the overview; may be empty.
  std::function<nlohmann::json()> capacity;
  // The monitor's series for /admin/v1/metrics/...; those routes are absent when null.
  const MetricsHistory* metrics = nullptr;
  // The gateway holds requests for a deployment (POST …/deployments/{name}/wake): tell
  // the autoscaler. May be empty.
  std::function<void(const std::string& deployment)> wake;
  int worker_threads = 4;
  int max_watches = 256;
  int max_watch_seconds = 60;  // longest ?timeout= a watch may ask for
};

// The caller's key when the request carries a valid admin key (Unauthenticated for a
// missing, unknown, revoked or expired key; PermissionDenied for a user key). Blocks on
// the store. Keys are never logged.
[[nodiscard]] absl::StatusOr<ApiKey> AuthenticateAdmin(Store& store,
                                                       const common::HttpRequest& request);

class AdminApi {
 public:
  explicit AdminApi(AdminApiOptions options);
  ~AdminApi();  // Ends open watches and joins the workers.

  AdminApi(const AdminApi&) = delete;
  AdminApi& operator=(const AdminApi&) = delete;

  // Adds every /admin/v1/ route to `router`. The AdminApi must outlive the server's
  // serving: destroy it after HttpServer::Shutdown() and before the HttpServer object,
  // since its workers may still hold responders that must not outlive the server.
  void AddRoutes(common::HttpRouter& router);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace triplane::control
