// Admin API: the config center (docs/api.md). The watch's threads live in admin_api.cc.

#include <algorithm>

#include "common/status_macros.h"
#include "control/admin/admin_internal.h"

namespace triplane::control::admin_internal {

using common::HttpMethod;
using nlohmann::json;

namespace {

json EntryJson(const ConfigEntry& entry) {
  return {{"key", entry.key},
          {"value", entry.value},
          {"revision", entry.revision},
          {"updated_at", TimeText(entry.updated_at)},
          {"updated_by", entry.updated_by}};
}

json SnapshotJson(const ConfigSnapshot& snapshot) {
  json data = json::array();
  for (const ConfigEntry& e : snapshot.entries) data.push_back(EntryJson(e));
  return {{"object", "list"}, {"revision", snapshot.revision}, {"data", std::move(data)}};
}

// Config keys may contain '/', so the routes take the rest of the path as the key.
std::string Key(const Call& call) { return PathParam(call, "key"); }

Result PutConfig(Store& store, const Call& call) {
  TP_ASSIGN_OR_RETURN(json body, ParseBody(call.request));
  const json* value = Fields(body).Raw("value");
  if (value == nullptr) {
    return BadParam("value", "Missing required parameter 'value'.", "missing_required_parameter");
  }
  TP_ASSIGN_OR_RETURN(ConfigEntry entry, store.SetConfig(Key(call), *value, call.write));
  return Ok(EntryJson(entry));
}

Result Reset(Store& store) {
  TP_ASSIGN_OR_RETURN(ConfigSnapshot snapshot, store.ListConfig(""));
  json j = SnapshotJson(snapshot);
  j.erase("object");
  j["reset"] = true;
  return Ok(std::move(j));
}

Result Changes(const ConfigChanges& changes) {
  json list = json::array();
  for (const ConfigChange& c : changes.changes) {
    list.push_back({{"key", c.key},
                    {"value", c.value.value_or(json(nullptr))},
                    {"deleted", !c.value.has_value()},
                    {"revision", c.revision}});
  }
  return Ok({{"revision", changes.revision}, {"reset", false}, {"changes", std::move(list)}});
}

}  // namespace

Result WatchConfig(Store& store, int64_t since, absl::Duration timeout, absl::Duration slice,
                   const std::function<bool()>& stop) {
  const absl::Time deadline = absl::Now() + timeout;
  TP_ASSIGN_OR_RETURN(int64_t revision, store.ConfigRevision());
  // `since` ahead of the store: it was replaced; the watcher starts over from a snapshot.
  if (since > revision) return Reset(store);
  while (revision <= since) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration() || stop()) {
      return Changes({.revision = revision});
    }
    TP_ASSIGN_OR_RETURN(revision, store.WaitForConfigChange(since, std::min(left, slice)));
  }
  absl::StatusOr<ConfigChanges> changes = store.ConfigChangesSince(since);
  // The same race with a replaced store, seen later.
  if (absl::IsOutOfRange(changes.status())) return Reset(store);
  if (!changes.ok()) return changes.status();
  return Changes(*changes);
}

std::vector<Route> ConfigRoutes(const Services& services) {
  Store& store = services.store;
  return {
      {HttpMethod::kGet, "/admin/v1/config",
       [&store](const Call& call) -> Result {
         TP_ASSIGN_OR_RETURN(ConfigSnapshot snapshot,
                             store.ListConfig(call.request.QueryParam("prefix").value_or("")));
         return Ok(SnapshotJson(snapshot));
       }},
      {HttpMethod::kGet, "/admin/v1/config/{key...}",
       [&store](const Call& call) -> Result {
         TP_ASSIGN_OR_RETURN(ConfigEntry entry, store.GetConfig(Key(call)));
         return Ok(EntryJson(entry));
       }},
      {HttpMethod::kPut, "/admin/v1/config/{key...}",
       [&store](const Call& call) { return PutConfig(store, call); }},
      {HttpMethod::kDelete, "/admin/v1/config/{key...}",
       [&store](const Call& call) -> Result {
         TP_ASSIGN_OR_RETURN(int64_t revision, store.DeleteConfig(Key(call), call.write));
         return Ok({{"deleted", true}, {"revision", revision}});
       }},
  };
}

}  // namespace triplane::control::admin_internal
