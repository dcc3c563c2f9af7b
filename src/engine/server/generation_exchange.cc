#include "engine/server/generation_exchange.h"

#include <ctime>
#include <optional>
#include <utility>

#include "common/json.h"
#include "common/openai_error.h"
#include "common/sse.h"
#include "common/strings.h"
#include "engine/server/api_error.h"
#include "spdlog/spdlog.h"

namespace triplane::engine::server {

struct GenerationExchange::Choice {
  Choice(const Tokenizer& tokenizer, ChoiceDecoderOptions options)
      : decoder(tokenizer, std::move(options)) {}

  ChoiceDecoder decoder;
  int prompt_index = 0;
  int64_t prompt_tokens = 0;
  Engine::RequestId id = 0;
  bool submitted = false;
  bool cancel_wanted = false;  // a stop string matched before Submit returned the id
  bool saw_token = false;
  Clock::time_point last_token;
  ChoiceResult result;  // non-streamed responses
};

namespace {

// The API error for a rejected Engine::Submit.
absl::Status SubmitError(const absl::Status& status) {
  const std::string_view message = common::ToStd(status.message());
  switch (status.code()) {
    case absl::StatusCode::kResourceExhausted:
      return ApiError(
          503, "queue_full",
          fmt::format("The engine's request queue is full; retry later ({}).", message));
    case absl::StatusCode::kInvalidArgument:
      return ApiError(400, "invalid_value", message);
    case absl::StatusCode::kUnavailable:
      return ApiError(503, "unavailable", message);
    default:
      return ApiError(500, "", message);
  }
}

}  // namespace

void GenerationExchange::Start(GenerationContext context,
                               std::shared_ptr<common::Responder> responder, ExchangeSpec spec,
                               std::vector<ChoiceSpec> choices) {
  auto exchange = std::make_shared<GenerationExchange>(std::move(context), std::move(responder),
                                                       std::move(spec), choices.size());
  exchange->Submit(std::move(choices));
}

GenerationExchange::GenerationExchange(GenerationContext context,
                                       std::shared_ptr<common::Responder> responder,
                                       ExchangeSpec spec, size_t choices)
    : context_(std::move(context)), responder_(std::move(responder)), spec_(std::move(spec)) {
  response_context_ = {
      .endpoint = spec_.endpoint,
      .id = NewResponseId(spec_.endpoint == Endpoint::kCompletions ? "cmpl-" : "chatcmpl-"),
      .created = static_cast<int64_t>(std::time(nullptr)),
      .model = context_.model_name,
      .top_logprobs = spec_.top_logprobs,
  };
  absl::MutexLock lock(&mu_);
  for (size_t i = 0; i < choices; ++i) {
    choices_.push_back(std::make_unique<Choice>(
        *context_.tokenizer, ChoiceDecoderOptions{.stop = spec_.stop,
                                                  .stop_token_ids = spec_.stop_token_ids,
                                                  .ignore_eos = spec_.ignore_eos,
                                                  .logprobs = spec_.top_logprobs >= 0}));
  }
  remaining_ = choices;
}

GenerationExchange::~GenerationExchange() { Done(); }

void GenerationExchange::Submit(std::vector<ChoiceSpec> specs) {
  std::weak_ptr<GenerationExchange> weak = weak_from_this();
  responder_->OnCancel([weak] {
    if (auto self = weak.lock()) self->OnClientGone();
  });
  absl::Status error;
  size_t submitted = 0;
  for (size_t i = 0; i < specs.size(); ++i) {
    if (client_gone_.load()) break;
    {
      absl::MutexLock lock(&mu_);
      choices_[i]->prompt_index = specs[i].prompt_index;
      choices_[i]->prompt_tokens = static_cast<int64_t>(specs[i].request.prompt.size());
    }
    auto self = shared_from_this();
    absl::StatusOr<Engine::RequestId> id =
        context_.engine->Submit(std::move(specs[i].request),
                                [self, i](const TokenEvent& event) { self->OnEvent(i, event); });
    if (!id.ok()) {
      error = SubmitError(id.status());
      break;
    }
    ++submitted;
    bool cancel_now = false;
    {
      absl::MutexLock lock(&mu_);
      choices_[i]->id = *id;
      choices_[i]->submitted = true;
      cancel_now = choices_[i]->cancel_wanted || client_gone_.load();
    }
    if (cancel_now) context_.engine->Cancel(*id);
  }

  if (submitted < specs.size()) {
    // Refused part-way (or the client left): withdraw what was submitted, answer the error.
    {
      absl::MutexLock lock(&mu_);
      failed_ = true;
      finalized_ = true;
    }
    CancelAll();
    if (!error.ok()) responder_->Send(ErrorResponse(error));
    Done();
    return;
  }

  std::optional<common::HttpResponse> response;
  if (spec_.stream) responder_->StartSse();
  {
    absl::MutexLock lock(&mu_);
    if (spec_.stream && spec_.endpoint == Endpoint::kChatCompletions) {
      // The assistant role opens every choice, before any content (which the engine may
      // already have queued).
      std::vector<std::string> openers;
      for (size_t i = 0; i < choices_.size(); ++i) {
        openers.push_back(common::FormatSseData(
            common::DumpJson(StreamChunk(response_context_, static_cast<int>(i), "", /*first=*/true,
                                         nullptr, ChoiceFinish::kNone, spec_.include_usage))));
      }
      outbox_.insert(outbox_.begin(), std::make_move_iterator(openers.begin()),
                     std::make_move_iterator(openers.end()));
    }
    stream_started_ = spec_.stream;
    all_submitted_ = true;
    MaybeFinalize(&response);
  }
  if (response.has_value()) {
    responder_->Send(*std::move(response));
    Done();
  }
  Flush();
}

void GenerationExchange::OnEvent(size_t index, const TokenEvent& event) {
  std::optional<common::HttpResponse> response;
  std::optional<Engine::RequestId> cancel;
  {
    absl::MutexLock lock(&mu_);
    Choice& choice = *choices_[index];
    if (choice.decoder.finished()) return;
    if (event.queue_seconds >= 0) context_.metrics->ObserveQueueTime(event.queue_seconds);
    if (event.token >= 0 && !choice.decoder.finished()) {
      const Clock::time_point now = Clock::now();
      if (!choice.saw_token) {
        context_.metrics->ObserveFirstToken(SecondsSince(spec_.arrival), choice.prompt_tokens);
        choice.saw_token = true;
      } else {
        context_.metrics->ObserveNextToken(
            std::chrono::duration<double>(now - choice.last_token).count());
      }
      choice.last_token = now;
    }
    ChoiceDelta delta = choice.decoder.Consume(event);
    if (delta.stop_string_matched) {
      if (choice.submitted) {
        cancel = choice.id;
      } else {
        choice.cancel_wanted = true;
      }
    }
    const int i = static_cast<int>(index);
    if (!failed_ && spec_.stream) {
      const bool failure =
          delta.finish == ChoiceFinish::kError || delta.finish == ChoiceFinish::kCancelled;
      const ChoiceFinish shown = failure ? ChoiceFinish::kNone : delta.finish;
      const bool has_logprobs = spec_.top_logprobs >= 0 && !delta.logprobs.empty();
      if (!delta.text.empty() || has_logprobs || shown != ChoiceFinish::kNone) {
        nlohmann::json logprobs =
            has_logprobs ? LogprobsJson(response_context_, delta.logprobs, *context_.tokenizer)
                         : nlohmann::json();
        Emit(StreamChunk(response_context_, i, delta.text, /*first=*/false, std::move(logprobs),
                         shown, spec_.include_usage));
      }
      if (failure && !client_gone_.load()) {
        const absl::Status status =
            delta.finish == ChoiceFinish::kError
                ? ApiError(500, "", common::ToStd(choice.decoder.error().message()))
                : ApiError(503, "cancelled", "The engine is shutting down.");
        if (delta.finish == ChoiceFinish::kError) {
          spdlog::error("choice {} of {} failed: {}", i, response_context_.id,
                        common::ToStd(choice.decoder.error().message()));
        }
        Emit(common::OpenAiErrorBody(
            ErrorHttpStatus(status),
            ErrorHttpStatus(status) == 500 ? "internal error" : common::ToStd(status.message()),
            ErrorCode(status)));
      }
    } else if (!failed_) {
      choice.result.text += delta.text;
      for (TokenLogprob& entry : delta.logprobs) choice.result.logprobs.push_back(std::move(entry));
    }
    if (delta.finish != ChoiceFinish::kNone) {
      choice.result.finish = delta.finish;
      const std::string_view reason =
          client_gone_.load() && delta.finish == ChoiceFinish::kCancelled
              ? "abort"
              : FinishReasonName(delta.finish);
      context_.metrics->ObserveFinished(reason, SecondsSince(spec_.arrival));
      --remaining_;
      MaybeFinalize(&response);
    }
  }
  if (cancel.has_value()) CancelLater(*cancel);
  if (response.has_value()) {
    responder_->Send(*std::move(response));
    Done();
  }
  Flush();
}

void GenerationExchange::MaybeFinalize(std::optional<common::HttpResponse>* response) {
  if (finalized_ || failed_ || !all_submitted_ || remaining_ > 0) return;
  finalized_ = true;
  Usage usage;
  std::vector<bool> counted(spec_.prompt_tokens.size(), false);
  for (const auto& choice : choices_) {
    usage.completion_tokens += choice->decoder.completion_tokens();
    const auto p = static_cast<size_t>(choice->prompt_index);
    if (p < counted.size() && !counted[p]) {
      counted[p] = true;
      usage.prompt_tokens += spec_.prompt_tokens[p];
      usage.cached_tokens += choice->decoder.cached_prompt_tokens();
    }
  }
  if (spec_.stream) {
    if (spec_.include_usage) Emit(UsageChunk(response_context_, usage));
    outbox_.push_back(common::FormatSseData("[DONE]"));
    finish_pending_ = true;
    return;
  }
  std::vector<ChoiceResult> results;
  for (auto& choice : choices_) {
    if (choice->result.finish == ChoiceFinish::kError) {
      spdlog::error("{} failed: {}", response_context_.id,
                    common::ToStd(choice->decoder.error().message()));
      *response = ErrorResponse(ApiError(500, "", "internal error"));
      return;
    }
    if (choice->result.finish == ChoiceFinish::kCancelled) {
      *response = ErrorResponse(ApiError(503, "cancelled", "The engine is shutting down."));
      return;
    }
    results.push_back(std::move(choice->result));
  }
  *response = common::HttpResponse::Json(
      200, CompletionResponse(response_context_, results, usage, *context_.tokenizer));
}

void GenerationExchange::Emit(const nlohmann::json& chunk) {
  outbox_.push_back(common::FormatSseData(common::DumpJson(chunk)));
}

void GenerationExchange::Flush() {
  bool ended = false;
  mu_.Lock();
  if (flushing_ || !stream_started_) {
    mu_.Unlock();
    return;
  }
  flushing_ = true;
  while (!outbox_.empty() || finish_pending_) {
    std::vector<std::string> batch;
    batch.swap(outbox_);
    const bool finish = std::exchange(finish_pending_, false);
    mu_.Unlock();
    for (std::string& data : batch) responder_->Write(std::move(data));
    if (finish) {
      responder_->Finish();
      ended = true;
    }
    mu_.Lock();
  }
  flushing_ = false;
  mu_.Unlock();
  if (ended) Done();
}

void GenerationExchange::OnClientGone() {
  client_gone_.store(true);
  // Not here: this may run inside a responder call made by an engine callback.
  auto self = shared_from_this();
  if (!context_.cancel_pool->Submit([self] { self->CancelAll(); })) CancelAll();
}

void GenerationExchange::CancelAll() {
  if (context_.engine_closing->load()) return;
  std::vector<Engine::RequestId> ids;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& choice : choices_) {
      if (choice->submitted && !choice->decoder.finished()) ids.push_back(choice->id);
    }
  }
  for (Engine::RequestId id : ids) context_.engine->Cancel(id);
}

void GenerationExchange::CancelLater(Engine::RequestId id) {
  if (context_.engine_closing->load()) return;
  Engine* engine = context_.engine;
  const std::atomic<bool>* closing = context_.engine_closing;
  // Not from the engine thread itself: the engine may hold its lock around callbacks.
  (void)context_.cancel_pool->Submit([engine, closing, id] {
    if (!closing->load()) engine->Cancel(id);
  });
}

void GenerationExchange::Done() {
  if (!done_called_.exchange(true) && context_.on_done) context_.on_done();
}

double GenerationExchange::SecondsSince(Clock::time_point t) const {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

}  // namespace triplane::engine::server
