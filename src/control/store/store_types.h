#pragma once

// Records kept by the control plane's store (store.h): the model repository, deployments
// and their instances, teams and API keys, configuration, the usage ledger and the audit
// log. Plain values; the store assigns creation times, version numbers, generations,
// revisions and ids.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace triplane::control {

// ---- Model repository ------------------------------------------------------------

// A registered model: the name clients put in `"model"` and deployments refer to.
struct Model {
  std::string name;  // see ValidateName: "llama3-8b", "org/model.q4"
  std::string description;
  absl::Time created_at = absl::InfinitePast();  // set by the store
};

// What a GGUF file's metadata says about the model (read with engine/gguf).
struct GgufSummary {
  std::string architecture;                         // general.architecture, e.g. "llama"
  int64_t parameter_count = 0;                      // total weights
  std::string file_type;                            // quantization as shown to people, e.g. "Q4_K"
  std::vector<std::string> tensor_types;            // distinct tensor types, e.g. {"F32", "Q4_K"}
  int64_t context_length = 0;                       // <arch>.context_length
  bool has_chat_template = false;                   // tokenizer.chat_template present
  nlohmann::json extra = nlohmann::json::object();  // any other fields worth showing

  bool operator==(const GgufSummary&) const = default;
};

// An immutable version of a model: one GGUF file. Never updated; deleted only when no
// deployment uses it.
struct ModelVersion {
  std::string model;
  std::string version;  // unique within the model; the store uses `number` when empty
  int64_t number = 0;   // 1, 2, … in creation order within the model, never reused; by the store
  std::string file_path;
  int64_t size_bytes = 0;
  std::string sha256;  // 64 lowercase hex digits
  std::string source;  // the path it was added from or the URL it was pulled from
  GgufSummary gguf;
  absl::Time created_at = absl::InfinitePast();  // set by the store
};

// ---- Deployments and instances -----------------------------------------------------

// Engine settings of a deployment's instances; 0 means the engine's default.
struct EngineSettings {
  int32_t threads = 0;
  int32_t context_length = 0;
  int64_t kv_memory_bytes = 0;
  int32_t max_batch_tokens = 0;
  std::string kv_type;  // the engine's --kv-type: "" (its default, f16), "f16" or "q8_0"

  bool operator==(const EngineSettings&) const = default;
};

// What the autoscaler watches, per replica (control/autoscale/decision.h).
enum class AutoscaleMetric {
  kInFlight,  // requests in flight: the gateway's count (the default)
  kWaiting,   // requests queued in the engines
  kKvCache,   // KV cache usage, 0..1 (the target is a fraction)
};

// Autoscaling of a deployment: the autoscaler moves `replicas` between min and max so
// that each replica sees about `target` of `metric`, KPA-style (a stable and a panic
// window). Scaling to zero is opt-in: min_replicas 0 needs scale_to_zero, and the gateway
// then holds requests until an instance is ready. See ValidateAutoscale for the ranges.
struct AutoscaleSpec {
  int32_t min_replicas = 1;
  int32_t max_replicas = 1;
  AutoscaleMetric metric = AutoscaleMetric::kInFlight;
  double target = 4;  // per replica; DefaultAutoscaleTarget(metric) when not given
  int32_t stable_window_seconds = 60;
  int32_t panic_window_seconds = 10;
  double panic_threshold = 2.0;  // panic when the panic window's demand is this × capacity
  int32_t scale_up_cooldown_seconds = 0;
  int32_t scale_down_cooldown_seconds = 30;
  int32_t max_step = 0;  // replicas changed per decision at most; 0: no limit
  bool scale_to_zero = false;

  bool operator==(const AutoscaleSpec&) const = default;
};

// Desired state, written by people through the admin API (audited).
struct DeploymentSpec {
  std::string model;
  std::string version;  // an existing version of `model`
  int32_t replicas = 1;
  EngineSettings engine;
  // A canary in progress: instances of `canary_version` run next to the `replicas` of
  // `version` (max(1, replicas × percent / 100), rounded up) and the gateway sends them
  // `canary_percent` of the traffic. Empty / 0 when none.
  std::string canary_version;
  int32_t canary_percent = 0;
  // Autoscaling, when on: the autoscaler then writes `replicas` (audited as "autoscaler").
  std::optional<AutoscaleSpec> autoscale;

