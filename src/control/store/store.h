#pragma once

// The control plane's persistent state behind one interface, with two back ends:
// SQLite (a file in the data dir, the default) and PostgreSQL (cluster mode). Open one
// with OpenStore() (store_factory.h). Both run the same versioned migrations and pass the
// same test suite (tests/unit/control/store/store_test.cc).
//
// Every method is one transaction: it commits completely or not at all, and never throws.
// Errors: InvalidArgument (bad input), NotFound, AlreadyExists, FailedPrecondition (a
// rule such as "version in use by a deployment"), Aborted (a lost optimistic race:
// re-read and retry), Unavailable (database unreachable or busy; retry later),
// ResourceExhausted (disk full), Internal (anything else; the message names the cause).
//
// Mutations that take WriteOptions append an audit row in the same transaction when
// `actor` is set, with the entity's JSON before and after (store_types.h ToJson).
//
// Thread-safe: one Store may be shared by all threads of a process, and several
// processes may open the same database.

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "control/store/store_types.h"
#include "nlohmann/json.hpp"

namespace triplane::control {

struct StoreOptions {
  // Source of created/updated times and audit times; absl::Now when empty. Called from
  // any thread, so it must be thread-safe.
  std::function<absl::Time()> clock;
  // SQLite: how long a writer waits for another connection's write lock.
  absl::Duration busy_timeout = absl::Seconds(5);
  // PostgreSQL: connections kept open, and how long a connection attempt may take.
  int pool_size = 4;
  absl::Duration connect_timeout = absl::Seconds(5);
  // WaitForConfigChange re-reads the revision this often, to see other processes' writes
  // (writes through this Store wake waiters at once).
  absl::Duration config_poll_interval = absl::Milliseconds(500);
};

struct WriteOptions {
  // Who asked for the change: an API key id, or "system", "autoscaler", … When set, the
  // change and its audit row commit together; when empty nothing is audited.
  std::string actor;
};

class Store {
 public:
  virtual ~Store() = default;

  // "sqlite" or "postgres".
  virtual std::string_view kind() const = 0;
  // The SQLite file, or the PostgreSQL URL with its password masked; safe to log.
  virtual std::string description() const = 0;
  // OK when the database answers a trivial query (reconnecting if needed).
  [[nodiscard]] virtual absl::Status Ping() = 0;
  // The highest migration applied (schema_migrations).
  [[nodiscard]] virtual absl::StatusOr<int64_t> SchemaVersion() = 0;

  // ---- Models and their immutable versions ----

  // AlreadyExists when the name is taken.
  [[nodiscard]] virtual absl::StatusOr<Model> CreateModel(const Model& model,
                                                          const WriteOptions& options) = 0;
  [[nodiscard]] virtual absl::StatusOr<Model> GetModel(std::string_view name) = 0;
  // By name.
  [[nodiscard]] virtual absl::StatusOr<std::vector<Model>> ListModels() = 0;
  // Deletes the model and all its versions (the caller removes their files).
  // FailedPrecondition when a deployment or instance uses any of its versions.
  [[nodiscard]] virtual absl::Status DeleteModel(std::string_view name,
                                                 const WriteOptions& options) = 0;

  // Adds a version to an existing model (NotFound otherwise); assigns `number` and, when
  // `version.version` is empty, uses the number as the version name. Requires a
  // lowercase hex sha256 and size_bytes >= 0. AlreadyExists when the version exists.
  [[nodiscard]] virtual absl::StatusOr<ModelVersion> CreateModelVersion(
      const ModelVersion& version, const WriteOptions& options) = 0;
  [[nodiscard]] virtual absl::StatusOr<ModelVersion> GetModelVersion(std::string_view model,
                                                                     std::string_view version) = 0;
  // The versions of `model` by number (NotFound for an unknown model), or of every model
  // by model and number when `model` is empty.
  [[nodiscard]] virtual absl::StatusOr<std::vector<ModelVersion>> ListModelVersions(
      std::string_view model) = 0;
  // FailedPrecondition when a deployment or instance uses the version.
  [[nodiscard]] virtual absl::Status DeleteModelVersion(std::string_view model,
                                                        std::string_view version,
                                                        const WriteOptions& options) = 0;

  // ---- Deployments (desired state, audited) and their status ----

