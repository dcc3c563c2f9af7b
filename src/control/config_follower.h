#pragma once

// Applies config-center changes inside a running process, without a restart: a thread
// waits for new revisions of the store (Store::WaitForConfigChange) and calls the
// handler registered for each changed key. Handlers also see every key's value once at
// Start(), so a restarted process applies what was set while it was down.
//
// Keys applied by `triplane serve` and `triplane control` today:
//   log.level   "trace" | "debug" | "info" | "warn" | "error" | "critical" | "off"
//               (deleting the key restores the level the process started with)
// A value a handler rejects is logged and ignored; the process keeps its setting.

#include <atomic>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "control/store/store.h"
#include "nlohmann/json.hpp"

namespace triplane::control {

// Receives the key's new value, or nullopt when the key was deleted.
using ConfigHandler = std::function<absl::Status(const std::optional<nlohmann::json>& value)>;

class ConfigFollower {
 public:
  explicit ConfigFollower(Store& store);
  ~ConfigFollower();  // Stop().

  ConfigFollower(const ConfigFollower&) = delete;
  ConfigFollower& operator=(const ConfigFollower&) = delete;

  // REQUIRES: before Start().
  void On(std::string key, ConfigHandler handler);

  // Applies the current values, then follows changes on a thread of its own.
  [[nodiscard]] absl::Status Start();
  void Stop();

  // The revision applied last (for tests).
  int64_t revision() const { return revision_.load(); }

 private:
  void Apply(const std::string& key, const std::optional<nlohmann::json>& value);
  void Loop();

  Store& store_;
  std::map<std::string, ConfigHandler> handlers_;
  std::atomic<int64_t> revision_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// The `log.level` handler: sets spdlog's level; deletion restores `initial_level`.
ConfigHandler LogLevelHandler(std::string initial_level);

}  // namespace triplane::control
