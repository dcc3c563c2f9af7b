#include "engine/server/engine_server.h"

#include <cstring>
#include <ctime>
#include <random>
#include <utility>

#include "absl/strings/escaping.h"
#include "common/http_server.h"
#include "common/json.h"
#include "common/openai_error.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "engine/server/api_error.h"
#include "engine/server/generation_exchange.h"
#include "engine/server/openai_response.h"
#include "fmt/format.h"
#include "spdlog/spdlog.h"

namespace triplane::engine::server {
namespace {

using common::HttpMethod;
using common::HttpResponse;
using common::Responder;
using nlohmann::json;

std::string_view StateName(ServerState state) {
  switch (state) {
    case ServerState::kStarting:
      return "starting";
    case ServerState::kReady:
      return "ready";
    case ServerState::kDraining:
      return "draining";
  }
  return "unknown";
}

// Text → token ids. Control tokens written in the text are parsed (a raw prompt or a
// rendered chat template speaks in them, as with vLLM and llama.cpp's server).
std::vector<int32_t> Encode(const Tokenizer& tokenizer, std::string_view text, bool add_special) {
  return tokenizer.Encode(text, {.add_special = add_special, .parse_special = true});
}

absl::StatusOr<std::string> RenderChat(const ServingModel& model, const json& messages,
                                       const json& kwargs, bool add_generation_prompt) {
  absl::StatusOr<std::string> text = model.chat_template->Render(
      messages, {.add_generation_prompt = add_generation_prompt, .extra_context = kwargs});
  if (!text.ok()) {
    return InvalidParam("messages", "invalid_value",
                        fmt::format("The chat template failed on these messages: {}",
                                    common::ToStd(text.status().message())));
  }
  return text;
}

absl::Status PromptTooLong(std::string_view param, int64_t tokens, int64_t ctx) {
  return InvalidParam(
      param, "context_length_exceeded",
      fmt::format("This model's maximum context length is {} tokens. However, your {} "
                  "resulted in {} tokens.",
                  ctx, param == "messages" ? "messages" : "prompt", tokens));
}

// Every choice of a prepared generation request, or the error to answer.
struct PreparedGeneration {
  ExchangeSpec spec;
  std::vector<ChoiceSpec> choices;
};

uint64_t RandomSeed() {
  thread_local std::mt19937_64 rng(std::random_device{}());
  return rng();
}

absl::StatusOr<PreparedGeneration> PrepareGeneration(
    const ServingModel& model, const CompletionRequest& request,
    std::chrono::steady_clock::time_point arrival) {
  const Tokenizer& tokenizer = *model.tokenizer;
  const int64_t ctx = model.engine->config().ctx;
  const GenerationParams& params = request.params;
  std::vector<std::vector<int32_t>> prompts;
  if (request.endpoint == Endpoint::kCompletions) {
    for (const PromptInput& prompt : request.prompts) {
      prompts.push_back(prompt.is_tokens
                            ? prompt.tokens
                            : Encode(tokenizer, prompt.text, request.add_special_tokens));
    }
  } else {
    TP_ASSIGN_OR_RETURN(std::string text,
                        RenderChat(model, request.messages, request.chat_template_kwargs,
                                   request.add_generation_prompt));
    prompts.push_back(Encode(tokenizer, text, request.add_special_tokens));
  }
  const std::string_view param = request.endpoint == Endpoint::kCompletions ? "prompt" : "messages";
  if (absl::Status s = ValidateSamplingParams(params.sampling, tokenizer.vocab_size()); !s.ok()) {
    return InvalidParam("", "invalid_value", common::ToStd(s.message()));
  }
  PreparedGeneration prepared;
  prepared.spec = {.endpoint = request.endpoint,
                   .stream = params.stream,
                   .include_usage = params.include_usage,
                   .top_logprobs = params.top_logprobs,
                   .stop = params.stop,
                   .stop_token_ids = params.stop_token_ids,
                   .ignore_eos = params.ignore_eos,
                   .arrival = arrival};
  for (size_t p = 0; p < prompts.size(); ++p) {
    const auto length = static_cast<int64_t>(prompts[p].size());
    if (length == 0) {
      return InvalidParam(param, "invalid_value", "The prompt has no tokens.");
    }
    if (length >= ctx) return PromptTooLong(param, length, ctx);
    int64_t max_tokens = ctx - length;
    if (params.max_tokens.has_value()) {
      if (length + *params.max_tokens > ctx) {
        return InvalidParam(
            request.endpoint == Endpoint::kCompletions ? "max_tokens" : "max_completion_tokens",
            "context_length_exceeded",
            fmt::format("This model's maximum context length is {} tokens. However, you "
                        "requested {} tokens ({} in the {}, {} for the completion).",
                        ctx, length + *params.max_tokens, length, param, *params.max_tokens));
      }
      max_tokens = *params.max_tokens;
    } else if (request.endpoint == Endpoint::kCompletions) {
      max_tokens = std::min<int64_t>(16, max_tokens);  // OpenAI's default for completions
    }
    prepared.spec.prompt_tokens.push_back(length);
    for (int j = 0; j < params.n; ++j) {
      GenerationRequest engine_request{
          .prompt = prompts[p],
          .sampling = params.sampling,
          .max_tokens = max_tokens,
          .ignore_eos = params.ignore_eos,
          .stop_token_ids = params.stop_token_ids,
          .top_logprobs = params.top_logprobs,
      };
      // Choices of one prompt differ; a given seed makes them reproducible.
      engine_request.sampling.seed =
          params.seed_given ? params.sampling.seed + static_cast<uint64_t>(j) : RandomSeed();
      prepared.choices.push_back(
          {.request = std::move(engine_request), .prompt_index = static_cast<int>(p)});
    }
  }
  return prepared;
}

std::string Base64Floats(const std::vector<float>& values) {
  std::string bytes(values.size() * sizeof(float), '\0');
  std::memcpy(bytes.data(), values.data(), bytes.size());  // little-endian hosts only (x86, arm64)
  return absl::Base64Escape(absl::string_view(bytes.data(), bytes.size()));
}

}  // namespace

EngineServer::EngineServer(EngineServerOptions options)
    : options_(std::move(options)),
      created_(static_cast<int64_t>(std::time(nullptr))),
      registry_(options_.metrics != nullptr ? *options_.metrics
                                            : common::MetricsRegistry::Default()),
      metrics_(registry_),
      cancel_pool_(1, "engine-cancel"),
      workers_(std::max(1, options_.worker_threads), "engine-api") {}

EngineServer::~EngineServer() {
  workers_.Shutdown();
  engine_closing_.store(true);
  cancel_pool_.Shutdown();
  metrics_.AttachEngine(nullptr);
  serving_ptr_.store(nullptr);
  serving_.reset();
}

void EngineServer::Attach(std::unique_ptr<ServingModel> model) {
  serving_ = std::move(model);
  metrics_.AttachEngine(serving_->engine.get());
  serving_ptr_.store(serving_.get(), std::memory_order_release);
}

void EngineServer::StartDraining() { draining_.store(true); }

ServerState EngineServer::state() const {
  if (draining_.load()) return ServerState::kDraining;
  return serving() != nullptr ? ServerState::kReady : ServerState::kStarting;
}

int64_t EngineServer::in_flight() const {
  absl::MutexLock lock(&mu_);
  return in_flight_;
}

void EngineServer::BeginRequest() {
  absl::MutexLock lock(&mu_);
  ++in_flight_;
}

void EngineServer::EndRequest() {
  absl::MutexLock lock(&mu_);
  --in_flight_;
}

bool EngineServer::WaitIdle(std::chrono::milliseconds timeout) {
  absl::MutexLock lock(&mu_);
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return in_flight_ == 0; };
  return mu_.AwaitWithTimeout(absl::Condition(&idle), absl::Milliseconds(timeout.count()));
}