  bool operator==(const DeploymentSpec&) const = default;
};

enum class DeploymentPhase {
  kPending,      // not (fully) placed yet; `reason` says why
  kProgressing,  // instances starting or being replaced
  kRunning,      // all replicas ready
  kDegraded,     // some replicas not ready
  kFailed,       // cannot make progress; `reason` says why
};

// Observed state, written by the reconciler (not audited).
struct DeploymentStatus {
  DeploymentPhase phase = DeploymentPhase::kPending;
  std::string reason;
  int32_t ready_replicas = 0;
  int64_t observed_generation = 0;  // the spec generation the reconciler last acted on

  bool operator==(const DeploymentStatus&) const = default;
};

struct Deployment {
  std::string name;
  DeploymentSpec spec;
  DeploymentStatus status;
  int64_t generation = 0;  // 1 at creation, +1 per spec change; set by the store
  // The version served before the last change of `spec.version` (what a rollback goes
  // back to); set by the store, "" until the version first changes.
  std::string previous_version;
  absl::Time created_at = absl::InfinitePast();
  absl::Time updated_at = absl::InfinitePast();
};

// Something that happened to a deployment, for people: scaled and why, a rollout step,
// an instance that crashed or was restarted, a rollback. Not audited (the audit log has
// the changes people made; events also say what the platform did on its own).
struct DeploymentEvent {
  int64_t id = 0;  // set by the store, increasing
  std::string deployment;
  absl::Time time = absl::InfinitePast();  // set by the store
  std::string kind;     // "scaled", "rollout", "canary", "rollback", "instance", ...
  std::string message;  // one line
  std::string actor;    // a key id, "reconciler", "canary-analysis", "autoscaler"
};

enum class InstanceState { kStarting, kReady, kDraining, kStopped, kFailed };

// Stopped or failed: the instance will not serve again.
inline bool IsTerminal(InstanceState state) {
  return state == InstanceState::kStopped || state == InstanceState::kFailed;
}

// One engine process (or pod) of a deployment: runtime state kept so that a restarted
// control plane can adopt its instances. No foreign key to the deployment: the
// reconciler finds and stops instances whose deployment is gone.
struct Instance {
  std::string id;  // unique, chosen by the provider
  std::string deployment;
  std::string model;
  std::string version;
  std::string provider;  // "local", "kubernetes"
  std::string host;
  int32_t port = 0;
  int64_t pid = 0;  // 0 when not a local process
  InstanceState state = InstanceState::kStarting;
  int32_t restarts = 0;
  std::string last_error;
  nlohmann::json provider_data = nlohmann::json::object();  // e.g. a pod name
  absl::Time created_at = absl::InfinitePast();             // set by the store on first Put
  absl::Time updated_at = absl::InfinitePast();             // set by the store on every Put
};

// ---- Teams and API keys ------------------------------------------------------------

struct Team {
  std::string name;
  std::string description;
  absl::Time created_at = absl::InfinitePast();
};

// An external OpenAI-compatible server (another vLLM or llama.cpp server, a hosted API)
// that serves `model` next to, or instead of, local deployments. The API key is a secret
// the gateway must present upstream, so it is stored as given; it never appears in audit
// rows (ToJson leaves it out), admin API answers or logs.
struct Backend {
  std::string name;          // see ValidateName
  std::string model;         // the public model name it answers for
  std::string base_url;      // up to the API root: "https://api.example.com/v1"
  std::string remote_model;  // the name sent upstream; "" = `model`
  std::string api_key;       // secret; "" = none
  absl::Time created_at = absl::InfinitePast();  // set by the store
  absl::Time updated_at = absl::InfinitePast();  // set by the store
};

// InvalidArgument unless `url` is an absolute http(s) URL with a host and neither a
// query, a fragment nor user info (a key belongs in api_key, not in the URL).
[[nodiscard]] absl::Status ValidateBackendUrl(std::string_view url);

enum class KeyRole { kAdmin, kUser };

// An API key as stored: only the SHA-256 digest of the secret, never the secret itself.
struct ApiKey {
  std::string id;      // public identifier shown in lists and audit rows (not secret)
  std::string name;    // a label for people
  std::string digest;  // SHA-256 of the secret key, 64 lowercase hex digits
  KeyRole role = KeyRole::kUser;
  std::string team;                         // empty: none; otherwise an existing team
  std::vector<std::string> allowed_models;  // empty: every model
  std::optional<absl::Time> expires_at;
  std::optional<absl::Time> revoked_at;  // set by RevokeApiKey
  absl::Time created_at = absl::InfinitePast();
};

