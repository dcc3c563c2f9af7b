// SqlStore: the usage ledger, one row per request the gateway served.

#include <algorithm>
#include <cmath>
#include <utility>

#include "common/status_macros.h"
#include "control/store/sql_store.h"
#include "control/store/sql_store_internal.h"

namespace triplane::control {
namespace {

using internal::FromMicros;
using internal::ToMicros;
using Row = std::vector<std::optional<std::string>>;

constexpr std::string_view kUsageColumns =
    "id, request_id, time_us, key_id, team, model, version, deployment, instance, endpoint, "
    "status, stream, prompt_tokens, completion_tokens, cached_tokens, latency_us, ttft_us, "
    "cost_micros, error";

constexpr int32_t kMaxListLimit = 100000;
// Latencies beyond this many seconds are nonsense, and would overflow as microseconds.
constexpr double kMaxLatencySeconds = 1e9;

int64_t SecondsToMicros(double seconds) { return std::llround(seconds * 1e6); }
double MicrosToSeconds(int64_t micros) { return static_cast<double>(micros) / 1e6; }

absl::Status ValidateRecord(size_t index, const UsageRecord& r) {
  auto invalid = [&](std::string_view why) {
    return absl::InvalidArgumentError(
        fmt::format("usage record {} (request '{}'): {}", index, r.request_id, why));
  };
  if (r.request_id.empty()) return invalid("request_id is empty");
  if (r.time == absl::InfinitePast() || r.time == absl::InfiniteFuture())
    return invalid("time is not set");
  if (r.prompt_tokens < 0 || r.completion_tokens < 0 || r.cached_tokens < 0)
    return invalid("token counts must not be negative");
  if (r.cost_micros < 0) return invalid("cost_micros must not be negative");
  for (double seconds : {r.latency_seconds, r.ttft_seconds}) {
    // Written so that NaN fails too.
    if (!(seconds >= 0 && seconds < kMaxLatencySeconds))
      return invalid("latencies must be finite and not negative");
  }
  return absl::OkStatus();
}

absl::StatusOr<UsageRecord> RecordFromRow(const Row& row) {
  sql::RowReader r(row);
  UsageRecord u;
  u.id = r.Int(0);
  u.request_id = r.Text(1);
  u.time = FromMicros(r.Int(2));
  u.key_id = r.Text(3);
  u.team = r.Text(4);
  u.model = r.Text(5);
  u.version = r.Text(6);
  u.deployment = r.Text(7);
  u.instance = r.Text(8);
  u.endpoint = r.Text(9);
  u.status = static_cast<int32_t>(r.Int(10));
  u.stream = r.Int(11) != 0;
  u.prompt_tokens = r.Int(12);
  u.completion_tokens = r.Int(13);
  u.cached_tokens = r.Int(14);
  u.latency_seconds = MicrosToSeconds(r.Int(15));
  u.ttft_seconds = MicrosToSeconds(r.Int(16));
  u.cost_micros = r.Int(17);
  u.error = r.Text(18);
  TP_RETURN_IF_ERROR(r.status());
  return u;
}

// " WHERE …" selecting the rows `query` matches; its values are appended to `params` as
// bound parameters (only constant fragments go into the SQL).
absl::StatusOr<std::string> WhereClause(const UsageQuery& query, std::vector<sql::Param>& params) {
  if (query.from > query.to) return absl::InvalidArgumentError("usage query: from is after to");
  params = {query.after_id};
  std::string sql = " WHERE id > $1";
  auto add = [&](std::string_view condition, sql::Param value) {
    params.push_back(std::move(value));
    sql += fmt::format(" AND {} ${}", condition, params.size());
  };
  if (query.from != absl::InfinitePast()) add("time_us >=", ToMicros(query.from));
  if (query.to != absl::InfiniteFuture()) add("time_us <", ToMicros(query.to));
  if (!query.key_id.empty()) add("key_id =", query.key_id);
  if (!query.team.empty()) add("team =", query.team);
  if (!query.model.empty()) add("model =", query.model);
  return sql;
}

// The SQL expression a summary groups by. Days are counted from the Unix epoch, rounding
// down (integer division truncates towards zero on both back ends) and named in C++.
std::string_view GroupExpression(UsageGroupBy group_by) {
  switch (group_by) {
    case UsageGroupBy::kAll:
      return "''";
    case UsageGroupBy::kKey:
      return "key_id";
    case UsageGroupBy::kTeam:
      return "team";
    case UsageGroupBy::kModel:
      return "model";
    case UsageGroupBy::kDay:
      return "CASE WHEN time_us >= 0 THEN time_us / 86400000000 "
             "ELSE (time_us + 1) / 86400000000 - 1 END";
  }
  return "''";
}

std::string DayName(int64_t day) {
  return absl::FormatTime("%Y-%m-%d", absl::FromUnixSeconds(day * 86400), absl::UTCTimeZone());
}

}  // namespace

absl::StatusOr<int64_t> SqlStore::AppendUsage(std::span<const UsageRecord> records) {
  for (size_t i = 0; i < records.size(); ++i) TP_RETURN_IF_ERROR(ValidateRecord(i, records[i]));
  if (records.empty()) return 0;
  const std::string insert = fmt::format(
      "INSERT INTO usage_ledger ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, "
      "$13, $14, $15, $16, $17, $18, $19) ON CONFLICT (request_id) DO NOTHING",
      kUsageColumns);
  int64_t inserted = 0;
  TP_RETURN_IF_ERROR(Write([&](sql::Transaction& txn) -> absl::Status {
    inserted = 0;
    // The head row's lock orders appenders, so ids follow commit order (see ListUsage).
    TP_ASSIGN_OR_RETURN(
        sql::Result head,
        txn.Exec(fmt::format("SELECT last_id FROM usage_head WHERE id = 1{}", ForUpdate()), {}));
    if (head.rows.size() != 1) return absl::InternalError("the usage ledger's head row is missing");
    sql::RowReader h(head.rows[0]);
    int64_t last_id = h.Int(0);
    TP_RETURN_IF_ERROR(h.status());
    for (const UsageRecord& r : records) {
      TP_ASSIGN_OR_RETURN(
          sql::Result result,
          txn.Exec(insert, {last_id + 1, r.request_id, ToMicros(r.time), r.key_id, r.team,
                            r.model, r.version, r.deployment, r.instance, r.endpoint, r.status,
                            int64_t{r.stream ? 1 : 0}, r.prompt_tokens, r.completion_tokens,
                            r.cached_tokens, SecondsToMicros(r.latency_seconds),
                            SecondsToMicros(r.ttft_seconds), r.cost_micros, r.error}));
      if (result.affected > 0) ++last_id;  // 0: the request id is already there
      inserted += result.affected;
    }
    if (inserted == 0) return absl::OkStatus();
    return txn.Exec("UPDATE usage_head SET last_id = $1 WHERE id = 1", {last_id}).status();
  }));
  return inserted;
}

absl::StatusOr<std::vector<UsageRecord>> SqlStore::ListUsage(const UsageQuery& query) {
  if (query.limit < 1 || query.limit > kMaxListLimit)
    return absl::InvalidArgumentError(fmt::format("usage limit must be 1..{}", kMaxListLimit));
  std::vector<sql::Param> params;
  TP_ASSIGN_OR_RETURN(const std::string where, WhereClause(query, params));
  params.push_back(int64_t{query.limit});
  const std::string sql = fmt::format("SELECT {} FROM usage_ledger{} ORDER BY id LIMIT ${}",
                                      kUsageColumns, where, params.size());
  std::vector<UsageRecord> records;
  TP_RETURN_IF_ERROR(Read([&](sql::Transaction& txn) -> absl::Status {
    records.clear();
    TP_ASSIGN_OR_RETURN(sql::Result result, txn.Exec(sql, params));
    records.reserve(result.rows.size());
    for (const auto& row : result.rows) {
      TP_ASSIGN_OR_RETURN(UsageRecord r, RecordFromRow(row));
      records.push_back(std::move(r));
    }
    return absl::OkStatus();
  }));
  return records;
}

absl::StatusOr<std::vector<UsageTotals>> SqlStore::SummarizeUsage(const UsageQuery& query,
                                                                  UsageGroupBy group_by) {
  std::vector<sql::Param> params;
  TP_ASSIGN_OR_RETURN(const std::string where, WhereClause(query, params));
  // Without GROUP BY the aggregate gives exactly one row, with NULL sums when nothing
  // matches (hence COALESCE).
  const std::string sql = fmt::format(
      "SELECT {}, COUNT(*), COALESCE(SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END), 0), "
      "COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0), "
      "COALESCE(SUM(cached_tokens), 0), COALESCE(SUM(cost_micros), 0) FROM usage_ledger{}{}",
      GroupExpression(group_by), where, group_by == UsageGroupBy::kAll ? "" : " GROUP BY 1");
  std::vector<UsageTotals> totals;
  TP_RETURN_IF_ERROR(Read([&](sql::Transaction& txn) -> absl::Status {
    totals.clear();
    TP_ASSIGN_OR_RETURN(sql::Result result, txn.Exec(sql, params));
    for (const auto& row : result.rows) {
      sql::RowReader r(row);
      UsageTotals t;
      if (group_by == UsageGroupBy::kDay) {
        t.group = DayName(r.Int(0));
      } else if (group_by != UsageGroupBy::kAll) {
        t.group = r.Text(0);
      }
      t.requests = r.Int(1);
      t.errors = r.Int(2);
      t.prompt_tokens = r.Int(3);
      t.completion_tokens = r.Int(4);
      t.cached_tokens = r.Int(5);
      t.cost_micros = r.Int(6);
      TP_RETURN_IF_ERROR(r.status());
      totals.push_back(std::move(t));
    }
    return absl::OkStatus();
  }));
  // Sorted here: SQLite and PostgreSQL (by its collation) would order text differently.
  // Day names sort as dates.
  std::sort(totals.begin(), totals.end(),
            [](const UsageTotals& a, const UsageTotals& b) { return a.group < b.group; });
  return totals;
}

}  // namespace triplane::control
