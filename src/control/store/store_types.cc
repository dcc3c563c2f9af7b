#include "control/store/store_types.h"

#include <array>
#include <cstdint>
#include <utility>

#include "common/http_types.h"
#include "fmt/format.h"

namespace triplane::control {
namespace {

template <typename E, size_t N>
absl::StatusOr<E> ParseEnum(std::string_view what, std::string_view text,
                            const std::array<std::pair<E, std::string_view>, N>& names) {
  for (const auto& [value, name] : names) {
    if (name == text) return value;
  }
  return absl::InvalidArgumentError(fmt::format("unknown {} '{}'", what, text));
}

constexpr std::array<std::pair<DeploymentPhase, std::string_view>, 5> kPhaseNames = {{
    {DeploymentPhase::kPending, "pending"},
    {DeploymentPhase::kProgressing, "progressing"},
    {DeploymentPhase::kRunning, "running"},
    {DeploymentPhase::kDegraded, "degraded"},
    {DeploymentPhase::kFailed, "failed"},
}};

constexpr std::array<std::pair<InstanceState, std::string_view>, 5> kStateNames = {{
    {InstanceState::kStarting, "starting"},
    {InstanceState::kReady, "ready"},
    {InstanceState::kDraining, "draining"},
    {InstanceState::kStopped, "stopped"},
    {InstanceState::kFailed, "failed"},
}};

constexpr std::array<std::pair<KeyRole, std::string_view>, 2> kRoleNames = {{
    {KeyRole::kAdmin, "admin"},
    {KeyRole::kUser, "user"},
}};

constexpr std::array<std::pair<UsageGroupBy, std::string_view>, 5> kGroupByNames = {{
    {UsageGroupBy::kAll, "all"},
    {UsageGroupBy::kKey, "key"},
    {UsageGroupBy::kTeam, "team"},
    {UsageGroupBy::kModel, "model"},
    {UsageGroupBy::kDay, "day"},
}};

template <typename E, size_t N>
std::string_view NameOf(E value, const std::array<std::pair<E, std::string_view>, N>& names) {
  for (const auto& [v, name] : names) {
    if (v == value) return name;
  }
  return "unknown";
}

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-' || c == '/';
}

// RFC 3339 in UTC with microseconds, as the admin API shows times.
std::string RowTimeText(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", t, absl::UTCTimeZone());
}

nlohmann::json OptionalTime(const std::optional<absl::Time>& t) {
  return t.has_value() ? nlohmann::json(RowTimeText(*t)) : nlohmann::json(nullptr);
}

}  // namespace

std::string_view ToString(DeploymentPhase phase) { return NameOf(phase, kPhaseNames); }
std::string_view ToString(InstanceState state) { return NameOf(state, kStateNames); }
std::string_view ToString(KeyRole role) { return NameOf(role, kRoleNames); }
std::string_view ToString(UsageGroupBy group_by) { return NameOf(group_by, kGroupByNames); }

absl::StatusOr<DeploymentPhase> ParseDeploymentPhase(std::string_view text) {
  return ParseEnum("deployment phase", text, kPhaseNames);
}
absl::StatusOr<InstanceState> ParseInstanceState(std::string_view text) {
  return ParseEnum("instance state", text, kStateNames);
}
absl::StatusOr<KeyRole> ParseKeyRole(std::string_view text) {
  return ParseEnum("key role", text, kRoleNames);
}
absl::StatusOr<UsageGroupBy> ParseUsageGroupBy(std::string_view text) {
  return ParseEnum("usage grouping", text, kGroupByNames);
}

namespace {
constexpr std::array<std::pair<AutoscaleMetric, std::string_view>, 3> kMetricNames = {{
    {AutoscaleMetric::kInFlight, "in_flight"},
    {AutoscaleMetric::kWaiting, "waiting"},
    {AutoscaleMetric::kKvCache, "kv_cache"},
}};
}  // namespace

std::string_view ToString(AutoscaleMetric metric) { return NameOf(metric, kMetricNames); }
absl::StatusOr<AutoscaleMetric> ParseAutoscaleMetric(std::string_view text) {
  return ParseEnum("autoscale metric (in_flight, waiting or kv_cache)", text, kMetricNames);
}