absl::Status EngineServer::CheckModel(const std::string& requested) const {
  if (requested.empty() || requested == options_.served_model_name) return absl::OkStatus();
  return ApiError(404, "model_not_found",
                  fmt::format("The model '{}' does not exist; this engine serves '{}'.", requested,
                              options_.served_model_name),
                  "model");
}

ProtocolLimits EngineServer::Limits(const ServingModel& model) const {
  ProtocolLimits limits = options_.limits;
  limits.vocab_size = model.tokenizer->vocab_size();
  return limits;
}

nlohmann::json EngineServer::ModelJson() const {
  json model = {{"id", options_.served_model_name},
                {"object", "model"},
                {"created", created_},
                {"owned_by", "triplane"}};
  if (const ServingModel* serving = this->serving())
    model["max_model_len"] = serving->engine->config().ctx;
  return model;
}

bool EngineServer::Authorized(const common::HttpRequest& request) const {
  return options_.api_key.empty() || common::PresentsApiKey(request, options_.api_key);
}

absl::Status EngineServer::Unauthorized() {
  return ApiError(401, "invalid_api_key",
                  "Missing or wrong API key: send `Authorization: Bearer KEY` or `x-api-key: KEY`.");
}

void EngineServer::Dispatch(
    std::shared_ptr<Responder> responder,
    std::function<void(std::shared_ptr<Responder>, const ServingModel&)> work) {
  if (!Authorized(responder->request())) {
    responder->Send(ErrorResponse(Unauthorized()));
    return;
  }
  const ServerState now = state();
  if (now != ServerState::kReady) {
    responder->Send(ErrorResponse(
        now == ServerState::kStarting
            ? ApiError(503, "model_loading", "The model is still loading; retry shortly.")
            : ApiError(503, "draining", "The engine is shutting down and takes no new requests.")));
    return;
  }
  const ServingModel& model = *serving();
  BeginRequest();
  auto task = [responder, &model, work = std::move(work)]() mutable {
    work(std::move(responder), model);
  };
  if (!workers_.Submit(std::move(task))) {  // the workers are stopping: the task was dropped
    responder->Send(ErrorResponse(ApiError(503, "draining", "The engine is shutting down.")));
    EndRequest();
  }
}

