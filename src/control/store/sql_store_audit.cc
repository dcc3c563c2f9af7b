// SqlStore: reading and verifying the audit log (appends are in sql_store.cc).

#include <limits>
#include <utility>

#include "common/status_macros.h"
#include "control/store/audit_chain.h"
#include "control/store/sql_store.h"
#include "control/store/sql_store_internal.h"

namespace triplane::control {
namespace {

using Row = std::vector<std::optional<std::string>>;

constexpr std::string_view kAuditColumns =
    "id, time_us, actor, action, target, before_json, after_json, prev_hash, hash";

absl::StatusOr<StoredAuditRow> StoredFromRow(const Row& row) {
  sql::RowReader r(row);
  StoredAuditRow s;
  s.id = r.Int(0);
  s.time_us = r.Int(1);
  s.actor = r.Text(2);
  s.action = r.Text(3);
  s.target = r.Text(4);
  s.before_json = r.Text(5);
  s.after_json = r.Text(6);
  s.prev_hash = r.Text(7);
  s.hash = r.Text(8);
  TP_RETURN_IF_ERROR(r.status());
  return s;
}

// Verification reads the chain in pages of this many rows.
constexpr int64_t kVerifyPage = 1000;

}  // namespace

absl::StatusOr<AuditRecord> SqlStore::AppendAudit(const AuditEntry& entry) {
  AuditRecord record;
  TP_RETURN_IF_ERROR(Write([&](sql::Transaction& txn) -> absl::Status {
    TP_ASSIGN_OR_RETURN(record, AppendAuditIn(txn, entry));
    return absl::OkStatus();
  }));
  return record;
}

absl::StatusOr<std::vector<AuditRecord>> SqlStore::ListAudit(const AuditQuery& query) {
  if (query.limit < 1 || query.limit > 10000)
    return absl::InvalidArgumentError("audit limit must be 1..10000");
  // Only constant fragments are appended to the SQL; every value is a bound parameter.
  std::string sql = fmt::format("SELECT {} FROM audit_log WHERE id > $1", kAuditColumns);
  std::vector<sql::Param> params = {query.after_id};
  auto add = [&](std::string_view condition, sql::Param value) {
    params.push_back(std::move(value));
    sql += fmt::format(" AND {} ${}", condition, params.size());
  };
  if (query.before_id > 0) add("id <", query.before_id);
  if (!query.actor.empty()) add("actor =", query.actor);
  if (!query.action.empty()) add("action =", query.action);
  if (!query.target.empty()) add("target =", query.target);
  params.push_back(int64_t{query.limit});
  sql +=
      fmt::format(" ORDER BY id {} LIMIT ${}", query.newest_first ? "DESC" : "ASC", params.size());

  std::vector<AuditRecord> records;
  TP_RETURN_IF_ERROR(Read([&](sql::Transaction& txn) -> absl::Status {
    records.clear();
    TP_ASSIGN_OR_RETURN(sql::Result result, txn.Exec(sql, params));
    for (const auto& row : result.rows) {
      TP_ASSIGN_OR_RETURN(StoredAuditRow s, StoredFromRow(row));
      AuditRecord rec{.id = s.id,
                      .time = internal::FromMicros(s.time_us),
                      .actor = std::move(s.actor),
                      .action = std::move(s.action),
                      .target = std::move(s.target),
                      .prev_hash = std::move(s.prev_hash),
                      .hash = std::move(s.hash)};
      TP_RETURN_IF_ERROR(internal::ParseStored(s.before_json, "audit before", rec.before));
      TP_RETURN_IF_ERROR(internal::ParseStored(s.after_json, "audit after", rec.after));
      records.push_back(std::move(rec));
    }
    return absl::OkStatus();
  }));
  return records;
}

absl::StatusOr<AuditVerification> SqlStore::VerifyAudit() {
  AuditVerification verdict;
  // One read transaction: a snapshot on both back ends, so appends during the walk are
  // not mistaken for tampering.
  TP_RETURN_IF_ERROR(Read([&](sql::Transaction& txn) -> absl::Status {
    TP_ASSIGN_OR_RETURN(sql::Result head,
                        txn.Exec("SELECT last_id, last_hash FROM audit_head WHERE id = 1", {}));
    if (head.rows.size() != 1) {
      verdict = AuditVerification{.ok = false, .problem = "the audit chain head row is missing"};
      return absl::OkStatus();
    }
    sql::RowReader h(head.rows[0]);
    const int64_t head_id = h.Int(0);
    const std::string head_hash = h.Text(1);
    TP_RETURN_IF_ERROR(h.status());

    AuditChainVerifier verifier;
    int64_t after =
        std::numeric_limits<int64_t>::min();  // rows with odd ids (0, negative) are seen too
    bool more = true;
    while (more) {
      TP_ASSIGN_OR_RETURN(
          sql::Result page,
          txn.Exec(fmt::format("SELECT {} FROM audit_log WHERE id > $1 ORDER BY id LIMIT $2",
                               kAuditColumns),
                   {after, kVerifyPage}));
      more = static_cast<int64_t>(page.rows.size()) == kVerifyPage;
      for (const auto& row : page.rows) {
        TP_ASSIGN_OR_RETURN(StoredAuditRow s, StoredFromRow(row));
        after = s.id;
        if (!verifier.Add(s)) {
          more = false;
          break;
        }
      }
    }
    verdict = verifier.Finish(head_id, head_hash);
    return absl::OkStatus();
  }));
  return verdict;
}

}  // namespace triplane::control