double DefaultAutoscaleTarget(AutoscaleMetric metric) {
  switch (metric) {
    case AutoscaleMetric::kInFlight: return 4;
    case AutoscaleMetric::kWaiting: return 2;
    case AutoscaleMetric::kKvCache: return 0.8;
  }
  return 4;
}

absl::Status ValidateAutoscale(const AutoscaleSpec& a) {
  auto invalid = [](std::string message) { return absl::InvalidArgumentError("autoscale: " + message); };
  if (a.max_replicas < 1 || a.max_replicas > 1000) return invalid("max_replicas must be 1 to 1000");
  if (a.min_replicas < 0 || a.min_replicas > a.max_replicas) {
    return invalid(fmt::format("min_replicas must be 0 to max_replicas ({}), not {}", a.max_replicas,
                               a.min_replicas));
  }
  if ((a.min_replicas == 0) != a.scale_to_zero) {
    return invalid("min_replicas 0 and scale_to_zero go together (scaling to zero is opt-in)");
  }
  if (!(a.target > 0) || (a.metric == AutoscaleMetric::kKvCache && a.target > 1)) {
    return invalid(a.metric == AutoscaleMetric::kKvCache
                       ? "the kv_cache target is a fraction above 0, at most 1"
                       : "target must be above 0");
  }
  if (a.stable_window_seconds < 1 || a.stable_window_seconds > 3600) {
    return invalid("stable_window_seconds must be 1 to 3600");
  }
  if (a.panic_window_seconds < 1 || a.panic_window_seconds > a.stable_window_seconds) {
    return invalid("panic_window_seconds must be 1 to stable_window_seconds");
  }
  if (!(a.panic_threshold >= 1 && a.panic_threshold <= 100)) {
    return invalid("panic_threshold must be 1 to 100");
  }
  for (int32_t cooldown : {a.scale_up_cooldown_seconds, a.scale_down_cooldown_seconds}) {
    if (cooldown < 0 || cooldown > 3600) return invalid("cooldowns must be 0 to 3600 seconds");
  }
  if (a.max_step < 0) return invalid("max_step must not be negative (0: no limit)");
  return absl::OkStatus();
}

nlohmann::json ToJson(const AutoscaleSpec& a) {
  return {{"min_replicas", a.min_replicas},
          {"max_replicas", a.max_replicas},
          {"metric", ToString(a.metric)},
          {"target", a.target},
          {"stable_window_seconds", a.stable_window_seconds},
          {"panic_window_seconds", a.panic_window_seconds},
          {"panic_threshold", a.panic_threshold},
          {"scale_up_cooldown_seconds", a.scale_up_cooldown_seconds},
          {"scale_down_cooldown_seconds", a.scale_down_cooldown_seconds},
          {"max_step", a.max_step},
          {"scale_to_zero", a.scale_to_zero}};
}

absl::Status ApplyAutoscaleJson(const nlohmann::json& object, AutoscaleSpec& a) {
  if (!object.is_object()) return absl::InvalidArgumentError("autoscale must be an object or null");
  auto wrong = [](std::string_view name, std::string_view what) {
    return absl::InvalidArgumentError(fmt::format("autoscale.{} must be {}", name, what));
  };
  bool target_given = false;
  for (const auto& [name, value] : object.items()) {
    if (name == "metric") {
      if (!value.is_string()) return wrong(name, "a string");
      auto metric = ParseAutoscaleMetric(value.get<std::string>());
      if (!metric.ok()) return metric.status();
      a.metric = *metric;
    } else if (name == "target" || name == "panic_threshold") {
      if (!value.is_number()) return wrong(name, "a number");
      (name == "target" ? a.target : a.panic_threshold) = value.get<double>();
      target_given |= name == "target";
    } else if (name == "scale_to_zero") {
      if (!value.is_boolean()) return wrong(name, "true or false");
      a.scale_to_zero = value.get<bool>();
    } else {
      int32_t* field = name == "min_replicas"                  ? &a.min_replicas
                       : name == "max_replicas"                ? &a.max_replicas
                       : name == "stable_window_seconds"       ? &a.stable_window_seconds
                       : name == "panic_window_seconds"        ? &a.panic_window_seconds
                       : name == "scale_up_cooldown_seconds"   ? &a.scale_up_cooldown_seconds
                       : name == "scale_down_cooldown_seconds" ? &a.scale_down_cooldown_seconds
                       : name == "max_step"                    ? &a.max_step
                                                               : nullptr;
      if (field == nullptr) return absl::InvalidArgumentError(fmt::format("unknown field autoscale.{}", name));
      if (!value.is_number_integer() || value.get<int64_t>() < INT32_MIN || value.get<int64_t>() > INT32_MAX) {
        return wrong(name, "an integer");
      }
      *field = static_cast<int32_t>(value.get<int64_t>());
    }
  }
  if (object.contains("metric") && !target_given) a.target = DefaultAutoscaleTarget(a.metric);
  return absl::OkStatus();
}

