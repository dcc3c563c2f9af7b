#pragma once

// Shared pieces of the admin API's route files (admin_*.cc). Private to src/control/admin.
//
// A route is a plain function from an authenticated call to a JSON reply or an error
// status; admin_api.cc runs it on the worker pool after checking the key and turns the
// result into an HTTP response. Errors that concern one body field or query parameter
// carry its name (BadParam) so that the response's `param` names it.

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/http_types.h"
#include "control/monitor/metrics_history.h"
#include "control/repository/repository.h"
#include "control/store/store.h"
#include "nlohmann/json.hpp"

namespace triplane::control::admin_internal {

// A successful answer: HTTP status and JSON body.
struct Reply {
  int status = 200;
  nlohmann::json body;
  // When set, the answer is this text with this content type instead of `body` (CSV).
  std::string text;
  std::string content_type;
};
using Result = absl::StatusOr<Reply>;

// One authenticated request.
struct Call {
  const common::HttpRequest& request;
  WriteOptions write;  // actor: the caller's key id
};

// What the routes work on; owned by AdminApi, outliving every call.
struct Services {
  Store& store;
  ModelRepository& repository;
  std::function<void()> on_deployments_changed;  // may be empty
  std::function<nlohmann::json()> capacity;      // may be empty
  const MetricsHistory* metrics = nullptr;       // the monitor's series; may be null
  std::function<void(const std::string&)> wake;  // the autoscaler's Wake; may be empty
};

using RouteHandler = std::function<Result(const Call&)>;
struct Route {
  common::HttpMethod method;
  std::string pattern;
  RouteHandler handler;
};

// The routes of each area (admin_models.cc, admin_deployments.cc, admin_access.cc,
// admin_config.cc, admin_usage.cc, admin_backends.cc). The config watch is not among them: it waits on its own thread
// (admin_api.cc).
std::vector<Route> ModelRoutes(const Services& services);
std::vector<Route> DeploymentRoutes(const Services& services);
std::vector<Route> AccessRoutes(const Services& services);
std::vector<Route> ConfigRoutes(const Services& services);
std::vector<Route> UsageRoutes(const Services& services);
std::vector<Route> BackendRoutes(const Services& services);
std::vector<Route> RolloutRoutes(const Services& services);
std::vector<Route> MetricsRoutes(const Services& services);

// GET /admin/v1/config/watch after its parameters are checked: waits until the config
// revision is above `since` or `timeout` passes, in slices of at most `slice` so that
// `stop` (the API closing, the client gone) is noticed promptly. Blocks the caller.
Result WatchConfig(Store& store, int64_t since, absl::Duration timeout, absl::Duration slice,
                   const std::function<bool()>& stop);

// ---- Replies and errors ----

Reply Ok(nlohmann::json body, int status = 200);
// {"object": "list", "data": items}
Reply List(nlohmann::json items);
Reply Deleted();

// `items` grouped by a string member (e.g. &Instance::deployment), each group in order.
template <typename T>
std::map<std::string, std::vector<T>> GroupBy(std::vector<T> items, std::string T::*key) {
  std::map<std::string, std::vector<T>> groups;
  for (T& item : items) groups[item.*key].push_back(std::move(item));
  return groups;
}

// [ToJson(item), ...]
template <typename T>
nlohmann::json JsonArray(const std::vector<T>& items) {
  nlohmann::json data = nlohmann::json::array();
  for (const T& item : items) data.push_back(ToJson(item));
  return data;
}

// InvalidArgument about body field or query parameter `param` (e.g. "engine.threads"),
// with an OpenAI-style `code` ("invalid_type", "missing_required_parameter", …).
[[nodiscard]] absl::Status BadParam(std::string_view param, std::string_view message,
                                    std::string_view code = "invalid_value");
// The OpenAI-style response for `status` (docs/api.md, Admin API): the status code
// mapping and `param` from BadParam. Internal errors are logged and answered with a
// generic message. REQUIRES: !status.ok().
common::HttpResponse ErrorResponse(const absl::Status& status);

// RFC 3339 UTC, as store_types.cc's ToJson writes times.
std::string TimeText(absl::Time t);

// ---- Request bodies and queries ----

// The body as a JSON object; 400 "invalid_json" otherwise.
[[nodiscard]] absl::StatusOr<nlohmann::json> ParseBody(const common::HttpRequest& request);

// Typed access to the fields of a JSON object, naming the field in every error. A
// field that is absent or null yields nullopt; unknown fields are ignored.
class Fields {
 public:
  // `prefix` is prepended to field names in errors ("engine." → "engine.threads").
  explicit Fields(const nlohmann::json& object, std::string prefix = "")
      : object_(object), prefix_(std::move(prefix)) {}

  [[nodiscard]] absl::StatusOr<std::optional<std::string>> String(std::string_view name) const;
  // Non-empty; BadParam when absent.
  [[nodiscard]] absl::StatusOr<std::string> RequiredString(std::string_view name) const;
  // An integer within [min, max].
  [[nodiscard]] absl::StatusOr<std::optional<int64_t>> Int(std::string_view name, int64_t min,
                                                           int64_t max) const;
  [[nodiscard]] absl::StatusOr<std::optional<std::vector<std::string>>> StringArray(
      std::string_view name) const;
  // An RFC 3339 time string.
  [[nodiscard]] absl::StatusOr<std::optional<absl::Time>> Time(std::string_view name) const;
  // A nested object, or null when absent.
  [[nodiscard]] absl::StatusOr<const nlohmann::json*> Object(std::string_view name) const;
  // Any value, or null when absent (a JSON null counts as present here).
  const nlohmann::json* Raw(std::string_view name) const;

  std::string Param(std::string_view name) const { return prefix_ + std::string(name); }

 private:
  const nlohmann::json* Present(std::string_view name) const;

  const nlohmann::json& object_;
  std::string prefix_;
};

// Path parameter `name` of the matched route, percent-decoded.
std::string PathParam(const Call& call, std::string_view name);

// Query parameter `name` as an integer within [min, max]; nullopt when absent.
[[nodiscard]] absl::StatusOr<std::optional<int64_t>> QueryInt(const common::HttpRequest& request,
                                                              std::string_view name, int64_t min,
                                                              int64_t max);

}  // namespace triplane::control::admin_internal
