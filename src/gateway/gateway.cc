#include "gateway/gateway.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <iterator>

#include "common/http_server.h"
#include "common/json.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "common/openai_error.h"
#include "common/sha256.h"
#include "common/strings.h"
#include "fmt/format.h"
#include "spdlog/spdlog.h"

namespace triplane::gateway {
namespace {

// The caller's key, or the error to answer.
absl::StatusOr<const KeyInfo*> Authenticate(const GatewaySnapshot& snapshot,
                                            const common::HttpRequest& request) {
  const std::string_view presented = common::PresentedApiKey(request);
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

LimitPolicy PolicyFrom(const nlohmann::json& json) {
  LimitPolicy policy;
  if (!json.is_object()) return policy;
  auto read = [&](const char* name) {
    const auto it = json.find(name);
    return it != json.end() && it->is_number_integer() ? std::max<int64_t>(0, it->get<int64_t>()) : 0;
  };
  policy.requests_per_minute = read("requests_per_minute");
  policy.tokens_per_minute = read("tokens_per_minute");
  policy.tokens_per_day = read("tokens_per_day");
  policy.tokens_per_month = read("tokens_per_month");
  return policy;
}

bool Unlimited(const LimitPolicy& p) {
  return p.requests_per_minute == 0 && p.tokens_per_minute == 0 && p.tokens_per_day == 0 &&
         p.tokens_per_month == 0;
}

// 429 (or 503 / 400) for a refused reservation, with Retry-After and x-ratelimit-*.
common::HttpResponse Refusal(const LimitDecision& decision) {
  common::HttpResponse response = common::OpenAiErrorResponse(
      decision.retryable ? 429 : 400, decision.reason,
      decision.retryable ? "rate_limit_exceeded" : "request_too_large");
  if (decision.retryable) {
    const int64_t seconds = std::max<int64_t>(1, absl::ToInt64Seconds(absl::Ceil(decision.retry_after, absl::Seconds(1))));
    response.headers.Set("retry-after", std::to_string(seconds));
  }
  return response;
}

void AddQuotaHeaders(const LimitDecision& decision, common::HttpHeaders& headers) {
  auto add = [&](const std::optional<MinuteQuota>& quota, std::string_view what) {
    if (!quota) return;
    headers.Set(fmt::format("x-ratelimit-limit-{}", what), std::to_string(quota->limit));
    headers.Set(fmt::format("x-ratelimit-remaining-{}", what), std::to_string(quota->remaining));
    headers.Set(fmt::format("x-ratelimit-reset-{}", what),
                fmt::format("{}s", absl::ToInt64Seconds(absl::Ceil(quota->reset, absl::Seconds(1)))));
  };
  add(decision.requests, "requests");
  add(decision.tokens, "tokens");
}

// The gateway's own metrics (docs/api.md); registered once per process.
struct GatewayMetrics {
  common::Family<common::Counter>& requests;
  common::Histogram& admission;
  common::Family<common::Counter>& rate_limited;
  common::Counter& upstream_errors;
  common::Gauge& in_flight;

  static GatewayMetrics& Get() {
    static GatewayMetrics metrics{
        common::MetricsRegistry::Default().AddCounter(
            "triplane_gateway_requests_total", "Public API requests by model and status.",
            {"model", "status"}),
        common::MetricsRegistry::Default()
            .AddHistogram("triplane_gateway_admission_seconds",
                          "Time the gateway spends on a request before forwarding it: key, "
                          "model and limits checks (the upstream's time is not included).",
                          {}, {0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01})
            .Get(),
        common::MetricsRegistry::Default().AddCounter(
            "triplane_gateway_rate_limited_total", "Requests refused by a limit, by limit.",
            {"limit"}),
        common::MetricsRegistry::Default()
            .AddCounter("triplane_gateway_upstream_errors_total",
                        "Requests that failed at an engine (502/503 after retries, or mid-answer).")
            .Get(),
        common::MetricsRegistry::Default()
            .AddGauge("triplane_gateway_requests_in_flight", "Requests being forwarded now.")
            .Get(),
    };
    return metrics;
  }
};

// A logfmt value: bare when it is a plain word, else quoted with \" and \\ escaped.
std::string LogValue(std::string_view value) {
  const bool plain = !value.empty() && std::all_of(value.begin(), value.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || std::string_view("._-/:").find(c) != std::string_view::npos;
  });
  if (plain) return std::string(value);
  std::string quoted = "\"";
  for (char c : value) {
    if (c == '"' || c == '\\') quoted += '\\';
    quoted += static_cast<unsigned char>(c) < 0x20 ? ' ' : c;
  }
  return quoted + "\"";
}

// The request log: one logfmt line per public API request, answered or refused. It
// names the key by id and never carries the key, the prompt or the completion.
void LogRequest(const std::string& request_id, std::string_view endpoint, std::string_view key_id,
                std::string_view team, std::string_view model, int status, const ForwardResult* result,
                int64_t cost_micros, std::string_view error) {
  std::string line = fmt::format("request endpoint={} key={} team={} model={} status={}", LogValue(endpoint),
                                 LogValue(key_id.empty() ? "-" : key_id), LogValue(team.empty() ? "-" : team),
                                 LogValue(model), status);
  if (result != nullptr) {
    fmt::format_to(std::back_inserter(line),
                   " instance={} stream={} prompt_tokens={} completion_tokens={} cached_tokens={} "
                   "ttft_ms={:.2f} latency_ms={:.2f} cost_micros={}",
                   LogValue(result->instance.empty() ? "-" : result->instance), result->stream,
                   result->prompt_tokens, result->completion_tokens, result->cached_tokens,
                   result->ttft_seconds * 1e3, result->latency_seconds * 1e3, cost_micros);
  }
  if (!error.empty()) line += " error=" + LogValue(error.substr(0, 512));
  common::RequestLog(request_id).Info("{}", line);
}

// The first kPrefixBytes of the prompt's text: requests that share them share a prefix
// of tokens too, and so the instance's prefix cache.
constexpr size_t kPrefixBytes = 1024;

void AppendText(const nlohmann::json& value, std::string& out) {
  if (out.size() >= kPrefixBytes) return;
  if (value.is_string()) {
    out.append(value.get_ref<const std::string&>(), 0, kPrefixBytes - out.size());
  } else if (value.is_array() || value.is_object()) {
    for (const nlohmann::json& item : value) AppendText(item, out);
  }
}

RouteHints HintsFor(const GatewaySnapshot& snapshot, const common::HttpRequest& request,
                    const nlohmann::json& body, const std::string& model) {
  RouteHints hints;
  if (auto session = request.headers.Get("x-session-id")) hints.session = std::string(session->substr(0, 256));
  if (auto messages = body.find("messages"); messages != body.end()) {
    AppendText(*messages, hints.prefix);
  } else if (auto prompt = body.find("prompt"); prompt != body.end()) {
    AppendText(*prompt, hints.prefix);
  }
  // A canary's split; config routing.MODEL {"weights": {...}} overrides it.
  if (const auto canary = snapshot.weights.find(model); canary != snapshot.weights.end()) {
    hints.version_weights = canary->second;
  }
  const nlohmann::json& routing = snapshot.Config("routing." + model);
  if (routing.is_object() && routing.contains("weights") && routing["weights"].is_object()) {
    hints.version_weights.clear();
    for (const auto& [version, weight] : routing["weights"].items()) {
      if (weight.is_number() && weight.get<double>() > 0) hints.version_weights[version] = weight.get<double>();
    }
  }
  return hints;
}

}  // namespace

std::vector<LimitSubject> LimitsFor(const GatewaySnapshot& snapshot, const KeyInfo& key) {
  std::vector<LimitSubject> subjects;
  const nlohmann::json& own = snapshot.Config("limits.key." + key.id);
  LimitPolicy key_policy = PolicyFrom(own.is_null() ? snapshot.Config("limits.default") : own);
  if (!Unlimited(key_policy)) subjects.push_back({.scope = "key:" + key.id, .policy = key_policy});
  if (!key.team.empty()) {
    LimitPolicy team_policy = PolicyFrom(snapshot.Config("limits.team." + key.team));
    if (!Unlimited(team_policy)) subjects.push_back({.scope = "team:" + key.team, .policy = team_policy});
  }
  return subjects;
}

int64_t CostMicros(const nlohmann::json& price, int64_t prompt, int64_t completion) {
  if (!price.is_object()) return 0;
  // Config values are free-form: a price that is not a number counts as 0 (value() would
  // throw on "free" after the request was answered).
  auto per_million = [&](const char* name) {
    const auto it = price.find(name);
    return it != price.end() && it->is_number() ? it->get<double>() : 0.0;
  };
  // A price per million tokens in currency units is micro-units per token.
  const double micros = static_cast<double>(prompt) * per_million("prompt_per_million") +
                        static_cast<double>(completion) * per_million("completion_per_million");
  return static_cast<int64_t>(std::llround(micros));
}

Gateway::Gateway(GatewayServices services) : options_(std::move(services)) { GatewayMetrics::Get(); }

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
  const absl::Time received = absl::Now();
  GatewayMetrics& metrics = GatewayMetrics::Get();
  std::shared_ptr<const GatewaySnapshot> snapshot = options_.state->Get();
  const common::HttpRequest& request = responder->request();
  std::string model_label = "-";  // until the body names a model
  const KeyInfo* caller = nullptr;
  // Answers without forwarding (401, 403, 404, 429, …), counted and logged like forwarded ones.
  auto refuse = [&](common::HttpResponse response) {
    metrics.requests.WithLabels({model_label, std::to_string(response.status)}).Inc();
    const nlohmann::json error = nlohmann::json::parse(response.body, nullptr, false);
    LogRequest(request.request_id, endpoint, caller ? caller->id : "", caller ? caller->team : "", model_label,
               response.status, nullptr, 0,
               error.is_object() ? error.value("error", nlohmann::json::object()).value("message", "") : std::string());
    responder->Send(std::move(response));
  };
  absl::StatusOr<const KeyInfo*> key = Authenticate(*snapshot, request);
  if (!key.ok()) {
    refuse(common::OpenAiErrorResponse(key.status()));
    return;
  }
  caller = *key;
  // Depth-bounded: a body nested 10,000 levels deep is refused here, not built and forwarded.
  absl::StatusOr<nlohmann::json> parsed = common::ParseJson(request.body);
  if (!parsed.ok() || !parsed->is_object()) {
    refuse(common::OpenAiErrorResponse(
        400, parsed.ok() ? "the body is not a JSON object"
                         : fmt::format("the body is not a JSON object: {}", common::ToStd(parsed.status().message()))));
    return;
  }
  nlohmann::json body = *std::move(parsed);
  const auto model_field = body.find("model");
  if (model_field == body.end() || !model_field->is_string() || model_field->get_ref<const std::string&>().empty()) {
    refuse(common::OpenAiErrorResponse(400, "'model' is required and must be a string", {}, "model"));
    return;
  }
  const std::string model = model_field->get<std::string>();
  const auto route = snapshot->models.find(model);
  if (route == snapshot->models.end()) {
    refuse(common::OpenAiErrorResponse(404, fmt::format("model '{}' does not exist", model),
                                                "model_not_found", "model"));
    return;
  }
  model_label = model;  // a deployed model: label values stay few
  if (!MayUse(**key, model)) {
    refuse(common::OpenAiErrorResponse(
        403, fmt::format("this API key may not use model '{}'", model), "model_not_allowed", "model"));
    return;
  }
  // Scaled to zero: wait for an instance rather than fail (handled afresh once one is up).
  if (route->second.empty() && options_.holder != nullptr) {
    if (const auto wake = snapshot->wake.find(model); wake != snapshot->wake.end()) {
      options_.holder->Hold(model, wake->second, responder,
                            [this, responder, endpoint] { Handle(responder, endpoint); });
      return;
    }
  }
  // Limits: reserve an upper bound of the tokens now, settle with the real usage after.
  std::shared_ptr<Reservation> reservation;
  common::HttpHeaders quota_headers;
  if (options_.limits != nullptr) {
    std::vector<LimitSubject> subjects = LimitsFor(*snapshot, **key);
    if (!subjects.empty()) {
      const int64_t default_max = snapshot->Config("limits.default_max_tokens").is_number_integer()
                                      ? snapshot->Config("limits.default_max_tokens").get<int64_t>()
                                      : 4096;
      const int64_t tokens = endpoint == "embeddings"
                                 ? TokenUpperBound(body, false, 0)
                                 : TokenUpperBound(body, endpoint == "chat.completions", default_max);
      reservation = std::make_shared<Reservation>();
      absl::StatusOr<LimitDecision> decision =
          options_.limits->Reserve(subjects, tokens, absl::Now(), reservation.get());
      if (!decision.ok()) {
        refuse(common::OpenAiErrorResponse(
            503, fmt::format("limits cannot be checked right now: {}", std::string(decision.status().message()))));
        return;
      }
      if (!decision->allowed) {
        metrics.rate_limited.WithLabels({decision->violated.substr(0, decision->violated.find(' '))}).Inc();
        common::HttpResponse refusal = Refusal(*decision);
        AddQuotaHeaders(*decision, refusal.headers);
        refuse(std::move(refusal));
        return;
      }
      AddQuotaHeaders(*decision, quota_headers);
    }
  }
  UsageEvent usage{.request_id = request.request_id,
                   .time = absl::Now(),
                   .key_id = (*key)->id,
                   .team = (*key)->team,
                   .model = model,
                   .endpoint = std::move(endpoint)};
  const nlohmann::json price = snapshot->Config("prices." + model);
  auto sink = options_.usage;
  RouteHints hints = HintsFor(*snapshot, request, body, model);
  metrics.in_flight.Inc();
  metrics.admission.Observe(absl::ToDoubleSeconds(absl::Now() - received));
  options_.proxy->Forward(
      std::move(responder),
      {.model = model,
       .body = std::move(body),
       .upstreams = route->second,
       .extra_headers = std::move(quota_headers),
       .hints = std::move(hints),
       .on_complete = [usage = std::move(usage), price, sink, reservation, &metrics,
                       limits = options_.limits](const ForwardResult& result) mutable {
         metrics.in_flight.Dec();
         metrics.requests.WithLabels({usage.model, std::to_string(result.status)}).Inc();
         if (result.status == 502 || (result.status == 503 && !result.error.empty()) ||
             (!result.error.empty() && !result.instance.empty())) {
           metrics.upstream_errors.Inc();
         }
         if (reservation != nullptr) {
           // Without a usage report, a request that reached an engine keeps its whole
           // reservation (it may have generated); one that did not is refunded.
           const int64_t used = result.usage_seen ? result.prompt_tokens + result.completion_tokens
                                : result.instance.empty() ? 0
                                                          : reservation->tokens;
           if (absl::Status settled = limits->Settle(*reservation, used); !settled.ok()) {
             spdlog::warn("limits: cannot settle request {}: {}", usage.request_id,
                          std::string(settled.message()));
           }
         }
         usage.result = result;
         usage.instance = result.instance;
         usage.cost_micros = CostMicros(price, result.prompt_tokens, result.completion_tokens);
         LogRequest(usage.request_id, usage.endpoint, usage.key_id, usage.team, usage.model, result.status,
                    &result, usage.cost_micros, result.error);
         if (sink) sink(std::move(usage));
       }});
}

}  // namespace triplane::gateway
