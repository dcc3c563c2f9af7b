#include "control/config_follower.h"

#include "absl/time/time.h"
#include "fmt/format.h"
#include "spdlog/spdlog.h"

namespace triplane::control {

ConfigFollower::ConfigFollower(Store& store) : store_(store) {}

ConfigFollower::~ConfigFollower() { Stop(); }

void ConfigFollower::On(std::string key, ConfigHandler handler) {
  handlers_[std::move(key)] = std::move(handler);
}

absl::Status ConfigFollower::Start() {
  absl::StatusOr<ConfigSnapshot> snapshot = store_.ListConfig("");
  if (!snapshot.ok()) return snapshot.status();
  for (const ConfigEntry& entry : snapshot->entries) Apply(entry.key, entry.value);
  revision_ = snapshot->revision;
  thread_ = std::thread([this] { Loop(); });
  return absl::OkStatus();
}

void ConfigFollower::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void ConfigFollower::Apply(const std::string& key, const std::optional<nlohmann::json>& value) {
  const auto it = handlers_.find(key);
  if (it == handlers_.end()) return;
  // Said before applying, and again after when the old log level hid it: a change of
  // log.level may silence or reveal the line.
  const std::string shown = value ? value->dump() : "(default)";
  const bool said = spdlog::default_logger_raw()->should_log(spdlog::level::info);
  spdlog::info("config {}: applying {}", key, shown);
  if (absl::Status status = it->second(value); !status.ok()) {
    spdlog::warn("config {}: ignored: {}", key, std::string(status.message()));
  } else if (!said) {
    spdlog::info("config {}: applying {}", key, shown);
  }
}

void ConfigFollower::Loop() {
  while (!stop_) {
    // Short waits, so that Stop() is prompt; writes through this store wake it at once.
    absl::StatusOr<int64_t> revision = store_.WaitForConfigChange(revision_, absl::Milliseconds(500));
    if (!revision.ok() || *revision <= revision_) {
      if (!revision.ok()) absl::SleepFor(absl::Milliseconds(500));  // store down: retry
      continue;
    }
    absl::StatusOr<ConfigChanges> changes = store_.ConfigChangesSince(revision_);
    if (absl::IsOutOfRange(changes.status())) {
      revision_ = 0;  // the store was replaced: start over from its first revision
      continue;
    }
    if (!changes.ok()) continue;
    for (const ConfigChange& change : changes->changes) Apply(change.key, change.value);
    revision_ = changes->revision;
  }
}

ConfigHandler LogLevelHandler(std::string initial_level) {
  return [initial_level](const std::optional<nlohmann::json>& value) -> absl::Status {
    const std::string name = !value ? initial_level : value->is_string() ? value->get<std::string>() : "";
    const spdlog::level::level_enum level = spdlog::level::from_str(name);
    // from_str answers `off` for any unknown name: accept that only when asked for.
    if (name.empty() || (level == spdlog::level::off && name != "off")) {
      return absl::InvalidArgumentError(fmt::format(
          "log.level must be one of trace, debug, info, warn, error, critical, off; got {}",
          value ? value->dump() : "nothing"));
    }
    spdlog::set_level(level);
    return absl::OkStatus();
  };
}

}  // namespace triplane::control
