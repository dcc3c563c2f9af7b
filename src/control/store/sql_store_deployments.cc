// SqlStore: deployments (desired state and status) and instances (runtime state).

#include <algorithm>
#include <utility>

#include "common/json.h"
#include "common/status_macros.h"
#include "control/store/sql_store.h"
#include "control/store/sql_store_internal.h"

namespace triplane::control {
namespace {

using internal::FromMicros;
using internal::ToMicros;
using Row = std::vector<std::optional<std::string>>;

constexpr std::string_view kDeploymentColumns =
    "name, model, version, replicas, threads, context_length, kv_memory_bytes, max_batch_tokens, "
    "generation, "
    "phase, reason, ready_replicas, observed_generation, created_at, updated_at, canary_version, "
    "canary_percent, previous_version, autoscale, kv_type";

absl::StatusOr<Deployment> DeploymentFromRow(const Row& row) {
  sql::RowReader r(row);
  Deployment d;
  d.name = r.Text(0);
  d.spec.model = r.Text(1);
  d.spec.version = r.Text(2);
  d.spec.replicas = static_cast<int32_t>(r.Int(3));
  d.spec.engine.threads = static_cast<int32_t>(r.Int(4));
  d.spec.engine.context_length = static_cast<int32_t>(r.Int(5));
  d.spec.engine.kv_memory_bytes = r.Int(6);
  d.spec.engine.max_batch_tokens = static_cast<int32_t>(r.Int(7));
  d.generation = r.Int(8);
  const std::string phase = r.Text(9);
  d.status.reason = r.Text(10);
  d.status.ready_replicas = static_cast<int32_t>(r.Int(11));
  d.status.observed_generation = r.Int(12);
  d.created_at = FromMicros(r.Int(13));
  d.updated_at = FromMicros(r.Int(14));
  d.spec.canary_version = r.Text(15);
  d.spec.canary_percent = static_cast<int32_t>(r.Int(16));
  d.previous_version = r.Text(17);
  const std::string autoscale = r.Text(18);
  d.spec.engine.kv_type = r.Text(19);
  TP_RETURN_IF_ERROR(r.status());
  if (!autoscale.empty()) {
    nlohmann::json stored;
    TP_RETURN_IF_ERROR(internal::ParseStored(autoscale, "autoscale settings", stored));
    d.spec.autoscale.emplace();
    TP_RETURN_IF_ERROR(ApplyAutoscaleJson(stored, *d.spec.autoscale));
  }
  TP_ASSIGN_OR_RETURN(d.status.phase, ParseDeploymentPhase(phase));
  return d;
}

absl::Status ValidateSpec(const DeploymentSpec& spec) {
  TP_RETURN_IF_ERROR(ValidateName("model", spec.model));
  TP_RETURN_IF_ERROR(ValidateName("version", spec.version));
  if (spec.replicas < 0) return absl::InvalidArgumentError("replicas must not be negative");
  const EngineSettings& e = spec.engine;
  if (e.threads < 0 || e.context_length < 0 || e.kv_memory_bytes < 0 || e.max_batch_tokens < 0) {
    return absl::InvalidArgumentError("engine settings must not be negative (0 means the default)");
  }
  if (!e.kv_type.empty() && e.kv_type != "f16" && e.kv_type != "q8_0") {
    return absl::InvalidArgumentError(fmt::format("kv_type '{}' is not f16 or q8_0", e.kv_type));
  }
  if (spec.canary_version.empty() != (spec.canary_percent == 0)) {
    return absl::InvalidArgumentError("a canary needs both a version and a percent (1 to 99)");
  }
  if (!spec.canary_version.empty()) {
    TP_RETURN_IF_ERROR(ValidateName("version", spec.canary_version));
    if (spec.canary_percent < 1 || spec.canary_percent > 99) {
      return absl::InvalidArgumentError(
          fmt::format("canary percent must be 1 to 99, not {}", spec.canary_percent));
    }
    if (spec.canary_version == spec.version) {
      return absl::InvalidArgumentError(
          fmt::format("the canary version must differ from the deployed version {}", spec.version));
    }
  }
  if (spec.autoscale) TP_RETURN_IF_ERROR(ValidateAutoscale(*spec.autoscale));
  return absl::OkStatus();
}

// The autoscale column: '' when off.
std::string AutoscaleText(const DeploymentSpec& spec) {
  return spec.autoscale ? common::DumpJson(ToJson(*spec.autoscale)) : std::string();
}

absl::Status CheckVersionExists(sql::Transaction& txn, const DeploymentSpec& spec) {
  for (const std::string& version : {spec.version, spec.canary_version}) {
    if (version.empty()) continue;
    TP_ASSIGN_OR_RETURN(sql::Result result,
                        txn.Exec("SELECT 1 FROM model_versions WHERE model = $1 AND version = $2",
                                 {spec.model, version}));
    if (result.rows.empty()) {
      return internal::NotFound("model version", fmt::format("{}:{}", spec.model, version));
    }
  }
  return absl::OkStatus();
}

constexpr std::string_view kInstanceColumns =
    "id, deployment, model, version, provider, host, port, pid, state, restarts, last_error, "
    "provider_data, "
    "created_at, updated_at";

absl::StatusOr<Instance> InstanceFromRow(const Row& row) {
  sql::RowReader r(row);
  Instance i;
  i.id = r.Text(0);
  i.deployment = r.Text(1);
  i.model = r.Text(2);
  i.version = r.Text(3);
  i.provider = r.Text(4);
  i.host = r.Text(5);
  i.port = static_cast<int32_t>(r.Int(6));
  i.pid = r.Int(7);
  const std::string state = r.Text(8);
  i.restarts = static_cast<int32_t>(r.Int(9));
  i.last_error = r.Text(10);
  const std::string provider_data = r.Text(11);
  i.created_at = FromMicros(r.Int(12));
  i.updated_at = FromMicros(r.Int(13));
  TP_RETURN_IF_ERROR(r.status());
  TP_ASSIGN_OR_RETURN(i.state, ParseInstanceState(state));
  TP_RETURN_IF_ERROR(
      internal::ParseStored(provider_data, "instance provider data", i.provider_data));
  return i;
}

}  // namespace

// ---- Deployments ----

absl::StatusOr<Deployment> SqlStore::CreateDeployment(std::string_view name,
                                                      const DeploymentSpec& spec,
                                                      const WriteOptions& options) {
  TP_RETURN_IF_ERROR(ValidateName("deployment", name));
  TP_RETURN_IF_ERROR(ValidateSpec(spec));
  Deployment created{.name = std::string(name), .spec = spec, .generation = 1};
  created.created_at = created.updated_at = FromMicros(NowMicros());
  TP_RETURN_IF_ERROR(Write([&](sql::Transaction& txn) -> absl::Status {
    TP_ASSIGN_OR_RETURN(sql::Result existing,
                        txn.Exec("SELECT 1 FROM deployments WHERE name = $1", {name}));
    if (!existing.rows.empty()) return internal::AlreadyExists("deployment", name);
    TP_RETURN_IF_ERROR(CheckVersionExists(txn, spec));
    const EngineSettings& e = spec.engine;
    TP_RETURN_IF_ERROR(
        txn.Exec(fmt::format("INSERT INTO deployments ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, "
                             "$9, $10, $11, "
                             "$12, $13, $14, $15, $16, $17, $18, $19, $20)",
                             kDeploymentColumns),
                 {created.name, spec.model, spec.version, spec.replicas, e.threads,
                  e.context_length, e.kv_memory_bytes, e.max_batch_tokens, created.generation,
                  ToString(created.status.phase), created.status.reason,
                  created.status.ready_replicas, created.status.observed_generation,
                  ToMicros(created.created_at), ToMicros(created.updated_at), spec.canary_version,
                  spec.canary_percent, std::string(), AutoscaleText(spec), e.kv_type})
            .status());
    return AuditIn(txn, options, "deployment.create", "deployment/" + created.name, nullptr,
                   ToJson(created));
  }));
  return created;
}

absl::StatusOr<Deployment> SqlStore::GetDeployment(std::string_view name) {
  absl::StatusOr<Deployment> found = internal::NotFound("deployment", name);
  TP_RETURN_IF_ERROR(Read([&](sql::Transaction& txn) -> absl::Status {
    TP_ASSIGN_OR_RETURN(
        sql::Result result,
        txn.Exec(fmt::format("SELECT {} FROM deployments WHERE name = $1", kDeploymentColumns),
                 {name}));
    if (!result.rows.empty()) found = DeploymentFromRow(result.rows[0]);
    return absl::OkStatus();
  }));
  return found;
}

absl::StatusOr<std::vector<Deployment>> SqlStore::ListDeployments() {
  std::vector<Deployment> deployments;
  TP_RETURN_IF_ERROR(Read([&](sql::Transaction& txn) -> absl::Status {
    deployments.clear();
    TP_ASSIGN_OR_RETURN(
        sql::Result result,
        txn.Exec(fmt::format("SELECT {} FROM deployments", kDeploymentColumns), {}));
    for (const auto& row : result.rows) {
      TP_ASSIGN_OR_RETURN(Deployment d, DeploymentFromRow(row));
      deployments.push_back(std::move(d));
    }
    return absl::OkStatus();
  }));
  std::sort(deployments.begin(), deployments.end(),
            [](const Deployment& a, const Deployment& b) { return a.name < b.name; });
  return deployments;
}

absl::StatusOr<Deployment> SqlStore::UpdateDeploymentSpec(std::string_view name,
                                                          const DeploymentSpec& spec,
                                                          int64_t if_generation,
                                                          const WriteOptions& options) {
  TP_RETURN_IF_ERROR(ValidateSpec(spec));
  Deployment after;
  TP_RETURN_IF_ERROR(Write([&](sql::Transaction& txn) -> absl::Status {
    TP_ASSIGN_OR_RETURN(sql::Result existing,
                        txn.Exec(fmt::format("SELECT {} FROM deployments WHERE name = $1{}",
                                             kDeploymentColumns, ForUpdate()),
                                 {name}));
    if (existing.rows.empty()) return internal::NotFound("deployment", name);
    TP_ASSIGN_OR_RETURN(Deployment before, DeploymentFromRow(existing.rows[0]));
    if (if_generation > 0 && before.generation != if_generation) {
      return absl::AbortedError(
          fmt::format("deployment '{}' is at generation {}, not {}: re-read and retry", name,
                      before.generation, if_generation));
    }
    after = before;
    if (before.spec == spec) return absl::OkStatus();
    if (spec.model != before.spec.model || spec.version != before.spec.version ||
        spec.canary_version != before.spec.canary_version) {
      TP_RETURN_IF_ERROR(CheckVersionExists(txn, spec));
    }
    after.spec = spec;
    after.generation = before.generation + 1;
    after.updated_at = FromMicros(NowMicros());
    if (spec.version != before.spec.version) after.previous_version = before.spec.version;
    const EngineSettings& e = spec.engine;
    TP_RETURN_IF_ERROR(
        txn.Exec("UPDATE deployments SET model = $2, version = $3, replicas = $4, threads = $5, "
                 "context_length = $6, kv_memory_bytes = $7, max_batch_tokens = $8, "
                 "generation = $9, updated_at = $10, canary_version = $11, canary_percent = $12, "
                 "previous_version = $13, autoscale = $14, kv_type = $15 WHERE name = $1",
                 {name, spec.model, spec.version, spec.replicas, e.threads, e.context_length,
                  e.kv_memory_bytes, e.max_batch_tokens, after.generation,
                  ToMicros(after.updated_at), spec.canary_version, spec.canary_percent,
                  after.previous_version, AutoscaleText(spec), e.kv_type})
            .status());
    return AuditIn(txn, options, "deployment.update", "deployment/" + after.name, ToJson(before),
                   ToJson(after));
  }));
  return after;
}

absl::StatusOr<Deployment> SqlStore::SetDeploymentStatus(std::string_view name,
                                                         const DeploymentStatus& status) {
  absl::StatusOr<Deployment> updated = internal::NotFound("deployment", name);
  const int64_t now = NowMicros();
  TP_RETURN_IF_ERROR(Write([&](sql::Transaction& txn) -> absl::Status {
    TP_ASSIGN_OR_RETURN(
        sql::Result result,
        txn.Exec(
            fmt::format("UPDATE deployments SET phase = $2, reason = $3, ready_replicas = $4, "
                        "observed_generation = $5, updated_at = $6 WHERE name = $1 RETURNING {}",
                        kDeploymentColumns),
            {name, ToString(status.phase), status.reason, status.ready_replicas,
             status.observed_generation, now}));
    if (!result.rows.empty()) updated = DeploymentFromRow(result.rows[0]);
    return absl::OkStatus();
  }));
  return updated;
}

absl::Status SqlStore::DeleteDeployment(std::string_view name, const WriteOptions& options) {
  return Write([&](sql::Transaction& txn) -> absl::Status {
    TP_ASSIGN_OR_RETURN(sql::Result existing,
                        txn.Exec(fmt::format("SELECT {} FROM deployments WHERE name = $1{}",
                                             kDeploymentColumns, ForUpdate()),
                                 {name}));
    if (existing.rows.empty()) return internal::NotFound("deployment", name);
    TP_ASSIGN_OR_RETURN(Deployment before, DeploymentFromRow(existing.rows[0]));
    TP_RETURN_IF_ERROR(txn.Exec("DELETE FROM deployments WHERE name = $1", {name}).status());
    return AuditIn(txn, options, "deployment.delete", "deployment/" + before.name, ToJson(before),
                   nullptr);
  });
}

// ---- Instances ----

absl::StatusOr<Instance> SqlStore::PutInstance(const Instance& instance) {
  TP_RETURN_IF_ERROR(ValidateName("instance", instance.id));
  TP_RETURN_IF_ERROR(ValidateName("deployment", instance.deployment));
  if (instance.provider.empty()) return absl::InvalidArgumentError("instance needs a provider");
  if (instance.port < 0 || instance.port > 65535)
    return absl::InvalidArgumentError("instance port out of range");
  absl::StatusOr<Instance> stored = absl::InternalError("instance upsert returned no row");
  const int64_t now = NowMicros();
  TP_RETURN_IF_ERROR(Write([&](sql::Transaction& txn) -> absl::Status {
    TP_ASSIGN_OR_RETURN(
        sql::Result result,
        txn.Exec(
            fmt::format(
                "INSERT INTO instances ({0}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, "
                "$12, $13, "
                "$13) ON CONFLICT (id) DO UPDATE SET deployment = excluded.deployment, model = "
                "excluded.model, version = excluded.version, provider = excluded.provider, host = "
                "excluded.host, port = excluded.port, pid = excluded.pid, state = excluded.state, "
                "restarts = excluded.restarts, last_error = excluded.last_error, provider_data = "
                "excluded.provider_data, updated_at = excluded.updated_at RETURNING {0}",
                kInstanceColumns),
            {instance.id, instance.deployment, instance.model, instance.version, instance.provider,
             instance.host, instance.port, instance.pid, ToString(instance.state),
             instance.restarts, instance.last_error, common::DumpJson(instance.provider_data),
             now}));
    if (!result.rows.empty()) stored = InstanceFromRow(result.rows[0]);
    return absl::OkStatus();
  }));
  return stored;
}

absl::StatusOr<Instance> SqlStore::GetInstance(std::string_view id) {
  absl::StatusOr<Instance> found = internal::NotFound("instance", id);
  TP_RETURN_IF_ERROR(Read([&](sql::Transaction& txn) -> absl::Status {
    TP_ASSIGN_OR_RETURN(
        sql::Result result,
        txn.Exec(fmt::format("SELECT {} FROM instances WHERE id = $1", kInstanceColumns), {id}));
    if (!result.rows.empty()) found = InstanceFromRow(result.rows[0]);
    return absl::OkStatus();
  }));
  return found;
}

absl::StatusOr<std::vector<Instance>> SqlStore::ListInstances(std::string_view deployment) {
  std::vector<Instance> instances;
  TP_RETURN_IF_ERROR(Read([&](sql::Transaction& txn) -> absl::Status {
    instances.clear();
    TP_ASSIGN_OR_RETURN(
        sql::Result result,
        txn.Exec(fmt::format("SELECT {} FROM instances WHERE ($1 = '' OR deployment = $1)",
                             kInstanceColumns),
                 {deployment}));
    for (const auto& row : result.rows) {
      TP_ASSIGN_OR_RETURN(Instance i, InstanceFromRow(row));
      instances.push_back(std::move(i));
    }
    return absl::OkStatus();
  }));
  std::sort(instances.begin(), instances.end(),
            [](const Instance& a, const Instance& b) { return a.id < b.id; });
  return instances;
}

absl::Status SqlStore::DeleteInstance(std::string_view id) {
  return Write([&](sql::Transaction& txn) -> absl::Status {
    TP_ASSIGN_OR_RETURN(sql::Result result, txn.Exec("DELETE FROM instances WHERE id = $1", {id}));
    if (result.affected == 0) return internal::NotFound("instance", id);
    return absl::OkStatus();
  });
}

}  // namespace triplane::control

