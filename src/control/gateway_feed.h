#pragma once

// What every gateway needs to answer requests without asking the control plane per
// request, as one JSON snapshot with a revision:
//
//   {"revision": N,
//    "keys": [{"id", "digest", "role", "team", "allowed_models": [...],
//              "expires_at": UNIX_SECONDS or null}, ...],      // unrevoked keys only
//    "config": {KEY: VALUE, ...},
//    "models": {MODEL: {"upstreams": [{"id", "url", "deployment", "version"}, ...],
//                       "weights": {VERSION: PERCENT, ...} while a canary runs,
//                       "wake": [deployments that scale to zero] (when any)}, ...}}
//
// Every model some deployment serves is listed (with no upstreams while none is ready).
// External backends are upstreams too: {"id": "backend/NAME", "url": BASE_URL,
// "external": true, "remote_model", "api_key"}. This feed is the only answer that carries
// their API keys (gateways must present them), and it needs an admin key.
// The feed recomputes the snapshot every `refresh` and at once after Refresh(); the
// revision moves only when the content changes. Gateways in this process Subscribe();
// remote ones long-poll `GET /admin/v1/gateway/state?since=N&timeout=S` (admin key):
// the snapshot as soon as its revision is above N, else `{"revision": N, "unchanged":
// true}` after S seconds (default 30, at most 60). A revoked key is gone from every
// gateway within `refresh` plus one network round trip.

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/http_router.h"
#include "control/deploy/reconciler.h"
#include "control/store/store.h"
#include "nlohmann/json.hpp"

namespace triplane::control {

struct GatewayFeedOptions {
  absl::Duration refresh = absl::Milliseconds(250);
  int max_waiters = 1024;  // open long polls; more get 503
};

class GatewayFeed {
 public:
  // `endpoints` gives the ready instances (Reconciler::ReadyEndpoints).
  GatewayFeed(Store& store, std::function<std::vector<Endpoint>()> endpoints,
              GatewayFeedOptions options = {});
  ~GatewayFeed();  // Stop().

  GatewayFeed(const GatewayFeed&) = delete;
  GatewayFeed& operator=(const GatewayFeed&) = delete;

  // Builds the first snapshot (its store errors are returned) and starts the thread.
  [[nodiscard]] absl::Status Start();
  // Stops the thread; open long polls are answered `unchanged`.
  void Stop();
  // Recomputes as soon as possible (after an admin change).
  void Refresh();
  // Recomputes on the caller's thread, so that a change it just made is in Current().
  [[nodiscard]] absl::Status RefreshNow();

  // The current snapshot (with its "revision").
  std::shared_ptr<const nlohmann::json> Current() const;
  // Calls `callback` with every new snapshot, on the feed's thread, and once at once.
  void Subscribe(std::function<void(std::shared_ptr<const nlohmann::json>)> callback);

  // GET /admin/v1/gateway/state.
  void AddRoutes(common::HttpRouter& router);

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace triplane::control
