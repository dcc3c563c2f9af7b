// SqlStore: teams, API keys (SHA-256 digests only) and external backends.

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

constexpr std::string_view kTeamColumns = "name, description, created_at";

absl::StatusOr<Team> TeamFromRow(const Row& row) {
  sql::RowReader r(row);
  Team t{.name = r.Text(0), .description = r.Text(1), .created_at = FromMicros(r.Int(2))};
  TP_RETURN_IF_ERROR(r.status());
  return t;
}

constexpr std::string_view kKeyColumns =
    "id, name, digest, role, team, allowed_models, expires_at, revoked_at, created_at";

absl::StatusOr<ApiKey> KeyFromRow(const Row& row) {
  sql::RowReader r(row);
  ApiKey k;
  k.id = r.Text(0);
  k.name = r.Text(1);
  k.digest = r.Text(2);
  const std::string role = r.Text(3);
  k.team = r.OptionalText(4).value_or("");
  const std::string allowed = r.Text(5);
  if (auto t = r.OptionalInt(6)) k.expires_at = FromMicros(*t);
  if (auto t = r.OptionalInt(7)) k.revoked_at = FromMicros(*t);
  k.created_at = FromMicros(r.Int(8));
  TP_RETURN_IF_ERROR(r.status());
  TP_ASSIGN_OR_RETURN(k.role, ParseKeyRole(role));
  nlohmann::json models;
  TP_RETURN_IF_ERROR(internal::ParseStored(allowed, "allowed models", models));
  if (!models.is_array()) return absl::InternalError("stored allowed models are not a JSON array");
  for (const auto& m : models) {
    if (m.is_string()) k.allowed_models.push_back(m.get<std::string>());
  }
  return k;
}

constexpr std::string_view kBackendColumns =
    "name, model, base_url, remote_model, api_key, created_at, updated_at";

absl::StatusOr<Backend> BackendFromRow(const Row& row) {
  sql::RowReader r(row);
  Backend b{.name = r.Text(0),
            .model = r.Text(1),
            .base_url = r.Text(2),
            .remote_model = r.Text(3),
            .api_key = r.Text(4),
            .created_at = FromMicros(r.Int(5)),
            .updated_at = FromMicros(r.Int(6))};
  TP_RETURN_IF_ERROR(r.status());
  return b;
}

std::optional<int64_t> OptionalMicros(const std::optional<absl::Time>& t) {
  if (!t.has_value()) return std::nullopt;
  return ToMicros(*t);
}

}  // namespace

// ---- Teams ----

absl::StatusOr<Team> SqlStore::CreateTeam(const Team& team, const WriteOptions& options) {
  TP_RETURN_IF_ERROR(ValidateName("team", team.name));
  Team created = team;
  created.created_at = FromMicros(NowMicros());
  TP_RETURN_IF_ERROR(Write([&](sql::Transaction& txn) -> absl::Status {
    TP_ASSIGN_OR_RETURN(sql::Result existing,
                        txn.Exec("SELECT 1 FROM teams WHERE name = $1", {team.name}));
    if (!existing.rows.empty()) return internal::AlreadyExists("team", team.name);
    TP_RETURN_IF_ERROR(
        txn.Exec("INSERT INTO teams (name, description, created_at) VALUES ($1, $2, $3)",
                 {created.name, created.description, ToMicros(created.created_at)})
            .status());
    return AuditIn(txn, options, "team.create", "team/" + created.name, nullptr, ToJson(created));
  }));
  return created;
}

absl::StatusOr<Team> SqlStore::GetTeam(std::string_view name) {
  absl::StatusOr<Team> found = internal::NotFound("team", name);
  TP_RETURN_IF_ERROR(Read([&](sql::Transaction& txn) -> absl::Status {
    TP_ASSIGN_OR_RETURN(
        sql::Result result,
        txn.Exec(fmt::format("SELECT {} FROM teams WHERE name = $1", kTeamColumns), {name}));
    if (!result.rows.empty()) found = TeamFromRow(result.rows[0]);
    return absl::OkStatus();
  }));
  return found;
}

absl::StatusOr<std::vector<Team>> SqlStore::ListTeams() {
  std::vector<Team> teams;
  TP_RETURN_IF_ERROR(Read([&](sql::Transaction& txn) -> absl::Status {
    teams.clear();
    TP_ASSIGN_OR_RETURN(sql::Result result,
                        txn.Exec(fmt::format("SELECT {} FROM teams", kTeamColumns), {}));
    for (const auto& row : result.rows) {
      TP_ASSIGN_OR_RETURN(Team t, TeamFromRow(row));
      teams.push_back(std::move(t));
    }
    return absl::OkStatus();
  }));
  std::sort(teams.begin(), teams.end(),
            [](const Team& a, const Team& b) { return a.name < b.name; });
  return teams;
}