// ---- Config center -----------------------------------------------------------------

struct ConfigEntry {
  std::string key;  // see ValidateConfigKey: "limits.default", "prices/llama3"
  nlohmann::json value;
  int64_t revision = 0;  // the global revision of the entry's last change
  absl::Time updated_at = absl::InfinitePast();
  std::string updated_by;  // actor of the last change
};

// All entries at one revision: a watcher's starting point.
struct ConfigSnapshot {
  int64_t revision = 0;
  std::vector<ConfigEntry> entries;  // by key
};

struct ConfigChange {
  std::string key;
  std::optional<nlohmann::json> value;  // nullopt: the key was deleted
  int64_t revision = 0;
};

// The latest change of every key changed after some revision, up to `revision`.
struct ConfigChanges {
  int64_t revision = 0;               // the store's revision the changes bring a watcher to
  std::vector<ConfigChange> changes;  // ascending revision, one per key
};

// ---- Audit log ---------------------------------------------------------------------

// What a caller appends; the store adds id, time and the hash chain.
struct AuditEntry {
  std::string actor;      // API key id, or "system", "autoscaler", …
  std::string action;     // "deployment.create", "config.set", …
  std::string target;     // "deployment/chat", "config/limits", …
  nlohmann::json before;  // null when there was nothing before
  nlohmann::json after;   // null when nothing is left
};

struct AuditRecord {
  int64_t id = 0;  // 1, 2, … without gaps
  absl::Time time = absl::InfinitePast();
  std::string actor;
  std::string action;
  std::string target;
  nlohmann::json before;
  nlohmann::json after;
  std::string prev_hash;  // hash of row id-1 (64 zeros for row 1), hex
  std::string hash;       // SHA-256 over this row's canonical content and prev_hash, hex
};

struct AuditQuery {
  int64_t after_id = 0;   // rows with id > after_id …
  int64_t before_id = 0;  // … and id < before_id (0: no upper bound)
  int32_t limit = 100;    // 1..10000
  bool newest_first = false;
  std::string actor;   // exact match when not empty
  std::string action;  // exact match when not empty
  std::string target;  // exact match when not empty
};

// The result of walking the whole chain.
struct AuditVerification {
  bool ok = true;
  int64_t rows_checked = 0;
  int64_t first_bad_id = 0;  // the first row that is edited, out of place or after a gap
  std::string problem;       // empty when ok
};

// ---- Usage ledger ------------------------------------------------------------------

// One request the gateway served, as billed. The gateway appends these in batches
// (Store::AppendUsage); billing and budgets read them back (ListUsage, SummarizeUsage).
struct UsageRecord {
  int64_t id = 0;          // set by the store: 1, 2, … in commit order (see ListUsage)
  std::string request_id;  // unique; appending an id already stored is skipped (retries)
  absl::Time time = absl::InfinitePast();  // when the request finished (gateway's clock)
  std::string key_id;                      // API key that paid, "" for unauthenticated
  std::string team;                        // the key's team, "" when none
  std::string model;                       // as the client asked for it
  std::string version;                     // the model version that served it
  std::string deployment;
  std::string instance;
  std::string endpoint;  // "chat.completions", "completions" or "embeddings"
  int32_t status = 200;  // HTTP status the client got
  bool stream = false;
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t cached_tokens = 0;     // prompt tokens served from the prefix cache
  double latency_seconds = 0;    // stored at microsecond resolution
  double ttft_seconds = 0;       // time to first token; microsecond resolution
  int64_t cost_micros = 0;       // price applied, in millionths of the currency unit
  std::string error;             // "" on success

  bool operator==(const UsageRecord&) const = default;
};

// Which rows ListUsage and SummarizeUsage look at: every condition must hold.
struct UsageQuery {
  absl::Time from = absl::InfinitePast();  // time in [from, to)
  absl::Time to = absl::InfiniteFuture();
  std::string key_id;    // exact match when not empty
  std::string team;      // exact match when not empty
  std::string model;     // exact match when not empty
  int64_t after_id = 0;  // rows with id > after_id (paging)
  int32_t limit = 1000;  // ListUsage only: 1..100000 rows
};

