// Admin API: deployments, instances and the overview (docs/api.md).

#include <algorithm>

#include "common/build_info.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "control/admin/admin_internal.h"
#include "fmt/format.h"

namespace triplane::control::admin_internal {

using common::HttpMethod;
using nlohmann::json;

namespace {

constexpr int64_t kInt32Max = INT32_MAX;
// The most replicas a deployment may ask for, as autoscale's max_replicas: a typo of
// 1000000000 is refused rather than left for the reconciler to try.
constexpr int64_t kMaxReplicas = 1000;
// A PATCH without if_generation re-reads and retries this often when another writer
// changed the deployment between its read and its write.
constexpr int kPatchAttempts = 3;

json DeploymentJson(const Deployment& deployment, const std::vector<Instance>& instances) {
  json j = ToJson(deployment);
  j["instances"] = JsonArray(instances);
  return j;
}

absl::StatusOr<json> DeploymentWithInstances(Store& store, const Deployment& deployment) {
  TP_ASSIGN_OR_RETURN(std::vector<Instance> instances, store.ListInstances(deployment.name));
  return DeploymentJson(deployment, instances);
}

// Replaces the fields of `engine` that `object` gives.
absl::Status ApplyEngine(const json& object, EngineSettings& engine) {
  const Fields fields(object, "engine.");
  TP_ASSIGN_OR_RETURN(std::optional<int64_t> threads, fields.Int("threads", 0, kInt32Max));
  TP_ASSIGN_OR_RETURN(std::optional<int64_t> context, fields.Int("context_length", 0, kInt32Max));
  TP_ASSIGN_OR_RETURN(std::optional<int64_t> kv_memory,
                      fields.Int("kv_memory_bytes", 0, INT64_MAX));
  TP_ASSIGN_OR_RETURN(std::optional<int64_t> batch, fields.Int("max_batch_tokens", 0, kInt32Max));
  TP_ASSIGN_OR_RETURN(std::optional<std::string> kv_type, fields.String("kv_type"));  // checked by the store
  if (threads) engine.threads = static_cast<int32_t>(*threads);
  if (context) engine.context_length = static_cast<int32_t>(*context);
  if (kv_memory) engine.kv_memory_bytes = *kv_memory;
  if (batch) engine.max_batch_tokens = static_cast<int32_t>(*batch);
  if (kv_type) engine.kv_type = *kv_type;
  return absl::OkStatus();
}

// "autoscale": null turns autoscaling off; an object changes the fields it gives (the
// others keep their value, or their default when autoscaling was off). Replicas are
// brought within the new [min, max] at once.
absl::Status ApplyAutoscale(const json& body, DeploymentSpec& spec) {
  const auto field = body.find("autoscale");
  if (field == body.end()) return absl::OkStatus();
  if (field->is_null()) {
    spec.autoscale.reset();
    return absl::OkStatus();
  }
  AutoscaleSpec autoscale = spec.autoscale.value_or(AutoscaleSpec{});
  if (!spec.autoscale) {
    // Off until now: from 1 up to the current replicas unless the body says otherwise.
    autoscale.max_replicas = std::max(1, spec.replicas);
  }
  if (absl::Status status = ApplyAutoscaleJson(*field, autoscale); !status.ok()) {
    return BadParam("autoscale", common::ToStd(status.message()));
  }
  // A bound the body does not give follows the one it gives ("max 3" on 1-5 is 1-3,
  // "min 4" on 1-2 is 4-4).
  if (!field->contains("max_replicas")) autoscale.max_replicas = std::max(autoscale.max_replicas, autoscale.min_replicas);
  if (!field->contains("min_replicas")) {
    autoscale.min_replicas = std::min(autoscale.min_replicas, autoscale.max_replicas);
  }
  if (absl::Status status = ValidateAutoscale(autoscale); !status.ok()) {
    return BadParam("autoscale", common::ToStd(status.message()));
  }
  spec.autoscale = autoscale;
  spec.replicas = std::clamp(spec.replicas, autoscale.min_replicas, autoscale.max_replicas);
  return absl::OkStatus();
}

// Applies the spec fields a POST or PATCH body gives (replicas, version, engine, autoscale).
absl::Status ApplySpecFields(const Fields& fields, const json& body, DeploymentSpec& spec) {
  TP_ASSIGN_OR_RETURN(std::optional<int64_t> replicas, fields.Int("replicas", 0, kMaxReplicas));
  TP_ASSIGN_OR_RETURN(std::optional<std::string> version, fields.String("version"));
  TP_ASSIGN_OR_RETURN(const json* engine, fields.Object("engine"));
  if (replicas) spec.replicas = static_cast<int32_t>(*replicas);
  if (version) spec.version = *version;
  if (engine != nullptr) TP_RETURN_IF_ERROR(ApplyEngine(*engine, spec.engine));
  return ApplyAutoscale(body, spec);
}

// The newest version (highest number) of `model`: what a deployment gets by default.
absl::StatusOr<std::string> NewestVersion(Store& store, const std::string& model) {
  TP_ASSIGN_OR_RETURN(std::vector<ModelVersion> versions, store.ListModelVersions(model));
  if (versions.empty()) {
    return absl::FailedPreconditionError(
        fmt::format("model {} has no versions yet; add or pull one first", model));
  }
  return std::max_element(
             versions.begin(), versions.end(),
             [](const ModelVersion& a, const ModelVersion& b) { return a.number < b.number; })
      ->version;
}

void Changed(const Services& services) {
  if (services.on_deployments_changed) services.on_deployments_changed();
}

Result ListDeployments(Store& store) {
  TP_ASSIGN_OR_RETURN(std::vector<Deployment> deployments, store.ListDeployments());
  TP_ASSIGN_OR_RETURN(std::vector<Instance> instances, store.ListInstances(""));
  auto by_deployment = GroupBy(std::move(instances), &Instance::deployment);
  json data = json::array();
  for (const Deployment& d : deployments) data.push_back(DeploymentJson(d, by_deployment[d.name]));
  return List(std::move(data));
}

Result CreateDeployment(const Services& services, const Call& call) {
  TP_ASSIGN_OR_RETURN(json body, ParseBody(call.request));
  const Fields fields(body);
  TP_ASSIGN_OR_RETURN(std::string name, fields.RequiredString("name"));
  DeploymentSpec spec;
  TP_ASSIGN_OR_RETURN(spec.model, fields.RequiredString("model"));
  TP_RETURN_IF_ERROR(ApplySpecFields(fields, body, spec));
  if (spec.version.empty()) {
    TP_ASSIGN_OR_RETURN(spec.version, NewestVersion(services.store, spec.model));
  }
  TP_ASSIGN_OR_RETURN(Deployment created, services.store.CreateDeployment(name, spec, call.write));
  Changed(services);
  TP_ASSIGN_OR_RETURN(json j, DeploymentWithInstances(services.store, created));
  return Ok(std::move(j), 201);
}

Result PatchDeployment(const Services& services, const Call& call) {
  TP_ASSIGN_OR_RETURN(json body, ParseBody(call.request));
  const Fields fields(body);
  TP_ASSIGN_OR_RETURN(std::optional<int64_t> if_generation,
                      fields.Int("if_generation", 1, INT64_MAX));
  TP_ASSIGN_OR_RETURN(std::optional<std::string> model, fields.String("model"));
  const std::string name = PathParam(call, "name");
  absl::StatusOr<Deployment> updated = absl::AbortedError("not attempted");
  for (int attempt = 0; attempt < kPatchAttempts && absl::IsAborted(updated.status()); ++attempt) {
    TP_ASSIGN_OR_RETURN(Deployment current, services.store.GetDeployment(name));
    if (model && *model != current.spec.model) {
      return BadParam("model", fmt::format("a deployment's model cannot change (it serves {}); "
                                           "create another deployment",
                                           current.spec.model));
    }
    DeploymentSpec spec = current.spec;
    TP_RETURN_IF_ERROR(ApplySpecFields(fields, body, spec));
    // Without the caller's if_generation, our own read guards the read-modify-write.
    updated = services.store.UpdateDeploymentSpec(
        name, spec, if_generation.value_or(current.generation), call.write);
    if (if_generation) break;  // the caller's condition failed: theirs to re-read
  }
  if (!updated.ok()) return updated.status();
  Changed(services);
  TP_ASSIGN_OR_RETURN(json j, DeploymentWithInstances(services.store, *updated));
  return Ok(std::move(j));
}

Result ListInstances(Store& store, const Call& call) {
  const std::string deployment = call.request.QueryParam("deployment").value_or("");
  TP_ASSIGN_OR_RETURN(std::vector<Instance> instances, store.ListInstances(deployment));
  return List(JsonArray(instances));
}

// Counts per name, every name present (0 when none).
template <typename E>
json CountBy(const std::vector<E>& values, std::initializer_list<E> all) {
  json counts = {{"total", values.size()}};
  for (E e : all) {
    counts[std::string(ToString(e))] = std::count(values.begin(), values.end(), e);
  }
  return counts;
}

Result Overview(const Services& services) {
  Store& store = services.store;
  TP_ASSIGN_OR_RETURN(std::vector<Model> models, store.ListModels());
  TP_ASSIGN_OR_RETURN(std::vector<ModelVersion> versions, store.ListModelVersions(""));
  TP_ASSIGN_OR_RETURN(std::vector<Deployment> deployments, store.ListDeployments());
  TP_ASSIGN_OR_RETURN(std::vector<Instance> instances, store.ListInstances(""));
  TP_ASSIGN_OR_RETURN(int64_t revision, store.ConfigRevision());
  // Audit ids have no gaps, so the newest row's id is the number of rows.
  TP_ASSIGN_OR_RETURN(std::vector<AuditRecord> newest,
                      store.ListAudit({.limit = 1, .newest_first = true}));
  std::vector<DeploymentPhase> phases;
  for (const Deployment& d : deployments) phases.push_back(d.status.phase);
  std::vector<InstanceState> states;
  for (const Instance& i : instances) states.push_back(i.state);
  using P = DeploymentPhase;
  using S = InstanceState;
  return Ok({{"version", common::GetBuildInfo().version},
             {"store", {{"kind", store.kind()}, {"description", store.description()}}},
             {"models", models.size()},
             {"versions", versions.size()},
             {"deployments", CountBy(phases, {P::kPending, P::kProgressing, P::kRunning,
                                              P::kDegraded, P::kFailed})},
             {"instances",
              CountBy(states, {S::kStarting, S::kReady, S::kDraining, S::kStopped, S::kFailed})},
             {"capacity", services.capacity ? services.capacity() : json(nullptr)},
             {"config_revision", revision},
             {"audit_rows", newest.empty() ? 0 : newest.front().id}});
}

}  // namespace

std::vector<Route> DeploymentRoutes(const Services& services) {
  Store& store = services.store;
  return {
      {HttpMethod::kGet, "/admin/v1/overview",
       [&services](const Call&) { return Overview(services); }},
      {HttpMethod::kGet, "/admin/v1/deployments",
       [&store](const Call&) { return ListDeployments(store); }},
      {HttpMethod::kPost, "/admin/v1/deployments",
       [&services](const Call& call) { return CreateDeployment(services, call); }},
      {HttpMethod::kGet, "/admin/v1/deployments/{name}",
       [&store](const Call& call) -> Result {
         TP_ASSIGN_OR_RETURN(Deployment d, store.GetDeployment(PathParam(call, "name")));
         TP_ASSIGN_OR_RETURN(json j, DeploymentWithInstances(store, d));
         return Ok(std::move(j));
       }},
      {HttpMethod::kPatch, "/admin/v1/deployments/{name}",
       [&services](const Call& call) { return PatchDeployment(services, call); }},
      {HttpMethod::kDelete, "/admin/v1/deployments/{name}",
       [&services](const Call& call) -> Result {
         TP_RETURN_IF_ERROR(services.store.DeleteDeployment(PathParam(call, "name"), call.write));
         Changed(services);
         return Deleted();
       }},
      {HttpMethod::kPost, "/admin/v1/deployments/{name}/wake",
       [&services](const Call& call) -> Result {
         TP_ASSIGN_OR_RETURN(Deployment d, services.store.GetDeployment(PathParam(call, "name")));
         if (services.wake) services.wake(d.name);
         return Ok({{"deployment", d.name}, {"replicas", d.spec.replicas},
                    {"autoscale", d.spec.autoscale ? ToJson(*d.spec.autoscale) : json(nullptr)}});
       }},
      {HttpMethod::kGet, "/admin/v1/instances",
       [&store](const Call& call) { return ListInstances(store, call); }},
  };
}

}  // namespace triplane::control::admin_internal
