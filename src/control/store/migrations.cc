#include "control/store/migrations.h"

#include <set>
#include <string>

#include "common/status_macros.h"
#include "fmt/format.h"

namespace triplane::control {
namespace {

// Version 1: the management plane's first schema (issue 5).
constexpr std::string_view kInitialSchema = R"sql(
CREATE TABLE models (
  name TEXT PRIMARY KEY,
  description TEXT NOT NULL DEFAULT '',
  next_number BIGINT NOT NULL DEFAULT 1,
  created_at BIGINT NOT NULL
);
CREATE TABLE model_versions (
  model TEXT NOT NULL REFERENCES models (name) ON DELETE CASCADE,
  version TEXT NOT NULL,
  number BIGINT NOT NULL,
  file_path TEXT NOT NULL,
  size_bytes BIGINT NOT NULL CHECK (size_bytes >= 0),
  sha256 TEXT NOT NULL,
  source TEXT NOT NULL DEFAULT '',
  architecture TEXT NOT NULL DEFAULT '',
  parameter_count BIGINT NOT NULL DEFAULT 0,
  file_type TEXT NOT NULL DEFAULT '',
  tensor_types TEXT NOT NULL DEFAULT '[]',
  context_length BIGINT NOT NULL DEFAULT 0,
  has_chat_template BIGINT NOT NULL DEFAULT 0,
  gguf_extra TEXT NOT NULL DEFAULT '{}',
  created_at BIGINT NOT NULL,
  PRIMARY KEY (model, version),
  UNIQUE (model, number)
);
CREATE TABLE deployments (
  name TEXT PRIMARY KEY,
  model TEXT NOT NULL,
  version TEXT NOT NULL,
  replicas BIGINT NOT NULL CHECK (replicas >= 0),
  threads BIGINT NOT NULL DEFAULT 0,
  context_length BIGINT NOT NULL DEFAULT 0,
  kv_memory_bytes BIGINT NOT NULL DEFAULT 0,
  max_batch_tokens BIGINT NOT NULL DEFAULT 0,
  generation BIGINT NOT NULL,
  phase TEXT NOT NULL,
  reason TEXT NOT NULL DEFAULT '',
  ready_replicas BIGINT NOT NULL DEFAULT 0,
  observed_generation BIGINT NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  FOREIGN KEY (model, version) REFERENCES model_versions (model, version)
);
CREATE INDEX deployments_by_version ON deployments (model, version);
CREATE TABLE instances (
  id TEXT PRIMARY KEY,
  deployment TEXT NOT NULL,
  model TEXT NOT NULL,
  version TEXT NOT NULL,
  provider TEXT NOT NULL,
  host TEXT NOT NULL DEFAULT '',
  port BIGINT NOT NULL DEFAULT 0,
  pid BIGINT NOT NULL DEFAULT 0,
  state TEXT NOT NULL,
  restarts BIGINT NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL DEFAULT '',
  provider_data TEXT NOT NULL DEFAULT '{}',
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE INDEX instances_by_deployment ON instances (deployment);
CREATE INDEX instances_by_version ON instances (model, version);
CREATE TABLE teams (
  name TEXT PRIMARY KEY,
  description TEXT NOT NULL DEFAULT '',
  created_at BIGINT NOT NULL
);
CREATE TABLE api_keys (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL DEFAULT '',
  digest TEXT NOT NULL UNIQUE,
  role TEXT NOT NULL,
  team TEXT REFERENCES teams (name),
  allowed_models TEXT NOT NULL DEFAULT '[]',
  expires_at BIGINT,
  revoked_at BIGINT,
  created_at BIGINT NOT NULL
);
CREATE INDEX api_keys_by_team ON api_keys (team);
CREATE TABLE config_state (
  id BIGINT PRIMARY KEY CHECK (id = 1),
  revision BIGINT NOT NULL
);
INSERT INTO config_state (id, revision) VALUES (1, 0);
CREATE TABLE config_entries (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  revision BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  updated_by TEXT NOT NULL DEFAULT ''
);
CREATE TABLE config_log (
  revision BIGINT PRIMARY KEY,
  key TEXT NOT NULL,
  value TEXT,
  changed_at BIGINT NOT NULL,
  actor TEXT NOT NULL DEFAULT ''
);
CREATE INDEX config_log_by_key ON config_log (key, revision);
CREATE TABLE audit_head (
  id BIGINT PRIMARY KEY CHECK (id = 1),
  last_id BIGINT NOT NULL,
  last_hash TEXT NOT NULL
);
INSERT INTO audit_head (id, last_id, last_hash)
  VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
CREATE TABLE audit_log (
  id BIGINT PRIMARY KEY,
  time_us BIGINT NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  target TEXT NOT NULL,
  before_json TEXT NOT NULL,
  after_json TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL
);
CREATE INDEX audit_by_target ON audit_log (target, id);
)sql";

// Version 2: the usage ledger (issue 6). Ids come from usage_head, taken under its row
// lock, rather than from an auto-increment (which differs between SQLite and PostgreSQL
// and, on PostgreSQL, hands out ids that commit out of order).
constexpr std::string_view kUsageLedger = R"sql(
CREATE TABLE usage_head (
  id BIGINT PRIMARY KEY CHECK (id = 1),
  last_id BIGINT NOT NULL
);
INSERT INTO usage_head (id, last_id) VALUES (1, 0);
CREATE TABLE usage_ledger (
  id BIGINT PRIMARY KEY,
  request_id TEXT NOT NULL UNIQUE,
  time_us BIGINT NOT NULL,
  key_id TEXT NOT NULL DEFAULT '',
  team TEXT NOT NULL DEFAULT '',
  model TEXT NOT NULL DEFAULT '',
  version TEXT NOT NULL DEFAULT '',
  deployment TEXT NOT NULL DEFAULT '',
  instance TEXT NOT NULL DEFAULT '',
  endpoint TEXT NOT NULL DEFAULT '',
  status BIGINT NOT NULL,
  stream BIGINT NOT NULL DEFAULT 0,
  prompt_tokens BIGINT NOT NULL CHECK (prompt_tokens >= 0),
  completion_tokens BIGINT NOT NULL CHECK (completion_tokens >= 0),
  cached_tokens BIGINT NOT NULL CHECK (cached_tokens >= 0),
  latency_us BIGINT NOT NULL CHECK (latency_us >= 0),
  ttft_us BIGINT NOT NULL CHECK (ttft_us >= 0),
  cost_micros BIGINT NOT NULL CHECK (cost_micros >= 0),
  error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX usage_by_time ON usage_ledger (time_us);
CREATE INDEX usage_by_key ON usage_ledger (key_id, time_us);
CREATE INDEX usage_by_team ON usage_ledger (team, time_us);
)sql";

// Version 3: external OpenAI-compatible backends (issue 6).
constexpr std::string_view kBackends = R"sql(
CREATE TABLE backends (
  name TEXT PRIMARY KEY,
  model TEXT NOT NULL,
  base_url TEXT NOT NULL,
  remote_model TEXT NOT NULL DEFAULT '',
  api_key TEXT NOT NULL DEFAULT '',
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE INDEX backends_by_model ON backends (model);
)sql";

// Version 4: canaries, rollback and deployment events (issue 8).
constexpr std::string_view kRollouts = R"sql(
ALTER TABLE deployments ADD COLUMN canary_version TEXT NOT NULL DEFAULT '';
ALTER TABLE deployments ADD COLUMN canary_percent BIGINT NOT NULL DEFAULT 0;
ALTER TABLE deployments ADD COLUMN previous_version TEXT NOT NULL DEFAULT '';
CREATE TABLE events_head (
  id BIGINT PRIMARY KEY CHECK (id = 1),
  last_id BIGINT NOT NULL
);
INSERT INTO events_head (id, last_id) VALUES (1, 0);
CREATE TABLE deployment_events (
  id BIGINT PRIMARY KEY,
  deployment TEXT NOT NULL,
  time_us BIGINT NOT NULL,
  kind TEXT NOT NULL,
  message TEXT NOT NULL,
  actor TEXT NOT NULL DEFAULT ''
);
CREATE INDEX deployment_events_by_deployment ON deployment_events (deployment, id);
)sql";

// Version 5: autoscaling settings (issue 8): '' when off, else AutoscaleSpec's JSON.
constexpr std::string_view kAutoscale = R"sql(
ALTER TABLE deployments ADD COLUMN autoscale TEXT NOT NULL DEFAULT '';
)sql";