  // Generation 1, phase pending. NotFound when spec.model:spec.version does not exist,
  // InvalidArgument for negative replicas or settings, AlreadyExists for a taken name.
  [[nodiscard]] virtual absl::StatusOr<Deployment> CreateDeployment(
      std::string_view name, const DeploymentSpec& spec, const WriteOptions& options) = 0;
  [[nodiscard]] virtual absl::StatusOr<Deployment> GetDeployment(std::string_view name) = 0;
  [[nodiscard]] virtual absl::StatusOr<std::vector<Deployment>> ListDeployments() = 0;
  // Replaces the spec and bumps the generation (a no-op when the spec is unchanged).
  // `if_generation` > 0: Aborted unless the stored generation equals it.
  [[nodiscard]] virtual absl::StatusOr<Deployment> UpdateDeploymentSpec(
      std::string_view name, const DeploymentSpec& spec, int64_t if_generation,
      const WriteOptions& options) = 0;
  // The reconciler's view; not audited, generation unchanged.
  [[nodiscard]] virtual absl::StatusOr<Deployment> SetDeploymentStatus(
      std::string_view name, const DeploymentStatus& status) = 0;
  // Instance rows are kept: the reconciler stops instances whose deployment is gone.
  [[nodiscard]] virtual absl::Status DeleteDeployment(std::string_view name,
                                                      const WriteOptions& options) = 0;

  // ---- Instances (runtime state, not audited) ----

  // Inserts or replaces by id; keeps created_at of an existing row.
  [[nodiscard]] virtual absl::StatusOr<Instance> PutInstance(const Instance& instance) = 0;
  [[nodiscard]] virtual absl::StatusOr<Instance> GetInstance(std::string_view id) = 0;
  // Of one deployment, or all when `deployment` is empty; by id.
  [[nodiscard]] virtual absl::StatusOr<std::vector<Instance>> ListInstances(
      std::string_view deployment) = 0;
  [[nodiscard]] virtual absl::Status DeleteInstance(std::string_view id) = 0;

  // ---- Teams and API keys (digests only) ----

  [[nodiscard]] virtual absl::StatusOr<Team> CreateTeam(const Team& team,
                                                        const WriteOptions& options) = 0;
  [[nodiscard]] virtual absl::StatusOr<Team> GetTeam(std::string_view name) = 0;
  [[nodiscard]] virtual absl::StatusOr<std::vector<Team>> ListTeams() = 0;
  // FailedPrecondition while keys belong to the team.
  [[nodiscard]] virtual absl::Status DeleteTeam(std::string_view name,
                                                const WriteOptions& options) = 0;

  // InvalidArgument unless `digest` is a SHA-256 hex digest (so that a secret can never be
  // stored by mistake); NotFound for an unknown team; AlreadyExists for a taken id or
  // digest. The audit row never contains the digest.
  [[nodiscard]] virtual absl::StatusOr<ApiKey> CreateApiKey(const ApiKey& key,
                                                            const WriteOptions& options) = 0;
  [[nodiscard]] virtual absl::StatusOr<ApiKey> GetApiKey(std::string_view id) = 0;
  // Lookup for authentication; revoked and expired keys are returned too (check them).
  [[nodiscard]] virtual absl::StatusOr<ApiKey> GetApiKeyByDigest(std::string_view digest) = 0;
  [[nodiscard]] virtual absl::StatusOr<std::vector<ApiKey>> ListApiKeys() = 0;
  // Sets revoked_at (kept when already revoked).
  [[nodiscard]] virtual absl::StatusOr<ApiKey> RevokeApiKey(std::string_view id,
                                                            const WriteOptions& options) = 0;

  // ---- Deployment events (not audited; the newest 1000 per deployment are kept) ----

  // Appends `event` (id and time set here) and returns it. InvalidArgument for an empty
  // deployment or kind.
  [[nodiscard]] virtual absl::StatusOr<DeploymentEvent> AppendEvent(const DeploymentEvent& event) = 0;
  // Events of `deployment` (every deployment when empty) with id > after_id, oldest
  // first, at most `limit`.
  [[nodiscard]] virtual absl::StatusOr<std::vector<DeploymentEvent>> ListEvents(
      std::string_view deployment, int64_t after_id, int64_t limit) = 0;

  // ---- External backends ----

