#include "gateway/gateway.h"

#include <openssl/crypto.h>

#include <cmath>

#include "common/http_server.h"
#include "common/openai_error.h"
#include "common/sha256.h"
#include "common/strings.h"
#include "fmt/format.h"

namespace triplane::gateway {
namespace {

// The key a request presents: `Authorization: Bearer KEY`, else `x-api-key: KEY`.
std::string_view PresentedKey(const common::HttpRequest& request) {
  if (std::optional<std::string_view> auth = request.headers.Get("authorization")) {
    std::string_view value = *auth;
    constexpr std::string_view kBearer = "bearer ";
    if (value.size() > kBearer.size() && common::EqualsIgnoreCase(value.substr(0, kBearer.size()), kBearer)) {
      value.remove_prefix(kBearer.size());
      while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      return value;
    }
  }
  return request.headers.Get("x-api-key").value_or("");
}

// The caller's key, or the error to answer.
absl::StatusOr<const KeyInfo*> Authenticate(const GatewaySnapshot& snapshot,
                                            const common::HttpRequest& request) {
  const std::string_view presented = PresentedKey(request);
  if (presented.empty()) {
    return absl::UnauthenticatedError(
        "Missing API key: send `Authorization: Bearer KEY` or `x-api-key: KEY`.");
  }
  const std::string digest = common::Sha256Hex(presented);
  const auto it = snapshot.keys_by_digest.find(digest);
  // The map finds the candidate; the digests are compared again in constant time so
  // that no timing depends on how much of a guessed digest matches.
  if (it == snapshot.keys_by_digest.end() || it->first.size() != digest.size() ||
      CRYPTO_memcmp(it->first.data(), digest.data(), digest.size()) != 0) {
    return absl::UnauthenticatedError("Invalid API key (or it was revoked).");
  }
  const KeyInfo& key = it->second;
  if (key.expires_at && *key.expires_at <= absl::Now()) {
    return absl::UnauthenticatedError("This API key has expired.");
  }
  return &key;
}

bool MayUse(const KeyInfo& key, const std::string& model) {
  return key.admin || key.allowed_models.empty() || key.allowed_models.contains(model);
}

}  // namespace

int64_t CostMicros(const nlohmann::json& price, int64_t prompt, int64_t completion) {
  if (!price.is_object()) return 0;
  // A price per million tokens in currency units is micro-units per token.
  const double micros = static_cast<double>(prompt) * price.value("prompt_per_million", 0.0) +
                        static_cast<double>(completion) * price.value("completion_per_million", 0.0);
  return static_cast<int64_t>(std::llround(micros));
}

Gateway::Gateway(GatewayServices services) : options_(std::move(services)) {}

void Gateway::AddRoutes(common::HttpRouter& router) {
  for (auto [path, endpoint] : {std::pair{"/v1/chat/completions", "chat.completions"},
                                std::pair{"/v1/completions", "completions"},
                                std::pair{"/v1/embeddings", "embeddings"}}) {
    router.Add(common::HttpMethod::kPost, path,
               common::HttpHandler([this, endpoint](std::shared_ptr<common::Responder> responder) {
                 Handle(std::move(responder), endpoint);
               }));
  }
  router.Add(common::HttpMethod::kGet, "/v1/models",
             common::HttpSyncHandler([this](const common::HttpRequest& request) { return Models(request, {}); }));
  router.Add(common::HttpMethod::kGet, "/v1/models/{model...}",
             common::HttpSyncHandler([this](const common::HttpRequest& request) {
               return Models(request, request.PathParam("model"));
             }));
}

common::HttpResponse Gateway::Models(const common::HttpRequest& request, std::string_view one) const {
  std::shared_ptr<const GatewaySnapshot> snapshot = options_.state->Get();
  absl::StatusOr<const KeyInfo*> key = Authenticate(*snapshot, request);
  if (!key.ok()) return common::OpenAiErrorResponse(key.status());
  nlohmann::json data = nlohmann::json::array();
  for (const auto& [model, upstreams] : snapshot->models) {
    if (!MayUse(**key, model) || (!one.empty() && model != one)) continue;
    nlohmann::json object = {{"id", model}, {"object", "model"}, {"created", 0}, {"owned_by", "triplane"}};
    if (!one.empty()) return common::HttpResponse::Json(200, object);
    data.push_back(std::move(object));
  }
  if (!one.empty()) {
    return common::OpenAiErrorResponse(404, fmt::format("model '{}' does not exist", one),
                                       "model_not_found", "model");
  }
  return common::HttpResponse::Json(200, {{"object", "list"}, {"data", data}});
}

void Gateway::Handle(std::shared_ptr<common::Responder> responder, std::string endpoint) {
  std::shared_ptr<const GatewaySnapshot> snapshot = options_.state->Get();
  const common::HttpRequest& request = responder->request();
  absl::StatusOr<const KeyInfo*> key = Authenticate(*snapshot, request);
  if (!key.ok()) {
    responder->Send(common::OpenAiErrorResponse(key.status()));
    return;
  }
  nlohmann::json body = nlohmann::json::parse(request.body, nullptr, false);
  if (body.is_discarded() || !body.is_object()) {
    responder->Send(common::OpenAiErrorResponse(400, "the body is not a JSON object"));
    return;
  }
  const auto model_field = body.find("model");
  if (model_field == body.end() || !model_field->is_string() || model_field->get_ref<const std::string&>().empty()) {
    responder->Send(common::OpenAiErrorResponse(400, "'model' is required and must be a string", {}, "model"));
    return;
  }
  const std::string model = model_field->get<std::string>();
  const auto route = snapshot->models.find(model);
  if (route == snapshot->models.end()) {
    responder->Send(common::OpenAiErrorResponse(404, fmt::format("model '{}' does not exist", model),
                                                "model_not_found", "model"));
    return;
  }
  if (!MayUse(**key, model)) {
    responder->Send(common::OpenAiErrorResponse(
        403, fmt::format("this API key may not use model '{}'", model), "model_not_allowed", "model"));
    return;
  }
  UsageEvent usage{.request_id = request.request_id,
                   .time = absl::Now(),
                   .key_id = (*key)->id,
                   .team = (*key)->team,
                   .model = model,
                   .endpoint = std::move(endpoint)};
  const nlohmann::json price = snapshot->Config("prices." + model);
  auto sink = options_.usage;
  options_.proxy->Forward(
      std::move(responder),
      {.model = model,
       .body = std::move(body),
       .upstreams = route->second,
       .on_complete = [usage = std::move(usage), price, sink](const ForwardResult& result) mutable {
         usage.result = result;
         usage.instance = result.instance;
         usage.cost_micros = CostMicros(price, result.prompt_tokens, result.completion_tokens);
         if (sink) sink(std::move(usage));
       }});
}

}  // namespace triplane::gateway