// Version 6: the engines' KV cache type ('' = the engine's default).
constexpr std::string_view kKvType = R"sql(
ALTER TABLE deployments ADD COLUMN kv_type TEXT NOT NULL DEFAULT '';
)sql";

constexpr Migration kMigrations[] = {
    {1, "initial schema: models, deployments, instances, teams, keys, config, audit",
     kInitialSchema},
    {2, "usage ledger", kUsageLedger},
    {3, "external backends", kBackends},
    {4, "canaries, rollback and deployment events", kRollouts},
    {5, "autoscaling settings", kAutoscale},
    {6, "KV cache type of a deployment's engines", kKvType},
};

// Any constant: the key of the PostgreSQL advisory lock that serialises migrations.
constexpr int64_t kMigrationLockKey = 0x7472706c616e65;  // "trplane"

}  // namespace

std::span<const Migration> Migrations() { return kMigrations; }

absl::Status ApplyMigrations(sql::Backend& backend, int64_t now_micros) {
  return backend.Transact(sql::TxnMode::kWrite, [&](sql::Transaction& txn) -> absl::Status {
    if (backend.dialect() == sql::Dialect::kPostgres) {
      TP_RETURN_IF_ERROR(
          txn.Exec("SELECT pg_advisory_xact_lock($1)", {kMigrationLockKey}).status());
    }
    TP_RETURN_IF_ERROR(txn.ExecScript(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)"));
    TP_ASSIGN_OR_RETURN(sql::Result applied, txn.Exec("SELECT version FROM schema_migrations", {}));
    std::set<int64_t> done;
    for (const auto& row : applied.rows) {
      sql::RowReader r(row);
      done.insert(r.Int(0));
      TP_RETURN_IF_ERROR(r.status());
    }
    const int64_t latest = Migrations().back().version;
    if (!done.empty() && *done.rbegin() > latest) {
      return absl::FailedPreconditionError(fmt::format(
          "the store's schema is at version {}, newer than this binary's {}: upgrade Triplane",
          *done.rbegin(), latest));
    }
    for (const Migration& m : Migrations()) {
      if (done.contains(m.version)) continue;
      TP_RETURN_IF_ERROR(txn.ExecScript(m.sql));
      TP_RETURN_IF_ERROR(
          txn.Exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                   {m.version, m.name, now_micros})
              .status());
    }
    return absl::OkStatus();
  });
}

}  // namespace triplane::control