absl::Status ValidateName(std::string_view what, std::string_view name) {
  auto invalid = [&](std::string_view why) {
    return absl::InvalidArgumentError(fmt::format("invalid {} name '{}': {}", what, name, why));
  };
  if (name.empty())
    return absl::InvalidArgumentError(fmt::format("{} name must not be empty", what));
  if (name.size() > 128) return invalid("longer than 128 bytes");
  for (char c : name) {
    if (!IsNameChar(c)) return invalid("only letters, digits, '.', '_', '-' and '/' are allowed");
  }
  if (name.front() == '.' || name.front() == '-' || name.front() == '/') {
    return invalid("must start with a letter, digit or '_'");
  }
  if (name.back() == '/') return invalid("must not end with '/'");
  if (name.find("..") != std::string_view::npos) return invalid("must not contain '..'");
  if (name.find("//") != std::string_view::npos) return invalid("must not contain '//'");
  return absl::OkStatus();
}

absl::Status ValidateBackendUrl(std::string_view url) {
  std::string error;
  const std::optional<common::HttpUrl> parsed = common::ParseHttpUrl(url, &error);
  if (!parsed) return absl::InvalidArgumentError(fmt::format("invalid backend URL: {}", error));
  if (parsed->target.find_first_of("?#") != std::string::npos) {
    return absl::InvalidArgumentError(
        "invalid backend URL: give the API root (e.g. https://host/v1), without a query or fragment");
  }
  if (url.size() > 2048) return absl::InvalidArgumentError("invalid backend URL: longer than 2048 bytes");
  return absl::OkStatus();
}

absl::Status ValidateConfigKey(std::string_view key) {
  if (key.empty()) return absl::InvalidArgumentError("config key must not be empty");
  if (key.size() > 256) {
    return absl::InvalidArgumentError(
        fmt::format("config key '{}…' is longer than 256 bytes", key.substr(0, 32)));
  }
  for (char c : key) {
    if (!IsNameChar(c)) {
      return absl::InvalidArgumentError(fmt::format(
          "invalid config key '{}': only letters, digits, '.', '_', '-' and '/' are allowed", key));
    }
  }
  return absl::OkStatus();
}

