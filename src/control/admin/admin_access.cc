// Admin API: API keys, teams and the audit log (docs/api.md).

#include "common/status_macros.h"
#include "control/admin/admin_internal.h"
#include "control/admin/api_keys.h"
#include "fmt/format.h"

namespace triplane::control::admin_internal {

using common::HttpMethod;
using nlohmann::json;

namespace {

constexpr int64_t kMaxAuditRows = 10000;

Result CreateKey(Store& store, const Call& call) {
  TP_ASSIGN_OR_RETURN(json body, ParseBody(call.request));
  const Fields fields(body);
  ApiKey key;
  TP_ASSIGN_OR_RETURN(key.name, fields.RequiredString("name"));
  TP_ASSIGN_OR_RETURN(std::optional<std::string> role, fields.String("role"));
  if (role) {
    absl::StatusOr<KeyRole> parsed = ParseKeyRole(*role);
    if (!parsed.ok()) return BadParam("role", "'role' must be \"admin\" or \"user\".");
    key.role = *parsed;
  }
  TP_ASSIGN_OR_RETURN(std::optional<std::string> team, fields.String("team"));
  TP_ASSIGN_OR_RETURN(std::optional<std::vector<std::string>> models,
                      fields.StringArray("allowed_models"));
  TP_ASSIGN_OR_RETURN(key.expires_at, fields.Time("expires_at"));
  key.team = team.value_or("");
  key.allowed_models = models.value_or(std::vector<std::string>{});
  // The secret exists only in this response: the store keeps its digest.
  const std::string secret = GenerateApiKey();
  key.id = GenerateKeyId();
  key.digest = ApiKeyDigest(secret);
  TP_ASSIGN_OR_RETURN(ApiKey created, store.CreateApiKey(key, call.write));
  json j = ToJson(created);
  j["key"] = secret;
  return Ok(std::move(j), 201);
}

Result CreateTeam(Store& store, const Call& call) {
  TP_ASSIGN_OR_RETURN(json body, ParseBody(call.request));
  const Fields fields(body);
  Team team;
  TP_ASSIGN_OR_RETURN(team.name, fields.RequiredString("name"));
  TP_ASSIGN_OR_RETURN(std::optional<std::string> description, fields.String("description"));
  team.description = description.value_or("");
  TP_ASSIGN_OR_RETURN(Team created, store.CreateTeam(team, call.write));
  return Ok(ToJson(created), 201);
}

json AuditJson(const AuditRecord& row) {
  return {{"id", row.id},         {"time", TimeText(row.time)}, {"actor", row.actor},
          {"action", row.action}, {"target", row.target},       {"before", row.before},
          {"after", row.after},   {"prev_hash", row.prev_hash}, {"hash", row.hash}};
}

Result ListAudit(Store& store, const Call& call) {
  const common::HttpRequest& r = call.request;
  AuditQuery query;
  TP_ASSIGN_OR_RETURN(std::optional<int64_t> after, QueryInt(r, "after_id", 0, INT64_MAX));
  TP_ASSIGN_OR_RETURN(std::optional<int64_t> before, QueryInt(r, "before_id", 0, INT64_MAX));
  TP_ASSIGN_OR_RETURN(std::optional<int64_t> limit, QueryInt(r, "limit", 1, kMaxAuditRows));
  const std::string order = r.QueryParam("order").value_or("asc");
  if (order != "asc" && order != "desc") {
    return BadParam("order", fmt::format("'order' must be asc or desc, got '{}'.", order));
  }
  query.after_id = after.value_or(0);
  query.before_id = before.value_or(0);
  query.limit = static_cast<int32_t>(limit.value_or(query.limit));
  query.newest_first = order == "desc";
  query.actor = r.QueryParam("actor").value_or("");
  query.action = r.QueryParam("action").value_or("");
  query.target = r.QueryParam("target").value_or("");
  TP_ASSIGN_OR_RETURN(std::vector<AuditRecord> rows, store.ListAudit(query));
  json data = json::array();
  for (const AuditRecord& row : rows) data.push_back(AuditJson(row));
  return List(std::move(data));
}

Result VerifyAudit(Store& store) {
  TP_ASSIGN_OR_RETURN(AuditVerification v, store.VerifyAudit());
  return Ok({{"ok", v.ok},
             {"rows_checked", v.rows_checked},
             {"first_bad_id", v.first_bad_id},
             {"problem", v.problem}});
}

}  // namespace

std::vector<Route> AccessRoutes(const Services& services) {
  Store& store = services.store;
  return {
      {HttpMethod::kGet, "/admin/v1/keys",
       [&store](const Call&) -> Result {
         TP_ASSIGN_OR_RETURN(std::vector<ApiKey> keys, store.ListApiKeys());
         return List(JsonArray(keys));  // ToJson(ApiKey) leaves the digest out
       }},
      {HttpMethod::kPost, "/admin/v1/keys",
       [&store](const Call& call) { return CreateKey(store, call); }},
      {HttpMethod::kDelete, "/admin/v1/keys/{id}",
       [&store](const Call& call) -> Result {
         TP_ASSIGN_OR_RETURN(ApiKey key, store.RevokeApiKey(PathParam(call, "id"), call.write));
         return Ok(ToJson(key));
       }},
      {HttpMethod::kGet, "/admin/v1/teams",
       [&store](const Call&) -> Result {
         TP_ASSIGN_OR_RETURN(std::vector<Team> teams, store.ListTeams());
         return List(JsonArray(teams));
       }},
      {HttpMethod::kPost, "/admin/v1/teams",
       [&store](const Call& call) { return CreateTeam(store, call); }},
      {HttpMethod::kDelete, "/admin/v1/teams/{name}",
       [&store](const Call& call) -> Result {
         TP_RETURN_IF_ERROR(store.DeleteTeam(PathParam(call, "name"), call.write));
         return Deleted();
       }},
      {HttpMethod::kGet, "/admin/v1/audit",
       [&store](const Call& call) { return ListAudit(store, call); }},
      {HttpMethod::kGet, "/admin/v1/audit/verify",
       [&store](const Call&) { return VerifyAudit(store); }},
  };
}

}  // namespace triplane::control::admin_internal
