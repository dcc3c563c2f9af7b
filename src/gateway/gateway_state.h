#pragma once

// The gateway's copy of the control plane's state (control/gateway_feed.h describes the
// JSON): API keys by digest, config, and each model's ready instances. One immutable
// snapshot is shared by all requests and swapped whole when a new one arrives, so a
// request never waits on the control plane.

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/http_client.h"
#include "gateway/proxy.h"
#include "nlohmann/json.hpp"

namespace triplane::gateway {

struct KeyInfo {
  std::string id;
  bool admin = false;
  std::string team;                  // "" when none
  std::set<std::string> allowed_models;  // empty: every model
  std::optional<absl::Time> expires_at;
};

struct GatewaySnapshot {
  int64_t revision = 0;
  std::unordered_map<std::string, KeyInfo> keys_by_digest;  // unrevoked keys only
  nlohmann::json config = nlohmann::json::object();
  std::map<std::string, std::vector<Upstream>> models;  // every deployed model
  // Traffic split between a model's versions while a canary runs: version -> weight.
  std::map<std::string, std::map<std::string, double>> weights;
  // Per model, its deployments that scale to zero: a request finding no upstream is held
  // while they are woken (RequestHolder).
  std::map<std::string, std::vector<std::string>> wake;

  // A config value, or null when the key is not set.
  const nlohmann::json& Config(const std::string& key) const;
};

// InvalidArgument when `json` is not a snapshot.
[[nodiscard]] absl::StatusOr<std::shared_ptr<const GatewaySnapshot>> ParseGatewaySnapshot(
    const nlohmann::json& json);

// Holds the current snapshot. Thread-safe.
class GatewayState {
 public:
  std::shared_ptr<const GatewaySnapshot> Get() const;
  void Set(std::shared_ptr<const GatewaySnapshot> snapshot);
  // Applies a feed message (ignored, with a log line, when it does not parse).
  void Apply(const nlohmann::json& json);

 private:
  mutable absl::Mutex mu_;
  std::shared_ptr<const GatewaySnapshot> snapshot_ ABSL_GUARDED_BY(mu_) =
      std::make_shared<const GatewaySnapshot>();
};

// Follows a remote control plane: long-polls CONTROL/admin/v1/gateway/state with an
// admin key and applies every new snapshot to `state`; retries with backoff while the
// control plane is unreachable (the gateway keeps serving with what it has).
class StateFollower {
 public:
  StateFollower(std::string control_url, std::string admin_key, GatewayState& state);
  ~StateFollower();  // Stops and joins.

  // Waits up to `timeout` for the first snapshot; the thread then keeps following.
  [[nodiscard]] absl::Status Start(absl::Duration timeout);

 private:
  void Loop();

  const std::string url_;
  const std::string key_;
  GatewayState& state_;
  common::HttpClient client_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> revision_{0};
  std::thread thread_;
};

}  // namespace triplane::gateway
