// SqlStore: the config center. One global revision (config_state) is bumped by every
// change under a row lock, so revisions commit in order; config_log keeps every change
// (deletions as NULL values) for ConfigChangesSince.

#include <algorithm>
#include <chrono>
#include <utility>

#include "common/json.h"
#include "common/status_macros.h"
#include "control/store/sql_store.h"
#include "control/store/sql_store_internal.h"

namespace triplane::control {
namespace {

using internal::FromMicros;
using Row = std::vector<std::optional<std::string>>;

constexpr std::string_view kEntryColumns = "key, value, revision, updated_at, updated_by";

absl::StatusOr<ConfigEntry> EntryFromRow(const Row& row) {
  sql::RowReader r(row);
  ConfigEntry e;
  e.key = r.Text(0);
  const std::string value = r.Text(1);
  e.revision = r.Int(2);
  e.updated_at = FromMicros(r.Int(3));
  e.updated_by = r.Text(4);
  TP_RETURN_IF_ERROR(r.status());
  TP_RETURN_IF_ERROR(internal::ParseStored(value, "config value", e.value));
  return e;
}

absl::StatusOr<int64_t> ReadRevision(sql::Transaction& txn, std::string_view suffix) {
  TP_ASSIGN_OR_RETURN(
      sql::Result result,
      txn.Exec(fmt::format("SELECT revision FROM config_state WHERE id = 1{}", suffix), {}));
  if (result.rows.size() != 1) return absl::InternalError("config revision row is missing");
  sql::RowReader r(result.rows[0]);
  const int64_t revision = r.Int(0);
  TP_RETURN_IF_ERROR(r.status());
  return revision;
}

absl::StatusOr<int64_t> BumpRevision(sql::Transaction& txn) {
  TP_ASSIGN_OR_RETURN(
      sql::Result result,
      txn.Exec("UPDATE config_state SET revision = revision + 1 WHERE id = 1 RETURNING revision",
               {}));
  if (result.rows.size() != 1) return absl::InternalError("config revision row is missing");
  sql::RowReader r(result.rows[0]);
  const int64_t revision = r.Int(0);
  TP_RETURN_IF_ERROR(r.status());
  return revision;
}

}  // namespace

absl::StatusOr<ConfigEntry> SqlStore::GetConfig(std::string_view key) {
  absl::StatusOr<ConfigEntry> found = internal::NotFound("config key", key);
  TP_RETURN_IF_ERROR(Read([&](sql::Transaction& txn) -> absl::Status {
    TP_ASSIGN_OR_RETURN(
        sql::Result result,
        txn.Exec(fmt::format("SELECT {} FROM config_entries WHERE key = $1", kEntryColumns),
                 {key}));
    if (!result.rows.empty()) found = EntryFromRow(result.rows[0]);
    return absl::OkStatus();
  }));
  return found;
}

absl::StatusOr<ConfigSnapshot> SqlStore::ListConfig(std::string_view prefix) {
  ConfigSnapshot snapshot;
  TP_RETURN_IF_ERROR(Read([&](sql::Transaction& txn) -> absl::Status {
    snapshot.entries.clear();
    TP_ASSIGN_OR_RETURN(snapshot.revision, ReadRevision(txn, ""));
    TP_ASSIGN_OR_RETURN(sql::Result result,
                        txn.Exec(fmt::format("SELECT {} FROM config_entries", kEntryColumns), {}));
    for (const auto& row : result.rows) {
      // Filtered here rather than with LIKE, whose case rules differ between back ends.
      if (!row.at(0).has_value() || !row.at(0)->starts_with(prefix)) continue;
      TP_ASSIGN_OR_RETURN(ConfigEntry e, EntryFromRow(row));
      snapshot.entries.push_back(std::move(e));
    }
    return absl::OkStatus();
  }));
  std::sort(snapshot.entries.begin(), snapshot.entries.end(),
            [](const ConfigEntry& a, const ConfigEntry& b) { return a.key < b.key; });
  return snapshot;
}

absl::StatusOr<ConfigEntry> SqlStore::SetConfig(std::string_view key, const nlohmann::json& value,
                                                const WriteOptions& options) {
  TP_RETURN_IF_ERROR(ValidateConfigKey(key));
  if (value.is_discarded()) return absl::InvalidArgumentError("config value is not a JSON value");
  const std::string text = common::DumpJson(value);
  ConfigEntry entry;
  bool changed = false;
  TP_RETURN_IF_ERROR(Write([&](sql::Transaction& txn) -> absl::Status {
    changed = false;
    // Lock the revision first: changes (and their audit rows) then apply one at a time.
    TP_RETURN_IF_ERROR(ReadRevision(txn, ForUpdate()).status());
    TP_ASSIGN_OR_RETURN(
        sql::Result existing,
        txn.Exec(fmt::format("SELECT {} FROM config_entries WHERE key = $1", kEntryColumns),
                 {key}));
    nlohmann::json before = nullptr;
    if (!existing.rows.empty()) {
      TP_ASSIGN_OR_RETURN(ConfigEntry current, EntryFromRow(existing.rows[0]));
      if (existing.rows[0].at(1) == text) {
        entry = std::move(current);
        return absl::OkStatus();
      }
      before = std::move(current.value);
    }
    TP_ASSIGN_OR_RETURN(const int64_t revision, BumpRevision(txn));
    const int64_t now = NowMicros();
    TP_RETURN_IF_ERROR(
        txn.Exec("INSERT INTO config_entries (key, value, revision, updated_at, updated_by) "
                 "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (key) DO UPDATE SET value = "
                 "excluded.value, "
                 "revision = excluded.revision, updated_at = excluded.updated_at, "
                 "updated_by = excluded.updated_by",
                 {key, text, revision, now, options.actor})
            .status());
    TP_RETURN_IF_ERROR(txn.Exec("INSERT INTO config_log (revision, key, value, changed_at, actor) "
                                "VALUES ($1, $2, $3, $4, $5)",
                                {revision, key, text, now, options.actor})
                           .status());
    entry = ConfigEntry{.key = std::string(key),
                        .value = value,
                        .revision = revision,
                        .updated_at = FromMicros(now),
                        .updated_by = options.actor};
    changed = true;
    return AuditIn(txn, options, "config.set", fmt::format("config/{}", key), std::move(before),
                   value);
  }));
  if (changed) notifier_.Publish(entry.revision);
  return entry;
}

absl::StatusOr<int64_t> SqlStore::DeleteConfig(std::string_view key, const WriteOptions& options) {
  int64_t revision = 0;
  TP_RETURN_IF_ERROR(Write([&](sql::Transaction& txn) -> absl::Status {
    TP_RETURN_IF_ERROR(ReadRevision(txn, ForUpdate()).status());
    TP_ASSIGN_OR_RETURN(
        sql::Result existing,
        txn.Exec(fmt::format("SELECT {} FROM config_entries WHERE key = $1", kEntryColumns),
                 {key}));
    if (existing.rows.empty()) return internal::NotFound("config key", key);
    TP_ASSIGN_OR_RETURN(ConfigEntry before, EntryFromRow(existing.rows[0]));
    TP_ASSIGN_OR_RETURN(revision, BumpRevision(txn));
    TP_RETURN_IF_ERROR(txn.Exec("DELETE FROM config_entries WHERE key = $1", {key}).status());
    TP_RETURN_IF_ERROR(txn.Exec("INSERT INTO config_log (revision, key, value, changed_at, actor) "
                                "VALUES ($1, $2, NULL, $3, $4)",
                                {revision, key, NowMicros(), options.actor})
                           .status());
    return AuditIn(txn, options, "config.delete", fmt::format("config/{}", key),
                   std::move(before.value), nullptr);
  }));
  notifier_.Publish(revision);
  return revision;
}

absl::StatusOr<int64_t> SqlStore::ConfigRevision() {
  int64_t revision = 0;
  TP_RETURN_IF_ERROR(Read([&](sql::Transaction& txn) -> absl::Status {
    TP_ASSIGN_OR_RETURN(revision, ReadRevision(txn, ""));
    return absl::OkStatus();
  }));
  return revision;
}

absl::StatusOr<ConfigChanges> SqlStore::ConfigChangesSince(int64_t since) {
  ConfigChanges changes;
  TP_RETURN_IF_ERROR(Read([&](sql::Transaction& txn) -> absl::Status {
    changes.changes.clear();
    TP_ASSIGN_OR_RETURN(changes.revision, ReadRevision(txn, ""));
    if (since > changes.revision) {
      return absl::OutOfRangeError(
          fmt::format("config revision {} is ahead of the store's {}: start again from revision 0",
                      since, changes.revision));
    }
    // The last change of each key in (since, revision]. Bounded by the revision read
    // above, so the answer is consistent even if changes commit meanwhile.
    TP_ASSIGN_OR_RETURN(
        sql::Result result,
        txn.Exec(
            "SELECT l.revision, l.key, l.value FROM config_log l "
            "WHERE l.revision > $1 AND l.revision <= $2 AND l.revision = "
            "(SELECT MAX(m.revision) FROM config_log m WHERE m.key = l.key AND m.revision <= $2) "
            "ORDER BY l.revision",
            {since, changes.revision}));
    for (const auto& row : result.rows) {
      sql::RowReader r(row);
      ConfigChange change{.key = r.Text(1), .revision = r.Int(0)};
      std::optional<std::string> value = r.OptionalText(2);
      TP_RETURN_IF_ERROR(r.status());
      if (value.has_value()) {
        nlohmann::json parsed;
        TP_RETURN_IF_ERROR(internal::ParseStored(*value, "config value", parsed));
        change.value = std::move(parsed);
      }
      changes.changes.push_back(std::move(change));
    }
    return absl::OkStatus();
  }));
  return changes;
}

absl::StatusOr<int64_t> SqlStore::WaitForConfigChange(int64_t after, absl::Duration timeout) {
  // A monotonic clock, not the injected one: this is about waiting, not stored times.
  using Clock = std::chrono::steady_clock;
  const Clock::time_point deadline = Clock::now() + absl::ToChronoNanoseconds(timeout);
  while (true) {
    TP_ASSIGN_OR_RETURN(const int64_t current, ConfigRevision());
    if (current > after) return current;
    const Clock::time_point now = Clock::now();
    if (now >= deadline) return current;
    const absl::Duration left = absl::FromChrono(deadline - now);
    notifier_.WaitAbove(after, std::min(left, options_.config_poll_interval));
  }
}

}  // namespace triplane::control