void EngineServer::AddRoutes(common::HttpRouter& router) {
  router.Add(HttpMethod::kGet, "/health",
             common::HttpSyncHandler([this](const common::HttpRequest&) {
               const ServerState now = state();
               return HttpResponse::Json(now == ServerState::kReady ? 200 : 503,
                                         {{"status", StateName(now)}});
             }));
  common::AddMetricsRoute(router, registry_);
  router.Add(
      HttpMethod::kGet, "/v1/models", common::HttpSyncHandler([this](const common::HttpRequest& r) {
        if (!Authorized(r)) return ErrorResponse(Unauthorized());
        return HttpResponse::Json(200, {{"object", "list"}, {"data", json::array({ModelJson()})}});
      }));
  router.Add(HttpMethod::kGet, "/v1/models/{model}",
             common::HttpSyncHandler([this](const common::HttpRequest& r) {
               if (!Authorized(r)) return ErrorResponse(Unauthorized());
               const std::string requested(r.PathParam("model"));
               if (requested != options_.served_model_name)
                 return ErrorResponse(CheckModel(requested));
               return HttpResponse::Json(200, ModelJson());
             }));
  auto post = [&](std::string_view path, auto handler) {
    router.Add(HttpMethod::kPost, path,
               common::HttpHandler([this, handler](std::shared_ptr<Responder> responder) {
                 Dispatch(std::move(responder),
                          [this, handler](std::shared_ptr<Responder> r, const ServingModel& m) {
                            (this->*handler)(std::move(r), m);
                          });
               }));
  };
  router.Add(HttpMethod::kPost, "/v1/completions",
             common::HttpHandler([this](std::shared_ptr<Responder> responder) {
               const auto arrival = std::chrono::steady_clock::now();
               Dispatch(std::move(responder),
                        [this, arrival](std::shared_ptr<Responder> r, const ServingModel& m) {
                          HandleGeneration(std::move(r), m, Endpoint::kCompletions, arrival);
                        });
             }));
  router.Add(HttpMethod::kPost, "/v1/chat/completions",
             common::HttpHandler([this](std::shared_ptr<Responder> responder) {
               const auto arrival = std::chrono::steady_clock::now();
               Dispatch(std::move(responder),
                        [this, arrival](std::shared_ptr<Responder> r, const ServingModel& m) {
                          HandleGeneration(std::move(r), m, Endpoint::kChatCompletions, arrival);
                        });
             }));
  post("/v1/embeddings", &EngineServer::HandleEmbeddings);
  post("/tokenize", &EngineServer::HandleTokenize);
  post("/detokenize", &EngineServer::HandleDetokenize);
}

void EngineServer::HandleGeneration(std::shared_ptr<Responder> responder, const ServingModel& model,
                                    Endpoint endpoint,
                                    std::chrono::steady_clock::time_point arrival) {
  auto prepare = [&]() -> absl::StatusOr<PreparedGeneration> {
    TP_ASSIGN_OR_RETURN(json body, ParseRequestBody(responder->request().body));
    TP_ASSIGN_OR_RETURN(CompletionRequest request,
                        ParseCompletionRequest(body, endpoint, Limits(model)));
    TP_RETURN_IF_ERROR(CheckModel(request.params.model));
    return PrepareGeneration(model, request, arrival);
  };
  absl::StatusOr<PreparedGeneration> prepared = prepare();
  if (!prepared.ok()) {
    responder->Send(ErrorResponse(prepared.status()));
    EndRequest();
    return;
  }
  GenerationContext context{.tokenizer = model.tokenizer.get(),
                            .engine = model.engine.get(),
                            .metrics = &metrics_,
                            .cancel_pool = &cancel_pool_,
                            .engine_closing = &engine_closing_,
                            .model_name = options_.served_model_name,
                            .on_done = [this] { EndRequest(); }};
  GenerationExchange::Start(std::move(context), std::move(responder), std::move(prepared->spec),
                            std::move(prepared->choices));
}