bool IsSha256Hex(std::string_view text) {
  if (text.size() != 64) return false;
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

nlohmann::json ToJson(const Model& model) {
  return {{"name", model.name},
          {"description", model.description},
          {"created_at", RowTimeText(model.created_at)}};
}

nlohmann::json ToJson(const ModelVersion& v) {
  return {{"model", v.model},
          {"version", v.version},
          {"number", v.number},
          {"file_path", v.file_path},
          {"size_bytes", v.size_bytes},
          {"sha256", v.sha256},
          {"source", v.source},
          {"gguf",
           {{"architecture", v.gguf.architecture},
            {"parameter_count", v.gguf.parameter_count},
            {"file_type", v.gguf.file_type},
            {"tensor_types", v.gguf.tensor_types},
            {"context_length", v.gguf.context_length},
            {"has_chat_template", v.gguf.has_chat_template},
            {"extra", v.gguf.extra}}},
          {"created_at", RowTimeText(v.created_at)}};
}

nlohmann::json ToJson(const Deployment& d) {
  return {{"name", d.name},
          {"model", d.spec.model},
          {"version", d.spec.version},
          {"replicas", d.spec.replicas},
          {"engine",
           {{"threads", d.spec.engine.threads},
            {"context_length", d.spec.engine.context_length},
            {"kv_memory_bytes", d.spec.engine.kv_memory_bytes},
            {"max_batch_tokens", d.spec.engine.max_batch_tokens},
            {"kv_type", d.spec.engine.kv_type}}},
          {"canary", d.spec.canary_version.empty()
                         ? nlohmann::json(nullptr)
                         : nlohmann::json{{"version", d.spec.canary_version}, {"percent", d.spec.canary_percent}}},
          {"autoscale", d.spec.autoscale ? ToJson(*d.spec.autoscale) : nlohmann::json(nullptr)},
          {"previous_version", d.previous_version},
          {"generation", d.generation},
          {"status",
           {{"phase", ToString(d.status.phase)},
            {"reason", d.status.reason},
            {"ready_replicas", d.status.ready_replicas},
            {"observed_generation", d.status.observed_generation}}},
          {"created_at", RowTimeText(d.created_at)},
          {"updated_at", RowTimeText(d.updated_at)}};
}

nlohmann::json ToJson(const DeploymentEvent& e) {
  return {{"id", e.id},           {"deployment", e.deployment}, {"time", RowTimeText(e.time)},
          {"kind", e.kind},       {"message", e.message},       {"actor", e.actor}};
}

nlohmann::json ToJson(const Instance& i) {
  nlohmann::json url = nullptr;
  if (i.port > 0) {
    const bool ipv6 = i.host.find(':') != std::string::npos;
    url = fmt::format("http://{}{}{}:{}", ipv6 ? "[" : "", i.host, ipv6 ? "]" : "", i.port);
  }
  return {{"id", i.id},
          {"deployment", i.deployment},
          {"model", i.model},
          {"version", i.version},
          {"provider", i.provider},
          {"host", i.host},
          {"port", i.port},
          {"url", std::move(url)},
          {"pid", i.pid},
          {"state", ToString(i.state)},
          {"restarts", i.restarts},
          {"last_error", i.last_error},
          {"created_at", RowTimeText(i.created_at)},
          {"updated_at", RowTimeText(i.updated_at)}};
}

nlohmann::json ToJson(const Team& team) {
  return {{"name", team.name},
          {"description", team.description},
          {"created_at", RowTimeText(team.created_at)}};
}

nlohmann::json ToJson(const Backend& backend) {
  return {{"name", backend.name},
          {"model", backend.model},
          {"base_url", backend.base_url},
          {"remote_model", backend.remote_model},
          {"has_api_key", !backend.api_key.empty()},
          {"created_at", RowTimeText(backend.created_at)},
          {"updated_at", RowTimeText(backend.updated_at)}};
}

nlohmann::json ToJson(const ApiKey& key) {
  return {{"id", key.id},
          {"name", key.name},
          {"role", ToString(key.role)},
          {"team", key.team},
          {"allowed_models", key.allowed_models},
          {"expires_at", OptionalTime(key.expires_at)},
          {"revoked_at", OptionalTime(key.revoked_at)},
          {"created_at", RowTimeText(key.created_at)}};
}

nlohmann::json ToJson(const UsageRecord& r) {
  return {{"id", r.id},
          {"request_id", r.request_id},
          {"time", RowTimeText(r.time)},
          {"key_id", r.key_id},
          {"team", r.team},
          {"model", r.model},
          {"version", r.version},
          {"deployment", r.deployment},
          {"instance", r.instance},
          {"endpoint", r.endpoint},
          {"status", r.status},
          {"stream", r.stream},
          {"prompt_tokens", r.prompt_tokens},
          {"completion_tokens", r.completion_tokens},
          {"cached_tokens", r.cached_tokens},
          {"latency_seconds", r.latency_seconds},
          {"ttft_seconds", r.ttft_seconds},
          {"cost_micros", r.cost_micros},
          {"error", r.error}};
}

nlohmann::json ToJson(const UsageTotals& t) {
  return {{"group", t.group},
          {"requests", t.requests},
          {"errors", t.errors},
          {"prompt_tokens", t.prompt_tokens},
          {"completion_tokens", t.completion_tokens},
          {"cached_tokens", t.cached_tokens},
          {"cost_micros", t.cost_micros}};
}

}  // namespace triplane::control
