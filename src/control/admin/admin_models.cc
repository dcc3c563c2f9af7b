// Admin API: models, their versions, and pulls (docs/api.md).

#include "common/status_macros.h"
#include "control/admin/admin_internal.h"

namespace triplane::control::admin_internal {

using common::HttpMethod;
using nlohmann::json;

namespace {

json ModelJson(const Model& model, const std::vector<ModelVersion>& versions) {
  json j = ToJson(model);
  j["versions"] = JsonArray(versions);
  return j;
}

Result ListModels(Store& store) {
  TP_ASSIGN_OR_RETURN(std::vector<Model> models, store.ListModels());
  TP_ASSIGN_OR_RETURN(std::vector<ModelVersion> versions, store.ListModelVersions(""));
  auto by_model = GroupBy(std::move(versions), &ModelVersion::model);
  json data = json::array();
  for (const Model& m : models) data.push_back(ModelJson(m, by_model[m.name]));
  return List(std::move(data));
}

Result GetModel(Store& store, std::string_view name) {
  TP_ASSIGN_OR_RETURN(Model model, store.GetModel(name));
  TP_ASSIGN_OR_RETURN(std::vector<ModelVersion> versions, store.ListModelVersions(name));
  return Ok(ModelJson(model, versions));
}

Result CreateModel(Store& store, const Call& call) {
  TP_ASSIGN_OR_RETURN(json body, ParseBody(call.request));
  const Fields fields(body);
  TP_ASSIGN_OR_RETURN(std::string name, fields.RequiredString("name"));
  TP_ASSIGN_OR_RETURN(std::optional<std::string> description, fields.String("description"));
  TP_RETURN_IF_ERROR(ValidateName("model", name));
  TP_ASSIGN_OR_RETURN(
      Model model,
      store.CreateModel({.name = name, .description = description.value_or("")}, call.write));
  return Ok(ModelJson(model, {}), 201);
}

Result AddVersion(ModelRepository& repository, const Call& call) {
  TP_ASSIGN_OR_RETURN(json body, ParseBody(call.request));
  const Fields fields(body);
  TP_ASSIGN_OR_RETURN(std::string path, fields.RequiredString("path"));
  TP_ASSIGN_OR_RETURN(std::optional<std::string> version, fields.String("version"));
  TP_ASSIGN_OR_RETURN(std::optional<std::string> description, fields.String("description"));
  TP_ASSIGN_OR_RETURN(ModelVersion added,
                      repository.AddFromPath({.model = PathParam(call, "model"),
                                              .version = version.value_or(""),
                                              .description = description.value_or(""),
                                              .path = path},
                                             call.write));
  return Ok(ToJson(added), 201);
}

Result StartPull(ModelRepository& repository, const Call& call) {
  TP_ASSIGN_OR_RETURN(json body, ParseBody(call.request));
  const Fields fields(body);
  PullRequest request;
  TP_ASSIGN_OR_RETURN(request.model, fields.RequiredString("model"));
  TP_ASSIGN_OR_RETURN(request.url, fields.RequiredString("url"));
  TP_ASSIGN_OR_RETURN(std::optional<std::string> version, fields.String("version"));
  TP_ASSIGN_OR_RETURN(std::optional<std::string> sha256, fields.String("sha256"));
  TP_ASSIGN_OR_RETURN(std::optional<std::string> description, fields.String("description"));
  request.version = version.value_or("");
  request.sha256 = sha256.value_or("");
  request.description = description.value_or("");
  TP_ASSIGN_OR_RETURN(PullJob job, repository.StartPull(request, call.write));
  return Ok(ToJson(job), 202);
}

Result ListPulls(const ModelRepository& repository) {
  return List(JsonArray(repository.ListPulls()));
}

Result CancelPull(ModelRepository& repository, std::string_view id) {
  TP_RETURN_IF_ERROR(repository.CancelPull(id));
  TP_ASSIGN_OR_RETURN(PullJob job, repository.GetPull(id));
  return Ok(ToJson(job));
}

}  // namespace

std::vector<Route> ModelRoutes(const Services& services) {
  Store& store = services.store;
  ModelRepository& repo = services.repository;
  return {
      {HttpMethod::kGet, "/admin/v1/models", [&store](const Call&) { return ListModels(store); }},
      {HttpMethod::kPost, "/admin/v1/models",
       [&store](const Call& call) { return CreateModel(store, call); }},
      {HttpMethod::kGet, "/admin/v1/models/{model}",
       [&store](const Call& call) { return GetModel(store, PathParam(call, "model")); }},
      {HttpMethod::kDelete, "/admin/v1/models/{model}",
       [&repo](const Call& call) -> Result {
         TP_RETURN_IF_ERROR(repo.DeleteModel(PathParam(call, "model"), call.write));
         return Deleted();
       }},
      {HttpMethod::kPost, "/admin/v1/models/{model}/versions",
       [&repo](const Call& call) { return AddVersion(repo, call); }},
      {HttpMethod::kGet, "/admin/v1/models/{model}/versions/{version}",
       [&store](const Call& call) -> Result {
         TP_ASSIGN_OR_RETURN(ModelVersion v, store.GetModelVersion(PathParam(call, "model"),
                                                                   PathParam(call, "version")));
         return Ok(ToJson(v));
       }},
      {HttpMethod::kDelete, "/admin/v1/models/{model}/versions/{version}",
       [&repo](const Call& call) -> Result {
         TP_RETURN_IF_ERROR(
             repo.DeleteVersion(PathParam(call, "model"), PathParam(call, "version"), call.write));
         return Deleted();
       }},
      {HttpMethod::kPost, "/admin/v1/pulls",
       [&repo](const Call& call) { return StartPull(repo, call); }},
      {HttpMethod::kGet, "/admin/v1/pulls", [&repo](const Call&) { return ListPulls(repo); }},
      {HttpMethod::kGet, "/admin/v1/pulls/{id}",
       [&repo](const Call& call) -> Result {
         TP_ASSIGN_OR_RETURN(PullJob job, repo.GetPull(PathParam(call, "id")));
         return Ok(ToJson(job));
       }},
      {HttpMethod::kDelete, "/admin/v1/pulls/{id}",
       [&repo](const Call& call) { return CancelPull(repo, PathParam(call, "id")); }},
  };
}

}  // namespace triplane::control::admin_internal