void EngineServer::HandleEmbeddings(std::shared_ptr<Responder> responder,
                                    const ServingModel& model) {
  auto run = [&]() -> absl::StatusOr<json> {
    TP_ASSIGN_OR_RETURN(json body, ParseRequestBody(responder->request().body));
    TP_ASSIGN_OR_RETURN(EmbeddingRequest request, ParseEmbeddingRequest(body, Limits(model)));
    TP_RETURN_IF_ERROR(CheckModel(request.model));
    const int64_t width = model.model->config().embedding;
    if (request.dimensions.has_value() && *request.dimensions != width) {
      return InvalidParam("dimensions", "invalid_value",
                          fmt::format("This model's embeddings have {} dimensions; got {}.", width,
                                      *request.dimensions));
    }
    const int64_t ctx = model.engine->config().ctx;
    std::vector<std::vector<int32_t>> inputs;
    for (size_t i = 0; i < request.inputs.size(); ++i) {
      const PromptInput& input = request.inputs[i];
      inputs.push_back(input.is_tokens ? input.tokens : Encode(*model.tokenizer, input.text, true));
      const std::string param = request.inputs.size() == 1 ? "input" : fmt::format("input[{}]", i);
      if (inputs.back().empty())
        return InvalidParam(param, "invalid_value", "The input has no tokens.");
      if (static_cast<int64_t>(inputs.back().size()) > ctx) {
        return PromptTooLong(param, static_cast<int64_t>(inputs.back().size()), ctx);
      }
    }
    json data = json::array();
    int64_t tokens = 0;
    for (size_t i = 0; i < inputs.size(); ++i) {
      if (responder->IsCancelled()) return absl::CancelledError("the client went away");
      absl::StatusOr<std::vector<float>> vector = model.engine->Embed(inputs[i]);
      if (!vector.ok()) {
        if (vector.status().code() == absl::StatusCode::kInvalidArgument) {
          return InvalidParam("input", "invalid_value", common::ToStd(vector.status().message()));
        }
        return vector.status();
      }
      tokens += static_cast<int64_t>(inputs[i].size());
      data.push_back({{"object", "embedding"},
                      {"index", i},
                      {"embedding", request.base64 ? json(Base64Floats(*vector)) : json(*vector)}});
    }
    return json{{"object", "list"},
                {"data", std::move(data)},
                {"model", options_.served_model_name},
                {"usage", {{"prompt_tokens", tokens}, {"total_tokens", tokens}}}};
  };
  absl::StatusOr<json> response = run();
  if (response.ok()) {
    responder->Send(HttpResponse::Json(200, *response));
  } else {
    if (ErrorHttpStatus(response.status()) >= 500) {
      spdlog::error("embeddings failed: {}", common::ToStd(response.status().message()));
    }
    responder->Send(ErrorResponse(response.status()));
  }
  EndRequest();
}

void EngineServer::HandleTokenize(std::shared_ptr<Responder> responder, const ServingModel& model) {
  auto run = [&]() -> absl::StatusOr<json> {
    TP_ASSIGN_OR_RETURN(json body, ParseRequestBody(responder->request().body));
    TP_ASSIGN_OR_RETURN(TokenizeRequest request, ParseTokenizeRequest(body));
    std::string model_name;
    if (auto it = body.find("model"); it != body.end() && it->is_string())
      model_name = it->get<std::string>();
    TP_RETURN_IF_ERROR(CheckModel(model_name));
    std::string text = request.prompt;
    if (request.has_messages) {
      TP_ASSIGN_OR_RETURN(text, RenderChat(model, request.messages, request.chat_template_kwargs,
                                           request.add_generation_prompt));
    }
    const std::vector<int32_t> tokens = Encode(*model.tokenizer, text, request.add_special_tokens);
    return json{{"tokens", tokens},
                {"count", tokens.size()},
                {"max_model_len", model.engine->config().ctx}};
  };
  absl::StatusOr<json> response = run();
  responder->Send(response.ok() ? HttpResponse::Json(200, *response)
                                : ErrorResponse(response.status()));
  EndRequest();
}

void EngineServer::HandleDetokenize(std::shared_ptr<Responder> responder,
                                    const ServingModel& model) {
  auto run = [&]() -> absl::StatusOr<json> {
    TP_ASSIGN_OR_RETURN(json body, ParseRequestBody(responder->request().body));
    TP_ASSIGN_OR_RETURN(DetokenizeRequest request, ParseDetokenizeRequest(body, Limits(model)));
    return json{{"prompt", model.tokenizer->Decode(request.tokens, /*skip_special=*/false)}};
  };
  absl::StatusOr<json> response = run();
  responder->Send(response.ok() ? HttpResponse::Json(200, *response)
                                : ErrorResponse(response.status()));
  EndRequest();
}

}  // namespace triplane::engine::server