  // Creates or replaces backend `backend.name` (audited as backend.create or
  // backend.update, without the key). InvalidArgument for a bad name, model or URL.
  [[nodiscard]] virtual absl::StatusOr<Backend> PutBackend(const Backend& backend,
                                                           const WriteOptions& options) = 0;
  [[nodiscard]] virtual absl::StatusOr<std::vector<Backend>> ListBackends() = 0;
  [[nodiscard]] virtual absl::Status DeleteBackend(std::string_view name,
                                                   const WriteOptions& options) = 0;

  // ---- Usage ledger: one row per served request (data, not audited) ----

  // Appends `records` in one transaction and returns how many were inserted: a record
  // whose request_id is already stored (or repeated in the batch) is skipped, so a retried
  // batch is harmless. Ids are assigned in commit order. InvalidArgument, with nothing
  // written, when any record has an empty request_id, an infinite time, negative tokens,
  // cost or latencies. Appends are serialised (one lock per batch); cost: one prepared
  // INSERT per record, one commit.
  [[nodiscard]] virtual absl::StatusOr<int64_t> AppendUsage(
      std::span<const UsageRecord> records) = 0;
  // Matching records by ascending id, at most query.limit; InvalidArgument for a limit
  // outside 1..100000 or from > to. Page with
  // after_id = the last id returned: since ids follow commit order, paging from the last
  // id seen also picks up every record appended since (an incremental export).
  [[nodiscard]] virtual absl::StatusOr<std::vector<UsageRecord>> ListUsage(
      const UsageQuery& query) = 0;
  // Totals of the matching records (query.limit is ignored), one per group in ascending
  // order of group; kAll gives exactly one row. E.g. the gateway seeds its monthly token
  // budgets with SummarizeUsage({.from = month_start}, UsageGroupBy::kKey). InvalidArgument
  // when from > to. Cost: one aggregate query over the matching rows.
  [[nodiscard]] virtual absl::StatusOr<std::vector<UsageTotals>> SummarizeUsage(
      const UsageQuery& query, UsageGroupBy group_by) = 0;

  // ---- Config center: JSON values under keys, one global revision ----

  [[nodiscard]] virtual absl::StatusOr<ConfigEntry> GetConfig(std::string_view key) = 0;
  // Entries whose key starts with `prefix` ("" for all), and the revision they are at.
  [[nodiscard]] virtual absl::StatusOr<ConfigSnapshot> ListConfig(std::string_view prefix) = 0;
  // Sets `key` and bumps the revision; setting the value a key already has changes
  // nothing (no revision, no audit row) and returns the entry as it is.
  [[nodiscard]] virtual absl::StatusOr<ConfigEntry> SetConfig(std::string_view key,
                                                              const nlohmann::json& value,
                                                              const WriteOptions& options) = 0;
  // Removes `key` (NotFound when absent) and returns the new revision.
  [[nodiscard]] virtual absl::StatusOr<int64_t> DeleteConfig(std::string_view key,
                                                             const WriteOptions& options) = 0;
  // The current revision (0 before the first change). Revisions only grow, and a change
  // with revision r is visible once revision r is.
  [[nodiscard]] virtual absl::StatusOr<int64_t> ConfigRevision() = 0;
  // The last change of every key changed after `since`. OutOfRange when `since` is ahead
  // of the store (the store was replaced: start again from 0).
  [[nodiscard]] virtual absl::StatusOr<ConfigChanges> ConfigChangesSince(int64_t since) = 0;
  // Blocks until the revision is above `after` or `timeout` passes; returns the revision
  // then (== `after` on timeout). Woken at once by writes through this Store, within
  // StoreOptions::config_poll_interval by other processes'. For watch long-polls.
  [[nodiscard]] virtual absl::StatusOr<int64_t> WaitForConfigChange(int64_t after,
                                                                    absl::Duration timeout) = 0;

  // ---- Audit log: append-only, hash-chained ----

  // Appends one row (for actions that change no stored entity).
  [[nodiscard]] virtual absl::StatusOr<AuditRecord> AppendAudit(const AuditEntry& entry) = 0;
  [[nodiscard]] virtual absl::StatusOr<std::vector<AuditRecord>> ListAudit(
      const AuditQuery& query) = 0;
  // Walks the whole chain: each row's id follows the previous one, its prev_hash is the
  // previous row's hash and its hash matches its content, and the last row is the one
  // the chain head records. Reports the first row that fails. Cost: reads every row.
  [[nodiscard]] virtual absl::StatusOr<AuditVerification> VerifyAudit() = 0;
};

}  // namespace triplane::control
