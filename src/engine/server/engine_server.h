#pragma once

// The engine process's HTTP API for one loaded model (docs/api.md, "triplane engine"):
//   GET  /health                  {"status": "starting" | "ready" | "draining"}; 200 only when
//   ready GET  /metrics                 Prometheus text (engine_metrics.h and the registry's
//   others) GET  /v1/models, /v1/models/{model} POST /v1/completions, /v1/chat/completions
//   (streaming as Server-Sent Events) POST /v1/embeddings, /tokenize, /detokenize
//
// The server listens before the model is loaded (health says "starting" and every model
// endpoint answers 503) and becomes ready on Attach(). Parsing, templating, tokenizing
// and embeddings run on a small worker pool, never on the HTTP I/O threads; generation
// runs on the Engine's thread, which streams tokens straight into the responses.
//
// Thread safety: every method may be called from any thread. Lifetime: the HttpServer
// using the routes must be shut down before this object is destroyed.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/http_router.h"
#include "common/metrics.h"
#include "common/thread_pool.h"
#include "engine/server/engine_metrics.h"
#include "engine/server/openai_protocol.h"
#include "engine/server/serving_model.h"

namespace triplane::engine::server {

enum class ServerState { kStarting, kReady, kDraining };

struct EngineServerOptions {
  std::string served_model_name;               // the model's id in the API; required
  common::MetricsRegistry* metrics = nullptr;  // null = MetricsRegistry::Default()
  int worker_threads = 2;                      // request preparation and embeddings
  ProtocolLimits limits;                       // vocab_size is taken from the model
  // When set, every API route but /health and /metrics requires this key
  // (`Authorization: Bearer KEY` or `x-api-key`); 401 otherwise.
  std::string api_key;
};

class EngineServer {
 public:
  explicit EngineServer(EngineServerOptions options);
  // Stops the workers, then destroys the engine (cancelling what still runs).
  ~EngineServer();

  EngineServer(const EngineServer&) = delete;
  EngineServer& operator=(const EngineServer&) = delete;

  // Adds every route above. REQUIRES: this object outlives any server using `router`.
  void AddRoutes(common::HttpRouter& router);

  // Serves `model` from now on (state kReady, unless draining began). Call once.
  void Attach(std::unique_ptr<ServingModel> model);

  // Health turns to "draining" and new requests get 503; requests in flight go on.
  void StartDraining();

  // Waits until no request is in flight or `timeout` passes; true when idle.
  bool WaitIdle(std::chrono::milliseconds timeout);

  ServerState state() const;
  // Generation, embedding and tokenizer requests being handled.
  int64_t in_flight() const;

 private:
  bool Authorized(const common::HttpRequest& request) const;
  static absl::Status Unauthorized();
  // The loaded model, or null while starting. Never changes once set.
  const ServingModel* serving() const { return serving_ptr_.load(std::memory_order_acquire); }
  // Runs `work` on a worker with the in-flight count held; 503 while starting or
  // draining, or when the workers are gone.
  void Dispatch(std::shared_ptr<common::Responder> responder,
                std::function<void(std::shared_ptr<common::Responder>, const ServingModel&)> work);
  void BeginRequest();
  void EndRequest();

  // `arrival`: when the HTTP request was handed over (latency metrics start there).
  void HandleGeneration(std::shared_ptr<common::Responder> responder, const ServingModel& model,
                        Endpoint endpoint, std::chrono::steady_clock::time_point arrival);
  void HandleEmbeddings(std::shared_ptr<common::Responder> responder, const ServingModel& model);
  void HandleTokenize(std::shared_ptr<common::Responder> responder, const ServingModel& model);
  void HandleDetokenize(std::shared_ptr<common::Responder> responder, const ServingModel& model);
  nlohmann::json ModelJson() const;  // the served model as a "model" object

  // InvalidParam / 404 unless `requested` is empty or the served model's name.
  absl::Status CheckModel(const std::string& requested) const;
  ProtocolLimits Limits(const ServingModel& model) const;

  const EngineServerOptions options_;
  const int64_t created_;  // Unix seconds, the model object's "created"
  common::MetricsRegistry& registry_;
  EngineMetrics metrics_;
  std::atomic<bool> engine_closing_{false};
  std::atomic<bool> draining_{false};
  std::unique_ptr<ServingModel> serving_;  // owned; written once by Attach
  std::atomic<const ServingModel*> serving_ptr_{nullptr};
  common::ThreadPool cancel_pool_;
  common::ThreadPool workers_;  // declared last: stopped first

  mutable absl::Mutex mu_;
  int64_t in_flight_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace triplane::engine::server
