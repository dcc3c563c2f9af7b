// SqlStore: opening, the audit chain's append, models and model versions.

#include "control/store/sql_store.h"

#include <algorithm>
#include <utility>

#include "common/json.h"
#include "common/status_macros.h"
#include "control/store/audit_chain.h"
#include "control/store/migrations.h"
#include "control/store/sql_store_internal.h"

namespace triplane::control {
namespace {

using internal::FromMicros;
using internal::ParseStored;

constexpr std::string_view kModelColumns = "name, description, created_at";

absl::StatusOr<Model> ModelFromRow(const std::vector<std::optional<std::string>>& row) {
  sql::RowReader r(row);
  Model m{.name = r.Text(0), .description = r.Text(1), .created_at = FromMicros(r.Int(2))};
  TP_RETURN_IF_ERROR(r.status());
  return m;
}

constexpr std::string_view kVersionColumns =
    "model, version, number, file_path, size_bytes, sha256, source, architecture, parameter_count, "
    "file_type, tensor_types, context_length, has_chat_template, gguf_extra, created_at";

absl::StatusOr<ModelVersion> VersionFromRow(const std::vector<std::optional<std::string>>& row) {
  sql::RowReader r(row);
  ModelVersion v;
  v.model = r.Text(0);
  v.version = r.Text(1);
  v.number = r.Int(2);
  v.file_path = r.Text(3);
  v.size_bytes = r.Int(4);
  v.sha256 = r.Text(5);
  v.source = r.Text(6);
  v.gguf.architecture = r.Text(7);
  v.gguf.parameter_count = r.Int(8);
  v.gguf.file_type = r.Text(9);
  const std::string tensor_types = r.Text(10);
  v.gguf.context_length = r.Int(11);
  v.gguf.has_chat_template = r.Int(12) != 0;
  const std::string extra = r.Text(13);
  v.created_at = FromMicros(r.Int(14));
  TP_RETURN_IF_ERROR(r.status());
  nlohmann::json types;
  TP_RETURN_IF_ERROR(ParseStored(tensor_types, "tensor types", types));
  if (!types.is_array()) return absl::InternalError("stored tensor types are not a JSON array");
  for (const auto& t : types) {
    if (t.is_string()) v.gguf.tensor_types.push_back(t.get<std::string>());
  }
  TP_RETURN_IF_ERROR(ParseStored(extra, "GGUF metadata", v.gguf.extra));
  return v;
}

std::string VersionTarget(std::string_view model, std::string_view version) {
  return fmt::format("model/{}:{}", model, version);
}

// The first deployment, else the first instance, that uses model (and version, when not
// empty), as a FailedPrecondition; OK when none does.
absl::Status CheckNotInUse(sql::Transaction& txn, std::string_view model,
                           std::string_view version) {
  const bool any_version = version.empty();
  TP_ASSIGN_OR_RETURN(
      sql::Result deployments,
      txn.Exec(
          "SELECT name, version FROM deployments WHERE model = $1 AND ($2 = 1 OR version = $3) "
          "ORDER BY name LIMIT 1",
          {model, int64_t{any_version ? 1 : 0}, version}));
  const std::string what = any_version ? fmt::format("model '{}'", model)
                                       : fmt::format("model version '{}:{}'", model, version);
  if (!deployments.rows.empty()) {
    sql::RowReader r(deployments.rows[0]);
    const std::string name = r.Text(0);
    const std::string used = r.Text(1);
    TP_RETURN_IF_ERROR(r.status());
    return absl::FailedPreconditionError(
        fmt::format("{} is in use: deployment '{}' runs version '{}'", what, name, used));
  }
  TP_ASSIGN_OR_RETURN(
      sql::Result instances,
      txn.Exec("SELECT id, version FROM instances WHERE model = $1 AND ($2 = 1 OR version = $3) "
               "ORDER BY id LIMIT 1",
               {model, int64_t{any_version ? 1 : 0}, version}));
  if (!instances.rows.empty()) {
    sql::RowReader r(instances.rows[0]);
    const std::string id = r.Text(0);
    const std::string used = r.Text(1);
    TP_RETURN_IF_ERROR(r.status());
    return absl::FailedPreconditionError(
        fmt::format("{} is in use: instance '{}' runs version '{}'", what, id, used));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> SqlStore::Open(std::unique_ptr<sql::Backend> backend,
                                                      std::string kind, StoreOptions options) {
  std::unique_ptr<SqlStore> store(
      new SqlStore(std::move(backend), std::move(kind), std::move(options)));
  TP_RETURN_IF_ERROR(ApplyMigrations(*store->backend_, store->NowMicros()));
  return store;
}

std::string_view SqlStore::ForUpdate() const {
  return backend_->dialect() == sql::Dialect::kPostgres ? " FOR UPDATE" : "";
}

absl::Status SqlStore::Ping() {
  return Read([](sql::Transaction& txn) { return txn.Exec("SELECT 1", {}).status(); });
}

absl::StatusOr<int64_t> SqlStore::SchemaVersion() {
  int64_t version = 0;
  TP_RETURN_IF_ERROR(Read([&](sql::Transaction& txn) -> absl::Status {
    TP_ASSIGN_OR_RETURN(sql::Result result,
                        txn.Exec("SELECT MAX(version) FROM schema_migrations", {}));
    sql::RowReader r(result.rows.at(0));
    version = r.OptionalInt(0).value_or(0);
    return r.status();
  }));
  return version;
}

// ---- Audit chain ----

absl::StatusOr<AuditRecord> SqlStore::AppendAuditIn(sql::Transaction& txn,
                                                    const AuditEntry& entry) {
  if (entry.actor.empty()) return absl::InvalidArgumentError("audit entry needs an actor");
  if (entry.action.empty()) return absl::InvalidArgumentError("audit entry needs an action");
  // Taking the next id updates the head row, which serialises appends on both back ends.
  TP_ASSIGN_OR_RETURN(
      sql::Result head,
      txn.Exec(
          "UPDATE audit_head SET last_id = last_id + 1 WHERE id = 1 RETURNING last_id, last_hash",
          {}));
  if (head.rows.size() != 1) return absl::InternalError("audit chain head row is missing");
  StoredAuditRow row;
  {
    sql::RowReader r(head.rows[0]);
    row.id = r.Int(0);
    row.prev_hash = r.Text(1);
    TP_RETURN_IF_ERROR(r.status());
  }
  const absl::Time now = Now();
  row.time_us = internal::ToMicros(now);
  row.actor = entry.actor;
  row.action = entry.action;
  row.target = entry.target;
  row.before_json = common::DumpJson(entry.before);
  row.after_json = common::DumpJson(entry.after);
  row.hash = AuditRowHash(row);
  TP_RETURN_IF_ERROR(
      txn.Exec("INSERT INTO audit_log (id, time_us, actor, action, target, before_json, "
               "after_json, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
               {row.id, row.time_us, row.actor, row.action, row.target, row.before_json,
                row.after_json, row.prev_hash, row.hash})
          .status());
  TP_RETURN_IF_ERROR(
      txn.Exec("UPDATE audit_head SET last_hash = $1 WHERE id = 1", {row.hash}).status());
  return AuditRecord{.id = row.id,
                     .time = FromMicros(row.time_us),
                     .actor = row.actor,
                     .action = row.action,
                     .target = row.target,
                     .before = entry.before,
                     .after = entry.after,
                     .prev_hash = row.prev_hash,
                     .hash = row.hash};
}

absl::Status SqlStore::AuditIn(sql::Transaction& txn, const WriteOptions& options,
                               std::string_view action, std::string target, nlohmann::json before,
                               nlohmann::json after) {
  if (options.actor.empty()) return absl::OkStatus();
  return AppendAuditIn(txn, AuditEntry{.actor = options.actor,
                                       .action = std::string(action),
                                       .target = std::move(target),
                                       .before = std::move(before),
                                       .after = std::move(after)})
      .status();
}

// ---- Models ----

absl::StatusOr<Model> SqlStore::CreateModel(const Model& model, const WriteOptions& options) {
  TP_RETURN_IF_ERROR(ValidateName("model", model.name));
  Model created = model;
  created.created_at = FromMicros(NowMicros());
  TP_RETURN_IF_ERROR(Write([&](sql::Transaction& txn) -> absl::Status {
    TP_ASSIGN_OR_RETURN(sql::Result existing,
                        txn.Exec("SELECT 1 FROM models WHERE name = $1", {model.name}));
    if (!existing.rows.empty()) return internal::AlreadyExists("model", model.name);
    TP_RETURN_IF_ERROR(
        txn.Exec("INSERT INTO models (name, description, next_number, created_at) VALUES ($1, $2, "
                 "1, $3)",
                 {created.name, created.description, internal::ToMicros(created.created_at)})
            .status());
    return AuditIn(txn, options, "model.create", "model/" + created.name, nullptr, ToJson(created));
  }));
  return created;
}

absl::StatusOr<Model> SqlStore::GetModel(std::string_view name) {
  absl::StatusOr<Model> model = internal::NotFound("model", name);
  TP_RETURN_IF_ERROR(Read([&](sql::Transaction& txn) -> absl::Status {
    TP_ASSIGN_OR_RETURN(
        sql::Result result,
        txn.Exec(fmt::format("SELECT {} FROM models WHERE name = $1", kModelColumns), {name}));
    if (!result.rows.empty()) model = ModelFromRow(result.rows[0]);
    return absl::OkStatus();
  }));
  return model;
}

absl::StatusOr<std::vector<Model>> SqlStore::ListModels() {
  std::vector<Model> models;
  TP_RETURN_IF_ERROR(Read([&](sql::Transaction& txn) -> absl::Status {
    models.clear();
    TP_ASSIGN_OR_RETURN(sql::Result result,
                        txn.Exec(fmt::format("SELECT {} FROM models", kModelColumns), {}));
    for (const auto& row : result.rows) {
      TP_ASSIGN_OR_RETURN(Model m, ModelFromRow(row));
      models.push_back(std::move(m));
    }
    return absl::OkStatus();
  }));
  // Byte order on both back ends, whatever PostgreSQL's collation.
  std::sort(models.begin(), models.end(),
            [](const Model& a, const Model& b) { return a.name < b.name; });
  return models;
}

absl::Status SqlStore::DeleteModel(std::string_view name, const WriteOptions& options) {
  return Write([&](sql::Transaction& txn) -> absl::Status {
    TP_ASSIGN_OR_RETURN(
        sql::Result existing,
        txn.Exec(fmt::format("SELECT {} FROM models WHERE name = $1{}", kModelColumns, ForUpdate()),
                 {name}));
    if (existing.rows.empty()) return internal::NotFound("model", name);
    TP_ASSIGN_OR_RETURN(Model before, ModelFromRow(existing.rows[0]));
    TP_RETURN_IF_ERROR(CheckNotInUse(txn, name, ""));
    TP_RETURN_IF_ERROR(txn.Exec("DELETE FROM model_versions WHERE model = $1", {name}).status());
    TP_RETURN_IF_ERROR(txn.Exec("DELETE FROM models WHERE name = $1", {name}).status());
    return AuditIn(txn, options, "model.delete", "model/" + before.name, ToJson(before), nullptr);
  });
}

// ---- Model versions ----

absl::StatusOr<ModelVersion> SqlStore::CreateModelVersion(const ModelVersion& version,
                                                          const WriteOptions& options) {
  TP_RETURN_IF_ERROR(ValidateName("model", version.model));
  if (!version.version.empty()) TP_RETURN_IF_ERROR(ValidateName("version", version.version));
  if (!IsSha256Hex(version.sha256)) {
    return absl::InvalidArgumentError("model version sha256 must be 64 lowercase hex digits");
  }
  if (version.size_bytes < 0)
    return absl::InvalidArgumentError("model version size must not be negative");
  if (version.file_path.empty())
    return absl::InvalidArgumentError("model version needs a file path");
  ModelVersion created = version;
  created.created_at = FromMicros(NowMicros());
  TP_RETURN_IF_ERROR(Write([&](sql::Transaction& txn) -> absl::Status {
    // Taking the number locks the model row, so that numbers are never handed out twice.
    TP_ASSIGN_OR_RETURN(sql::Result number,
                        txn.Exec("UPDATE models SET next_number = next_number + 1 WHERE name = $1 "
                                 "RETURNING next_number - 1",
                                 {version.model}));
    if (number.rows.empty()) return internal::NotFound("model", version.model);
    sql::RowReader r(number.rows[0]);
    created.number = r.Int(0);
    TP_RETURN_IF_ERROR(r.status());
    created.version = version.version.empty() ? std::to_string(created.number) : version.version;
    TP_ASSIGN_OR_RETURN(sql::Result existing,
                        txn.Exec("SELECT 1 FROM model_versions WHERE model = $1 AND version = $2",
                                 {created.model, created.version}));
    if (!existing.rows.empty()) {
      return internal::AlreadyExists("model version",
                                     fmt::format("{}:{}", created.model, created.version));
    }
    TP_RETURN_IF_ERROR(
        txn.Exec(fmt::format("INSERT INTO model_versions ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, "
                             "$8, $9, $10, "
                             "$11, $12, $13, $14, $15)",
                             kVersionColumns),
                 {created.model, created.version, created.number, created.file_path,
                  created.size_bytes, created.sha256, created.source, created.gguf.architecture,
                  created.gguf.parameter_count, created.gguf.file_type,
                  common::DumpJson(nlohmann::json(created.gguf.tensor_types)),
                  created.gguf.context_length, int64_t{created.gguf.has_chat_template ? 1 : 0},
                  common::DumpJson(created.gguf.extra), internal::ToMicros(created.created_at)})
            .status());
    return AuditIn(txn, options, "model_version.create",
                   VersionTarget(created.model, created.version), nullptr, ToJson(created));
  }));
  return created;
}

absl::StatusOr<ModelVersion> SqlStore::GetModelVersion(std::string_view model,
                                                       std::string_view version) {
  absl::StatusOr<ModelVersion> found =
      internal::NotFound("model version", fmt::format("{}:{}", model, version));
  TP_RETURN_IF_ERROR(Read([&](sql::Transaction& txn) -> absl::Status {
    TP_ASSIGN_OR_RETURN(
        sql::Result result,
        txn.Exec(fmt::format("SELECT {} FROM model_versions WHERE model = $1 AND version = $2",
                             kVersionColumns),
                 {model, version}));
    if (!result.rows.empty()) found = VersionFromRow(result.rows[0]);
    return absl::OkStatus();
  }));
  return found;
}

absl::StatusOr<std::vector<ModelVersion>> SqlStore::ListModelVersions(std::string_view model) {
  std::vector<ModelVersion> versions;
  TP_RETURN_IF_ERROR(Read([&](sql::Transaction& txn) -> absl::Status {
    versions.clear();
    sql::Result result;
    if (model.empty()) {
      TP_ASSIGN_OR_RETURN(
          result, txn.Exec(fmt::format("SELECT {} FROM model_versions", kVersionColumns), {}));
    } else {
      TP_ASSIGN_OR_RETURN(sql::Result exists,
                          txn.Exec("SELECT 1 FROM models WHERE name = $1", {model}));
      if (exists.rows.empty()) return internal::NotFound("model", model);
      TP_ASSIGN_OR_RETURN(
          result,
          txn.Exec(fmt::format("SELECT {} FROM model_versions WHERE model = $1", kVersionColumns),
                   {model}));
    }
    for (const auto& row : result.rows) {
      TP_ASSIGN_OR_RETURN(ModelVersion v, VersionFromRow(row));
      versions.push_back(std::move(v));
    }
    return absl::OkStatus();
  }));
  std::sort(versions.begin(), versions.end(), [](const ModelVersion& a, const ModelVersion& b) {
    return a.model != b.model ? a.model < b.model : a.number < b.number;
  });
  return versions;
}

absl::Status SqlStore::DeleteModelVersion(std::string_view model, std::string_view version,
                                          const WriteOptions& options) {
  return Write([&](sql::Transaction& txn) -> absl::Status {
    TP_ASSIGN_OR_RETURN(
        sql::Result existing,
        txn.Exec(fmt::format("SELECT {} FROM model_versions WHERE model = $1 AND version = $2{}",
                             kVersionColumns, ForUpdate()),
                 {model, version}));
    if (existing.rows.empty()) {
      return internal::NotFound("model version", fmt::format("{}:{}", model, version));
    }
    TP_ASSIGN_OR_RETURN(ModelVersion before, VersionFromRow(existing.rows[0]));
    TP_RETURN_IF_ERROR(CheckNotInUse(txn, model, version));
    TP_RETURN_IF_ERROR(
        txn.Exec("DELETE FROM model_versions WHERE model = $1 AND version = $2", {model, version})
            .status());
    return AuditIn(txn, options, "model_version.delete", VersionTarget(model, version),
                   ToJson(before), nullptr);
  });
}

}  // namespace triplane::control
