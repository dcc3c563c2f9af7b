// Admin API: the usage ledger (docs/api.md): summaries, rows and CSV export.

#include "common/status_macros.h"
#include "control/admin/admin_internal.h"
#include "fmt/format.h"

namespace triplane::control::admin_internal {

using common::HttpMethod;
using nlohmann::json;

namespace {

// `from`, `to` (RFC 3339), `key`, `team`, `model` and `after_id` of the query string.
absl::StatusOr<UsageQuery> QueryOf(const common::HttpRequest& request) {
  UsageQuery query;
  for (auto [name, target] : {std::pair{"from", &query.from}, std::pair{"to", &query.to}}) {
    if (std::optional<std::string> text = request.QueryParam(name)) {
      std::string error;
      if (!absl::ParseTime(absl::RFC3339_full, *text, target, &error)) {
        return BadParam(name, fmt::format("'{}' must be an RFC 3339 time, e.g. 2026-12-01T00:00:00Z", name));
      }
    }
  }
  if (query.from > query.to) return BadParam("from", "'from' must not be after 'to'");
  query.key_id = request.QueryParam("key").value_or("");
  query.team = request.QueryParam("team").value_or("");
  query.model = request.QueryParam("model").value_or("");
  TP_ASSIGN_OR_RETURN(std::optional<int64_t> after, QueryInt(request, "after_id", 0, INT64_MAX));
  query.after_id = after.value_or(0);
  return query;
}

// A CSV field: quoted when it holds a comma, quote or line break.
std::string CsvField(const std::string& text) {
  if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string TotalsCsv(const std::vector<UsageTotals>& rows, std::string_view group) {
  std::string out = fmt::format("{},requests,errors,prompt_tokens,completion_tokens,cached_tokens,cost\n", group);
  for (const UsageTotals& t : rows) {
    out += fmt::format("{},{},{},{},{},{},{}.{:06}\n", CsvField(t.group), t.requests, t.errors, t.prompt_tokens,
                       t.completion_tokens, t.cached_tokens, t.cost_micros / 1'000'000, t.cost_micros % 1'000'000);
  }
  return out;
}

Result Summary(Store& store, const Call& call) {
  TP_ASSIGN_OR_RETURN(UsageQuery query, QueryOf(call.request));
  const std::string group = call.request.QueryParam("group_by").value_or("all");
  absl::StatusOr<UsageGroupBy> group_by = ParseUsageGroupBy(group);
  if (!group_by.ok()) return BadParam("group_by", "'group_by' must be one of all, key, team, model, day");
  TP_ASSIGN_OR_RETURN(std::vector<UsageTotals> rows, store.SummarizeUsage(query, *group_by));
  if (call.request.QueryParam("format").value_or("json") == "csv") {
    return Reply{.text = TotalsCsv(rows, group), .content_type = "text/csv; charset=utf-8"};
  }
  json out = List(JsonArray(rows)).body;
  out["group_by"] = group;
  return Ok(std::move(out));
}

Result Records(Store& store, const Call& call) {
  TP_ASSIGN_OR_RETURN(UsageQuery query, QueryOf(call.request));
  TP_ASSIGN_OR_RETURN(std::optional<int64_t> limit, QueryInt(call.request, "limit", 1, 100000));
  query.limit = static_cast<int32_t>(limit.value_or(1000));
  TP_ASSIGN_OR_RETURN(std::vector<UsageRecord> rows, store.ListUsage(query));
  if (call.request.QueryParam("format").value_or("json") == "csv") {
    std::string out =
        "id,time,request_id,key_id,team,model,instance,endpoint,status,stream,prompt_tokens,"
        "completion_tokens,cached_tokens,latency_seconds,ttft_seconds,cost\n";
    for (const UsageRecord& r : rows) {
      out += fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{},{:.6f},{:.6f},{}.{:06}\n", r.id, TimeText(r.time),
                         CsvField(r.request_id), CsvField(r.key_id), CsvField(r.team), CsvField(r.model),
                         CsvField(r.instance), r.endpoint, r.status, r.stream, r.prompt_tokens,
                         r.completion_tokens, r.cached_tokens, r.latency_seconds, r.ttft_seconds,
                         r.cost_micros / 1'000'000, r.cost_micros % 1'000'000);
    }
    return Reply{.text = std::move(out), .content_type = "text/csv; charset=utf-8"};
  }
  return List(JsonArray(rows));
}

// Field `name` of a usage row as a non-negative integer (0 when absent or null). A plain
// value<int64_t>() would take 1.5, cast 1e19 out of range and let negative counts shrink
// a budget.
absl::StatusOr<int64_t> UsageCount(const json& row, const char* name) {
  const auto it = row.find(name);
  if (it == row.end() || it->is_null()) return 0;
  const bool in_range = it->is_number_unsigned()  ? it->get<uint64_t>() <= INT64_MAX
                        : it->is_number_integer() ? it->get<int64_t>() >= 0
                                                  : false;
  if (!in_range) {
    return BadParam(std::string("records.") + name, fmt::format("'{}' must be a non-negative integer", name));
  }
  return it->get<int64_t>();
}

// POST /admin/v1/usage: rows from a gateway running in its own process.
Result Ingest(Store& store, const Call& call) {
  TP_ASSIGN_OR_RETURN(json body, ParseBody(call.request));
  const auto records = body.find("records");
  if (records == body.end() || !records->is_array()) {
    return BadParam("records", "'records' must be an array of usage rows", "invalid_type");
  }
  std::vector<UsageRecord> rows;
  rows.reserve(records->size());
  for (const json& r : *records) {
    if (!r.is_object()) return BadParam("records", "every usage row must be an object", "invalid_type");
    UsageRecord row;
    try {
      row.request_id = r.value("request_id", "");
      std::string error;
      if (!absl::ParseTime(absl::RFC3339_full, r.value("time", ""), &row.time, &error)) {
        return BadParam("records.time", "'time' must be an RFC 3339 time");
      }
      row.key_id = r.value("key_id", "");
      row.team = r.value("team", "");
      row.model = r.value("model", "");
      row.version = r.value("version", "");
      row.deployment = r.value("deployment", "");
      row.instance = r.value("instance", "");
      row.endpoint = r.value("endpoint", "");
      TP_ASSIGN_OR_RETURN(const int64_t status, UsageCount(r, "status"));
      if (status > 999) return BadParam("records.status", "'status' must be an HTTP status");
      row.status = static_cast<int>(status);
      row.stream = r.value("stream", false);
      TP_ASSIGN_OR_RETURN(row.prompt_tokens, UsageCount(r, "prompt_tokens"));
      TP_ASSIGN_OR_RETURN(row.completion_tokens, UsageCount(r, "completion_tokens"));
      TP_ASSIGN_OR_RETURN(row.cached_tokens, UsageCount(r, "cached_tokens"));
      row.latency_seconds = r.value("latency_seconds", 0.0);
      row.ttft_seconds = r.value("ttft_seconds", 0.0);
      TP_ASSIGN_OR_RETURN(row.cost_micros, UsageCount(r, "cost_micros"));
      row.error = r.value("error", "");
    } catch (const json::exception&) {
      return BadParam("records", "a usage row has a field of the wrong type", "invalid_type");
    }
    rows.push_back(std::move(row));
  }
  TP_ASSIGN_OR_RETURN(int64_t inserted, store.AppendUsage(rows));
  return Ok({{"inserted", inserted}, {"received", rows.size()}});
}

}  // namespace

std::vector<Route> UsageRoutes(const Services& services) {
  Store& store = services.store;
  return {
      {HttpMethod::kGet, "/admin/v1/usage", [&store](const Call& call) { return Summary(store, call); }},
      {HttpMethod::kGet, "/admin/v1/usage/records", [&store](const Call& call) { return Records(store, call); }},
      {HttpMethod::kPost, "/admin/v1/usage", [&store](const Call& call) { return Ingest(store, call); }},
  };
}

}  // namespace triplane::control::admin_internal
