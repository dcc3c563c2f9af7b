// Admin API: external OpenAI-compatible backends (docs/api.md). A backend's API key goes
// in and never comes out: answers carry "has_api_key" only.

#include "common/status_macros.h"
#include "control/admin/admin_internal.h"

namespace triplane::control::admin_internal {

using common::HttpMethod;
using nlohmann::json;

namespace {

// PUT /admin/v1/backends/{name}: creates or replaces. An absent api_key keeps the stored
// one (so that changing the URL does not mean handing the secret around again); "" clears it.
Result PutBackend(Store& store, const ModelRepository& repository, const Call& call) {
  TP_ASSIGN_OR_RETURN(json body, ParseBody(call.request));
  const Fields fields(body);
  Backend backend{.name = PathParam(call, "name")};
  TP_ASSIGN_OR_RETURN(backend.model, fields.RequiredString("model"));
  TP_ASSIGN_OR_RETURN(backend.base_url, fields.RequiredString("base_url"));
  TP_ASSIGN_OR_RETURN(std::optional<std::string> remote_model, fields.String("remote_model"));
  backend.remote_model = remote_model.value_or("");
  TP_ASSIGN_OR_RETURN(std::optional<std::string> api_key, fields.String("api_key"));
  if (api_key.has_value()) {
    if (api_key->size() > 4096) return BadParam("api_key", "'api_key' is longer than 4096 bytes.");
    for (char c : *api_key) {
      // It goes into an HTTP header: no control characters, no line breaks.
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
        return BadParam("api_key", "'api_key' must not contain control characters.");
      }
    }
    backend.api_key = *api_key;
  } else {
    TP_ASSIGN_OR_RETURN(std::vector<Backend> existing, store.ListBackends());
    for (const Backend& b : existing) {
      if (b.name == backend.name) backend.api_key = b.api_key;
    }
  }
  const absl::Status valid = ValidateBackendUrl(backend.base_url);
  if (!valid.ok()) return BadParam("base_url", std::string(valid.message()));
  // A backend at this server's own address would forward each request to itself.
  if (const auto url = common::ParseHttpUrl(backend.base_url);
      url && repository.IsOwnAddress(url->host, url->port)) {
    return BadParam("base_url",
                    "'base_url' points at this server itself; give the backend's own address.");
  }
  TP_ASSIGN_OR_RETURN(Backend stored, store.PutBackend(backend, call.write));
  return Ok(ToJson(stored));
}

}  // namespace

std::vector<Route> BackendRoutes(const Services& services) {
  Store& store = services.store;
  const ModelRepository& repository = services.repository;
  return {
      {HttpMethod::kGet, "/admin/v1/backends",
       [&store](const Call&) -> Result {
         TP_ASSIGN_OR_RETURN(std::vector<Backend> backends, store.ListBackends());
         return List(JsonArray(backends));  // ToJson(Backend) leaves the key out
       }},
      {HttpMethod::kPut, "/admin/v1/backends/{name}",
       [&store, &repository](const Call& call) { return PutBackend(store, repository, call); }},
      {HttpMethod::kDelete, "/admin/v1/backends/{name}",
       [&store](const Call& call) -> Result {
         TP_RETURN_IF_ERROR(store.DeleteBackend(PathParam(call, "name"), call.write));
         return Deleted();
       }},
  };
}

}  // namespace triplane::control::admin_internal