namespace triplane::control {

// ---- Deployment events ----

namespace {
constexpr int64_t kEventsKept = 1000;  // per deployment
}  // namespace

absl::StatusOr<DeploymentEvent> SqlStore::AppendEvent(const DeploymentEvent& event) {
  if (event.deployment.empty() || event.kind.empty()) {
    return absl::InvalidArgumentError("an event needs a deployment and a kind");
  }
  DeploymentEvent stored = event;
  stored.time = FromMicros(NowMicros());
  TP_RETURN_IF_ERROR(Write([&](sql::Transaction& txn) -> absl::Status {
    // The id from a one-row counter, taken under its row lock: ids commit in order.
    TP_ASSIGN_OR_RETURN(sql::Result next,
                        txn.Exec("UPDATE events_head SET last_id = last_id + 1 WHERE id = 1 RETURNING last_id", {}));
    if (next.rows.empty()) return absl::InternalError("events_head is missing its row");
    sql::RowReader r(next.rows[0]);
    stored.id = r.Int(0);
    TP_RETURN_IF_ERROR(r.status());
    TP_RETURN_IF_ERROR(txn.Exec("INSERT INTO deployment_events (id, deployment, time_us, kind, message, actor) "
                                "VALUES ($1, $2, $3, $4, $5, $6)",
                                {stored.id, stored.deployment, ToMicros(stored.time), stored.kind,
                                 stored.message, stored.actor})
                           .status());
    return txn.Exec("DELETE FROM deployment_events WHERE deployment = $1 AND id < (SELECT id FROM "
                    "deployment_events WHERE deployment = $1 ORDER BY id DESC LIMIT 1 OFFSET $2)",
                    {stored.deployment, kEventsKept - 1})
        .status();
  }));
  return stored;
}

absl::StatusOr<std::vector<DeploymentEvent>> SqlStore::ListEvents(std::string_view deployment,
                                                                  int64_t after_id, int64_t limit) {
  std::vector<DeploymentEvent> events;
  TP_RETURN_IF_ERROR(Read([&](sql::Transaction& txn) -> absl::Status {
    events.clear();
    TP_ASSIGN_OR_RETURN(
        sql::Result result,
        txn.Exec("SELECT id, deployment, time_us, kind, message, actor FROM deployment_events "
                 "WHERE ($1 = '' OR deployment = $1) AND id > $2 ORDER BY id LIMIT $3",
                 {deployment, after_id, limit}));
    for (const auto& row : result.rows) {
      sql::RowReader r(row);
      DeploymentEvent e{.id = r.Int(0),
                        .deployment = r.Text(1),
                        .time = FromMicros(r.Int(2)),
                        .kind = r.Text(3),
                        .message = r.Text(4),
                        .actor = r.Text(5)};
      TP_RETURN_IF_ERROR(r.status());
      events.push_back(std::move(e));
    }
    return absl::OkStatus();
  }));
  return events;
}

}  // namespace triplane::control
