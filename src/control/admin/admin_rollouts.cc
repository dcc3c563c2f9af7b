// Admin API: rollouts (rolling or canary), promote, abort, rollback, and deployment
// events (docs/api.md). Each step is a change of the deployment's spec (audited with the
// caller as actor) plus an event that says what happened; the reconciler does the rest.

#include "common/status_macros.h"
#include "control/admin/admin_internal.h"
#include "control/deploy/canary_analysis.h"
#include "fmt/format.h"

namespace triplane::control::admin_internal {

using common::HttpMethod;
using nlohmann::json;

namespace {

constexpr int64_t kMaxEvents = 1000;

// Writes `spec` over deployment `before` (409 when someone changed it meanwhile), records
// `message` as an event of `kind`, and answers the deployment.
Result Change(const Services& services, const Call& call, const Deployment& before, const DeploymentSpec& spec,
              std::string kind, std::string message) {
  TP_ASSIGN_OR_RETURN(Deployment after,
                      services.store.UpdateDeploymentSpec(before.name, spec, before.generation, call.write));
  if (services.on_deployments_changed) services.on_deployments_changed();
  TP_RETURN_IF_ERROR(services.store
                         .AppendEvent({.deployment = after.name,
                                       .kind = std::move(kind),
                                       .message = std::move(message),
                                       .actor = call.write.actor})
                         .status());
  return Ok(ToJson(after));
}

absl::Status NoCanary(const Deployment& d) {
  return absl::FailedPreconditionError(fmt::format("deployment '{}' has no canary in progress", d.name));
}

Result StartRollout(const Services& services, const Call& call) {
  TP_ASSIGN_OR_RETURN(Deployment d, services.store.GetDeployment(PathParam(call, "name")));
  TP_ASSIGN_OR_RETURN(json body, ParseBody(call.request));
  const Fields fields(body);
  TP_ASSIGN_OR_RETURN(std::string version, fields.RequiredString("version"));
  TP_ASSIGN_OR_RETURN(std::optional<std::string> strategy, fields.String("strategy"));
  TP_ASSIGN_OR_RETURN(std::optional<int64_t> percent, fields.Int("canary_percent", 1, 99));
  if (strategy && *strategy != "rolling" && *strategy != "canary") {
    return BadParam("strategy", "'strategy' must be \"rolling\" or \"canary\".");
  }
  if (!d.spec.canary_version.empty()) {
    return absl::FailedPreconditionError(fmt::format(
        "deployment '{}' is running canary {}: promote or abort it first", d.name, d.spec.canary_version));
  }
  if (version == d.spec.version) {
    return absl::FailedPreconditionError(fmt::format("deployment '{}' already serves version {}", d.name, version));
  }
  DeploymentSpec spec = d.spec;
  if (strategy.value_or("rolling") == "canary") {
    spec.canary_version = version;
    spec.canary_percent = static_cast<int32_t>(percent.value_or(10));
    return Change(services, call, d, spec, "canary",
                  fmt::format("canary {} started with {}% of the traffic next to {}", version, spec.canary_percent,
                              d.spec.version));
  }
  spec.version = version;
  return Change(services, call, d, spec, "rollout",
                fmt::format("rolling update from {} to {} started", d.spec.version, version));
}

Result Promote(const Services& services, const Call& call) {
  TP_ASSIGN_OR_RETURN(Deployment d, services.store.GetDeployment(PathParam(call, "name")));
  if (d.spec.canary_version.empty()) return NoCanary(d);
  DeploymentSpec spec = d.spec;
  spec.version = spec.canary_version;
  spec.canary_version.clear();
  spec.canary_percent = 0;
  return Change(services, call, d, spec, "rollout",
                fmt::format("canary {} promoted: rolling every replica from {} to it", spec.version, d.spec.version));
}

Result Abort(const Services& services, const Call& call, std::string_view kind) {
  TP_ASSIGN_OR_RETURN(Deployment d, services.store.GetDeployment(PathParam(call, "name")));
  if (d.spec.canary_version.empty()) return NoCanary(d);
  DeploymentSpec spec = d.spec;
  spec.canary_version.clear();
  spec.canary_percent = 0;
  return Change(services, call, d, spec, std::string(kind),
                fmt::format("canary {} aborted: all traffic back on {}", d.spec.canary_version, d.spec.version));
}

// Back to the previous version in one call: a canary is aborted; otherwise the version
// before the last change is rolled out again.
Result Rollback(const Services& services, const Call& call) {
  TP_ASSIGN_OR_RETURN(Deployment d, services.store.GetDeployment(PathParam(call, "name")));
  if (!d.spec.canary_version.empty()) return Abort(services, call, "rollback");
  if (d.previous_version.empty()) {
    return absl::FailedPreconditionError(
        fmt::format("deployment '{}' has always served version {}: nothing to roll back to", d.name, d.spec.version));
  }
  DeploymentSpec spec = d.spec;
  spec.version = d.previous_version;
  return Change(services, call, d, spec, "rollback",
                fmt::format("rolling back from {} to {}", d.spec.version, d.previous_version));
}

Result RolloutStatus(const Services& services, const Call& call) {
  TP_ASSIGN_OR_RETURN(Deployment d, services.store.GetDeployment(PathParam(call, "name")));
  const CanaryThresholds thresholds = ThresholdsFromConfig(services.store);
  TP_ASSIGN_OR_RETURN(auto stats, RecentStats(services.store, d.spec.model, thresholds.window));
  json versions = json::object();
  for (const auto& [version, s] : stats) versions[version] = ToJson(s);
  return Ok({{"deployment", d.name},
             {"version", d.spec.version},
             {"previous_version", d.previous_version},
             {"canary", d.spec.canary_version.empty()
                            ? json(nullptr)
                            : json{{"version", d.spec.canary_version}, {"percent", d.spec.canary_percent}}},
             {"window_seconds", absl::ToInt64Seconds(thresholds.window)},
             {"max_error_rate", thresholds.max_error_rate},
             {"versions", versions},
             {"phase", ToString(d.status.phase)},
             {"reason", d.status.reason}});
}

Result ListEvents(const Services& services, const Call& call, bool one) {
  TP_ASSIGN_OR_RETURN(std::optional<int64_t> after, QueryInt(call.request, "after_id", 0, INT64_MAX));
  TP_ASSIGN_OR_RETURN(std::optional<int64_t> limit, QueryInt(call.request, "limit", 1, kMaxEvents));
  std::string name;
  if (one) {
    name = PathParam(call, "name");
    TP_RETURN_IF_ERROR(services.store.GetDeployment(name).status());  // 404 for a typo
  }
  TP_ASSIGN_OR_RETURN(std::vector<DeploymentEvent> events,
                      services.store.ListEvents(name, after.value_or(0), limit.value_or(100)));
  return List(JsonArray(events));
}

}  // namespace

std::vector<Route> RolloutRoutes(const Services& services) {
  const Services* s = &services;
  return {
      {HttpMethod::kGet, "/admin/v1/deployments/{name}/rollout",
       [s](const Call& call) { return RolloutStatus(*s, call); }},
      {HttpMethod::kPost, "/admin/v1/deployments/{name}/rollout",
       [s](const Call& call) { return StartRollout(*s, call); }},
      {HttpMethod::kPost, "/admin/v1/deployments/{name}/rollout/promote",
       [s](const Call& call) { return Promote(*s, call); }},
      {HttpMethod::kPost, "/admin/v1/deployments/{name}/rollout/abort",
       [s](const Call& call) { return Abort(*s, call, "canary"); }},
      {HttpMethod::kPost, "/admin/v1/deployments/{name}/rollback",
       [s](const Call& call) { return Rollback(*s, call); }},
      {HttpMethod::kGet, "/admin/v1/deployments/{name}/events",
       [s](const Call& call) { return ListEvents(*s, call, true); }},
      {HttpMethod::kGet, "/admin/v1/events", [s](const Call& call) { return ListEvents(*s, call, false); }},
  };
}

}  // namespace triplane::control::admin_internal
