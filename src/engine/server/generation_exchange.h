#pragma once

// One /v1/completions or /v1/chat/completions request in flight: its choices submitted
// to the Engine (n per prompt), their tokens turned into text (ChoiceDecoder) and
// streamed as Server-Sent Events or gathered into one response, stop strings turned
// into engine cancellations, and a client disconnect cancelling every choice at once.
//
// Threads: Start() runs on a worker thread; engine callbacks on the engine thread;
// disconnect notices on an HTTP I/O thread. State is guarded by one mutex, and
// responder calls are made outside it (a responder may run cancel callbacks inline).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/http_server.h"
#include "common/thread_pool.h"
#include "engine/runtime/engine.h"
#include "engine/server/engine_metrics.h"
#include "engine/server/openai_protocol.h"
#include "engine/server/openai_response.h"
#include "engine/tokenizer/tokenizer.h"

namespace triplane::engine::server {

// What an exchange borrows from the server; everything must outlive the exchange's
// engine requests (the server shuts `cancel_pool` down and destroys the engine first).
struct GenerationContext {
  const Tokenizer* tokenizer = nullptr;
  Engine* engine = nullptr;
  EngineMetrics* metrics = nullptr;
  common::ThreadPool* cancel_pool = nullptr;  // runs Engine::Cancel off callback threads
  // Set while the engine shuts down (it cancels everything itself): no more Cancel calls.
  const std::atomic<bool>* engine_closing = nullptr;
  std::string model_name;
  // Called once when the exchange has answered (for in-flight accounting and drain).
  std::function<void()> on_done;
};

// One choice to generate: the engine request and which prompt it belongs to.
struct ChoiceSpec {
  GenerationRequest request;
  int prompt_index = 0;
};

// The parts of the parsed request the exchange needs besides the choices.
struct ExchangeSpec {
  Endpoint endpoint = Endpoint::kCompletions;
  bool stream = false;
  bool include_usage = false;
  int top_logprobs = -1;
  std::vector<std::string> stop;
  std::vector<int32_t> stop_token_ids;
  bool ignore_eos = false;
  std::vector<int64_t> prompt_tokens;  // per prompt, for usage
  std::chrono::steady_clock::time_point arrival;
};

class GenerationExchange : public std::enable_shared_from_this<GenerationExchange> {
 public:
  // Submits every choice and answers on `responder`: 503 when the engine's queue is
  // full, 400 when it rejects a request, otherwise the response or the stream. Blocks
  // only briefly (Engine::Submit); call from a worker thread, not an I/O thread.
  static void Start(GenerationContext context, std::shared_ptr<common::Responder> responder,
                    ExchangeSpec spec, std::vector<ChoiceSpec> choices);

  GenerationExchange(GenerationContext context, std::shared_ptr<common::Responder> responder,
                     ExchangeSpec spec, size_t choices);  // use Start()
  ~GenerationExchange();

 private:
  struct Choice;
  using Clock = std::chrono::steady_clock;

  void Submit(std::vector<ChoiceSpec> choices);
  void OnEvent(size_t index, const TokenEvent& event);
  void OnClientGone();
  void CancelAll();
  void CancelLater(Engine::RequestId id);
  // Writes queued SSE data (and the end of the stream) in order; one writer at a time.
  void Flush();
  // Queues a chunk / an error event. REQUIRES: mu_ held.
  void Emit(const nlohmann::json& chunk);
  // When every choice has ended: the last chunks, or the whole response to send.
  // REQUIRES: mu_ held. Sets *response when one must be sent after unlocking.
  void MaybeFinalize(std::optional<common::HttpResponse>* response);
  void Done();
  double SecondsSince(Clock::time_point t) const;

  const GenerationContext context_;
  const std::shared_ptr<common::Responder> responder_;
  const ExchangeSpec spec_;
  ResponseContext response_context_;
  std::atomic<bool> client_gone_{false};
  std::atomic<bool> done_called_{false};

  absl::Mutex mu_;
  std::vector<std::unique_ptr<Choice>> choices_ ABSL_GUARDED_BY(mu_);
  size_t remaining_ ABSL_GUARDED_BY(mu_) = 0;  // choices not yet ended
  bool all_submitted_ ABSL_GUARDED_BY(mu_) = false;
  bool failed_ ABSL_GUARDED_BY(mu_) = false;  // answered with an error before streaming
  bool finalized_ ABSL_GUARDED_BY(mu_) = false;
  bool stream_started_ ABSL_GUARDED_BY(mu_) = false;
  bool flushing_ ABSL_GUARDED_BY(mu_) = false;
  bool finish_pending_ ABSL_GUARDED_BY(mu_) = false;  // end the stream after the outbox
  std::vector<std::string> outbox_ ABSL_GUARDED_BY(mu_);
};

}  // namespace triplane::engine::server
