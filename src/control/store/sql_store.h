#pragma once

// Store over a sql::Backend: the store's logic, written once for SQLite and PostgreSQL.
// Its methods are spread over sql_store*.cc by entity.

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "control/store/config_notifier.h"
#include "control/store/sql_backend.h"
#include "control/store/store.h"

namespace triplane::control {

class SqlStore final : public Store {
 public:
  // Applies the migrations the database lacks, then returns the store. `kind` is what
  // kind() reports ("sqlite", "postgres").
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Store>> Open(
      std::unique_ptr<sql::Backend> backend, std::string kind, StoreOptions options);

  std::string_view kind() const override { return kind_; }
  std::string description() const override { return backend_->description(); }
  absl::Status Ping() override;
  absl::StatusOr<int64_t> SchemaVersion() override;

  absl::StatusOr<Model> CreateModel(const Model& model, const WriteOptions& options) override;
  absl::StatusOr<Model> GetModel(std::string_view name) override;
  absl::StatusOr<std::vector<Model>> ListModels() override;
  absl::Status DeleteModel(std::string_view name, const WriteOptions& options) override;
  absl::StatusOr<ModelVersion> CreateModelVersion(const ModelVersion& version,
                                                  const WriteOptions& options) override;
  absl::StatusOr<ModelVersion> GetModelVersion(std::string_view model,
                                               std::string_view version) override;
  absl::StatusOr<std::vector<ModelVersion>> ListModelVersions(std::string_view model) override;
  absl::Status DeleteModelVersion(std::string_view model, std::string_view version,
                                  const WriteOptions& options) override;

  absl::StatusOr<Deployment> CreateDeployment(std::string_view name, const DeploymentSpec& spec,
                                              const WriteOptions& options) override;
  absl::StatusOr<Deployment> GetDeployment(std::string_view name) override;
  absl::StatusOr<std::vector<Deployment>> ListDeployments() override;
  absl::StatusOr<Deployment> UpdateDeploymentSpec(std::string_view name, const DeploymentSpec& spec,
                                                  int64_t if_generation,
                                                  const WriteOptions& options) override;
  absl::StatusOr<Deployment> SetDeploymentStatus(std::string_view name,
                                                 const DeploymentStatus& status) override;
  absl::Status DeleteDeployment(std::string_view name, const WriteOptions& options) override;

  absl::StatusOr<Instance> PutInstance(const Instance& instance) override;
  absl::StatusOr<Instance> GetInstance(std::string_view id) override;
  absl::StatusOr<std::vector<Instance>> ListInstances(std::string_view deployment) override;
  absl::Status DeleteInstance(std::string_view id) override;

  absl::StatusOr<Team> CreateTeam(const Team& team, const WriteOptions& options) override;
  absl::StatusOr<Team> GetTeam(std::string_view name) override;
  absl::StatusOr<std::vector<Team>> ListTeams() override;
  absl::Status DeleteTeam(std::string_view name, const WriteOptions& options) override;
  absl::StatusOr<ApiKey> CreateApiKey(const ApiKey& key, const WriteOptions& options) override;
  absl::StatusOr<ApiKey> GetApiKey(std::string_view id) override;
  absl::StatusOr<ApiKey> GetApiKeyByDigest(std::string_view digest) override;
  absl::StatusOr<std::vector<ApiKey>> ListApiKeys() override;
  absl::StatusOr<ApiKey> RevokeApiKey(std::string_view id, const WriteOptions& options) override;

  absl::StatusOr<DeploymentEvent> AppendEvent(const DeploymentEvent& event) override;
  absl::StatusOr<std::vector<DeploymentEvent>> ListEvents(std::string_view deployment, int64_t after_id,
                                                          int64_t limit) override;

  absl::StatusOr<Backend> PutBackend(const Backend& backend, const WriteOptions& options) override;
  absl::StatusOr<std::vector<Backend>> ListBackends() override;
  absl::Status DeleteBackend(std::string_view name, const WriteOptions& options) override;

  absl::StatusOr<int64_t> AppendUsage(std::span<const UsageRecord> records) override;
  absl::StatusOr<std::vector<UsageRecord>> ListUsage(const UsageQuery& query) override;
  absl::StatusOr<std::vector<UsageTotals>> SummarizeUsage(const UsageQuery& query,
                                                          UsageGroupBy group_by) override;

  absl::StatusOr<ConfigEntry> GetConfig(std::string_view key) override;
  absl::StatusOr<ConfigSnapshot> ListConfig(std::string_view prefix) override;
  absl::StatusOr<ConfigEntry> SetConfig(std::string_view key, const nlohmann::json& value,
                                        const WriteOptions& options) override;
  absl::StatusOr<int64_t> DeleteConfig(std::string_view key, const WriteOptions& options) override;
  absl::StatusOr<int64_t> ConfigRevision() override;
  absl::StatusOr<ConfigChanges> ConfigChangesSince(int64_t since) override;
  absl::StatusOr<int64_t> WaitForConfigChange(int64_t after, absl::Duration timeout) override;

  absl::StatusOr<AuditRecord> AppendAudit(const AuditEntry& entry) override;
  absl::StatusOr<std::vector<AuditRecord>> ListAudit(const AuditQuery& query) override;
  absl::StatusOr<AuditVerification> VerifyAudit() override;

 private:
  using Body = std::function<absl::Status(sql::Transaction&)>;

  SqlStore(std::unique_ptr<sql::Backend> backend, std::string kind, StoreOptions options)
      : backend_(std::move(backend)), kind_(std::move(kind)), options_(std::move(options)) {}

  absl::Status Read(const Body& body) { return backend_->Transact(sql::TxnMode::kRead, body); }
  absl::Status Write(const Body& body) { return backend_->Transact(sql::TxnMode::kWrite, body); }
  absl::Time Now() const { return options_.clock ? options_.clock() : absl::Now(); }
  int64_t NowMicros() const { return absl::ToUnixMicros(Now()); }

  // " FOR UPDATE" on PostgreSQL (row lock for read-modify-write); "" on SQLite, whose
  // write transactions already exclude each other.
  std::string_view ForUpdate() const;

  // Appends `entry` to the chain inside `txn`.
  absl::StatusOr<AuditRecord> AppendAuditIn(sql::Transaction& txn, const AuditEntry& entry);
  // AppendAuditIn when options.actor is set; OK otherwise.
  absl::Status AuditIn(sql::Transaction& txn, const WriteOptions& options, std::string_view action,
                       std::string target, nlohmann::json before, nlohmann::json after);

  std::unique_ptr<sql::Backend> backend_;
  const std::string kind_;
  const StoreOptions options_;
  ConfigNotifier notifier_;
};

}  // namespace triplane::control