absl::Status SqlStore::DeleteTeam(std::string_view name, const WriteOptions& options) {
  return Write([&](sql::Transaction& txn) -> absl::Status {
    TP_ASSIGN_OR_RETURN(
        sql::Result existing,
        txn.Exec(fmt::format("SELECT {} FROM teams WHERE name = $1{}", kTeamColumns, ForUpdate()),
                 {name}));
    if (existing.rows.empty()) return internal::NotFound("team", name);
    TP_ASSIGN_OR_RETURN(Team before, TeamFromRow(existing.rows[0]));
    TP_ASSIGN_OR_RETURN(
        sql::Result keys,
        txn.Exec("SELECT id FROM api_keys WHERE team = $1 ORDER BY id LIMIT 1", {name}));
    if (!keys.rows.empty()) {
      return absl::FailedPreconditionError(
          fmt::format("team '{}' still has keys (e.g. '{}'): revoke and remove them first", name,
                      keys.rows[0].at(0).value_or("")));
    }
    TP_RETURN_IF_ERROR(txn.Exec("DELETE FROM teams WHERE name = $1", {name}).status());
    return AuditIn(txn, options, "team.delete", "team/" + before.name, ToJson(before), nullptr);
  });
}

// ---- API keys ----

absl::StatusOr<ApiKey> SqlStore::CreateApiKey(const ApiKey& key, const WriteOptions& options) {
  TP_RETURN_IF_ERROR(ValidateName("key id", key.id));
  if (!IsSha256Hex(key.digest)) {
    // Never echo the value: it may be the secret itself.
    return absl::InvalidArgumentError(
        "API key digest must be a SHA-256 digest (64 lowercase hex digits)");
  }
  if (!key.team.empty()) TP_RETURN_IF_ERROR(ValidateName("team", key.team));
  for (const std::string& model : key.allowed_models)
    TP_RETURN_IF_ERROR(ValidateName("model", model));
  ApiKey created = key;
  created.created_at = FromMicros(NowMicros());
  created.revoked_at.reset();
  TP_RETURN_IF_ERROR(Write([&](sql::Transaction& txn) -> absl::Status {
    TP_ASSIGN_OR_RETURN(sql::Result by_id,
                        txn.Exec("SELECT 1 FROM api_keys WHERE id = $1", {key.id}));
    if (!by_id.rows.empty()) return internal::AlreadyExists("API key", key.id);
    TP_ASSIGN_OR_RETURN(sql::Result by_digest,
                        txn.Exec("SELECT 1 FROM api_keys WHERE digest = $1", {key.digest}));
    if (!by_digest.rows.empty())
      return absl::AlreadyExistsError("an API key with the same digest already exists");
    if (!key.team.empty()) {
      TP_ASSIGN_OR_RETURN(sql::Result team,
                          txn.Exec("SELECT 1 FROM teams WHERE name = $1", {key.team}));
      if (team.rows.empty()) return internal::NotFound("team", key.team);
    }
    TP_RETURN_IF_ERROR(
        txn.Exec(
               fmt::format("INSERT INTO api_keys ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                           kKeyColumns),
               {created.id, created.name, created.digest, ToString(created.role),
                created.team.empty() ? sql::Param(nullptr) : sql::Param(created.team),
                common::DumpJson(nlohmann::json(created.allowed_models)),
                OptionalMicros(created.expires_at), nullptr, ToMicros(created.created_at)})
            .status());
    return AuditIn(txn, options, "key.create", "key/" + created.id, nullptr, ToJson(created));
  }));
  return created;
}

absl::StatusOr<ApiKey> SqlStore::GetApiKey(std::string_view id) {
  absl::StatusOr<ApiKey> found = internal::NotFound("API key", id);
  TP_RETURN_IF_ERROR(Read([&](sql::Transaction& txn) -> absl::Status {
    TP_ASSIGN_OR_RETURN(
        sql::Result result,
        txn.Exec(fmt::format("SELECT {} FROM api_keys WHERE id = $1", kKeyColumns), {id}));
    if (!result.rows.empty()) found = KeyFromRow(result.rows[0]);
    return absl::OkStatus();
  }));
  return found;
}

absl::StatusOr<ApiKey> SqlStore::GetApiKeyByDigest(std::string_view digest) {
  if (!IsSha256Hex(digest)) return absl::InvalidArgumentError("not a SHA-256 digest");
  absl::StatusOr<ApiKey> found = absl::NotFoundError("no API key has this digest");
  TP_RETURN_IF_ERROR(Read([&](sql::Transaction& txn) -> absl::Status {
    TP_ASSIGN_OR_RETURN(
        sql::Result result,
        txn.Exec(fmt::format("SELECT {} FROM api_keys WHERE digest = $1", kKeyColumns), {digest}));
    if (!result.rows.empty()) found = KeyFromRow(result.rows[0]);
    return absl::OkStatus();
  }));
  return found;
}

absl::StatusOr<std::vector<ApiKey>> SqlStore::ListApiKeys() {
  std::vector<ApiKey> keys;
  TP_RETURN_IF_ERROR(Read([&](sql::Transaction& txn) -> absl::Status {
    keys.clear();
    TP_ASSIGN_OR_RETURN(sql::Result result,
                        txn.Exec(fmt::format("SELECT {} FROM api_keys", kKeyColumns), {}));
    for (const auto& row : result.rows) {
      TP_ASSIGN_OR_RETURN(ApiKey k, KeyFromRow(row));
      keys.push_back(std::move(k));
    }
    return absl::OkStatus();
  }));
  std::sort(keys.begin(), keys.end(), [](const ApiKey& a, const ApiKey& b) { return a.id < b.id; });
  return keys;
}

absl::StatusOr<ApiKey> SqlStore::RevokeApiKey(std::string_view id, const WriteOptions& options) {
  ApiKey after;
  TP_RETURN_IF_ERROR(Write([&](sql::Transaction& txn) -> absl::Status {
    TP_ASSIGN_OR_RETURN(
        sql::Result existing,
        txn.Exec(fmt::format("SELECT {} FROM api_keys WHERE id = $1{}", kKeyColumns, ForUpdate()),
                 {id}));
    if (existing.rows.empty()) return internal::NotFound("API key", id);
    TP_ASSIGN_OR_RETURN(ApiKey before, KeyFromRow(existing.rows[0]));
    after = before;
    if (before.revoked_at.has_value()) return absl::OkStatus();
    after.revoked_at = FromMicros(NowMicros());
    TP_RETURN_IF_ERROR(txn.Exec("UPDATE api_keys SET revoked_at = $2 WHERE id = $1",
                                {id, ToMicros(*after.revoked_at)})
                           .status());
    return AuditIn(txn, options, "key.revoke", "key/" + after.id, ToJson(before), ToJson(after));
  }));
  return after;
}


// ---- External backends ----

absl::StatusOr<Backend> SqlStore::PutBackend(const Backend& backend, const WriteOptions& options) {
  TP_RETURN_IF_ERROR(ValidateName("backend", backend.name));
  TP_RETURN_IF_ERROR(ValidateName("model", backend.model));
  if (!backend.remote_model.empty() && backend.remote_model.size() > 256) {
    return absl::InvalidArgumentError("remote_model is longer than 256 bytes");
  }
  TP_RETURN_IF_ERROR(ValidateBackendUrl(backend.base_url));
  Backend stored = backend;
  const int64_t now = NowMicros();
  stored.created_at = stored.updated_at = FromMicros(now);
  TP_RETURN_IF_ERROR(Write([&](sql::Transaction& txn) -> absl::Status {
    TP_ASSIGN_OR_RETURN(
        sql::Result existing,
        txn.Exec(fmt::format("SELECT {} FROM backends WHERE name = $1{}", kBackendColumns, ForUpdate()),
                 {backend.name}));
    if (existing.rows.empty()) {
      TP_RETURN_IF_ERROR(txn.Exec("INSERT INTO backends (name, model, base_url, remote_model, api_key, "
                                  "created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)",
                                  {stored.name, stored.model, stored.base_url, stored.remote_model,
                                   stored.api_key, now})
                             .status());
      return AuditIn(txn, options, "backend.create", "backend/" + stored.name, nullptr, ToJson(stored));
    }
    TP_ASSIGN_OR_RETURN(Backend before, BackendFromRow(existing.rows[0]));
    stored.created_at = before.created_at;
    TP_RETURN_IF_ERROR(txn.Exec("UPDATE backends SET model = $2, base_url = $3, remote_model = $4, "
                                "api_key = $5, updated_at = $6 WHERE name = $1",
                                {stored.name, stored.model, stored.base_url, stored.remote_model,
                                 stored.api_key, now})
                           .status());
    return AuditIn(txn, options, "backend.update", "backend/" + stored.name, ToJson(before),
                   ToJson(stored));
  }));
  return stored;
}

absl::StatusOr<std::vector<Backend>> SqlStore::ListBackends() {
  std::vector<Backend> backends;
  TP_RETURN_IF_ERROR(Read([&](sql::Transaction& txn) -> absl::Status {
    backends.clear();
    TP_ASSIGN_OR_RETURN(
        sql::Result result,
        txn.Exec(fmt::format("SELECT {} FROM backends ORDER BY name", kBackendColumns), {}));
    for (const auto& row : result.rows) {
      TP_ASSIGN_OR_RETURN(Backend b, BackendFromRow(row));
      backends.push_back(std::move(b));
    }
    return absl::OkStatus();
  }));
  return backends;
}

absl::Status SqlStore::DeleteBackend(std::string_view name, const WriteOptions& options) {
  return Write([&](sql::Transaction& txn) -> absl::Status {
    TP_ASSIGN_OR_RETURN(
        sql::Result existing,
        txn.Exec(fmt::format("SELECT {} FROM backends WHERE name = $1{}", kBackendColumns, ForUpdate()),
                 {name}));
    if (existing.rows.empty()) return internal::NotFound("backend", name);
    TP_ASSIGN_OR_RETURN(Backend before, BackendFromRow(existing.rows[0]));
    TP_RETURN_IF_ERROR(txn.Exec("DELETE FROM backends WHERE name = $1", {name}).status());
    return AuditIn(txn, options, "backend.delete", "backend/" + before.name, ToJson(before), nullptr);
  });
}

}  // namespace triplane::control