enum class UsageGroupBy {
  kAll,    // one row with group "", zeros when nothing matches
  kKey,    // group = key_id
  kTeam,   // group = team ("" for keys without a team)
  kModel,  // group = model
  kDay,    // group = UTC date of the record's time, "2026-12-05"
};

// Sums over a group of usage records.
struct UsageTotals {
  std::string group;
  int64_t requests = 0;
  int64_t errors = 0;  // records with status >= 400
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t cached_tokens = 0;
  int64_t cost_micros = 0;

  bool operator==(const UsageTotals&) const = default;
};

// ---- Names and helpers -------------------------------------------------------------

std::string_view ToString(DeploymentPhase phase);
std::string_view ToString(InstanceState state);
std::string_view ToString(KeyRole role);
std::string_view ToString(UsageGroupBy group_by);  // "all", "key", "team", "model", "day"
std::string_view ToString(AutoscaleMetric metric);  // "in_flight", "waiting", "kv_cache"
[[nodiscard]] absl::StatusOr<DeploymentPhase> ParseDeploymentPhase(std::string_view text);
[[nodiscard]] absl::StatusOr<InstanceState> ParseInstanceState(std::string_view text);
[[nodiscard]] absl::StatusOr<KeyRole> ParseKeyRole(std::string_view text);
[[nodiscard]] absl::StatusOr<UsageGroupBy> ParseUsageGroupBy(std::string_view text);
[[nodiscard]] absl::StatusOr<AutoscaleMetric> ParseAutoscaleMetric(std::string_view text);

// The target per replica when none is given: 4 requests in flight, 2 waiting, 80 % KV.
double DefaultAutoscaleTarget(AutoscaleMetric metric);
// InvalidArgument unless 0 <= min <= max, 1 <= max <= 1000, min 0 exactly when
// scale_to_zero, target > 0 (at most 1 for kv_cache), 1 <= stable window <= 3600,
// 1 <= panic window <= stable window, 1 <= panic_threshold <= 100, cooldowns 0..3600 s,
// max_step >= 0.
[[nodiscard]] absl::Status ValidateAutoscale(const AutoscaleSpec& spec);
// {"min_replicas", …, "metric": "in_flight", …}; the admin API's and the store's form.
nlohmann::json ToJson(const AutoscaleSpec& spec);
// Replaces the fields `object` gives (others keep their value in `spec`); a new metric
// without a target gets that metric's default target. InvalidArgument naming the field
// ("autoscale.target …") for a wrong type; ranges are ValidateAutoscale's.
[[nodiscard]] absl::Status ApplyAutoscaleJson(const nlohmann::json& object, AutoscaleSpec& spec);

// Names of models, versions, deployments, teams, instances and key ids: 1–128 bytes of
// [A-Za-z0-9._-] and '/', not starting with '.', '-' or '/', no "..", no "//", no ':'
// (the CLI writes MODEL:VERSION). InvalidArgument naming `what` otherwise.
[[nodiscard]] absl::Status ValidateName(std::string_view what, std::string_view name);

// Config keys: 1–256 bytes of [A-Za-z0-9._/-].
[[nodiscard]] absl::Status ValidateConfigKey(std::string_view key);

// True for exactly 64 lowercase hex digits (a SHA-256 digest).
bool IsSha256Hex(std::string_view text);

// JSON forms used for audit rows and by the admin API. ApiKey's digest is left out.
nlohmann::json ToJson(const Model& model);
nlohmann::json ToJson(const ModelVersion& version);
nlohmann::json ToJson(const Deployment& deployment);
// Includes "url": "http://host:port" when port > 0 (else null); provider_data is left out.
nlohmann::json ToJson(const Instance& instance);
nlohmann::json ToJson(const Team& team);
nlohmann::json ToJson(const DeploymentEvent& event);
nlohmann::json ToJson(const Backend& backend);  // "has_api_key", never the key
nlohmann::json ToJson(const ApiKey& key);
// Latencies in seconds, time as RFC 3339 UTC.
nlohmann::json ToJson(const UsageRecord& record);
nlohmann::json ToJson(const UsageTotals& totals);

}  // namespace triplane::control
