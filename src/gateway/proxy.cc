#include "gateway/proxy.h"

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/http_server.h"
#include "common/openai_error.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace triplane::gateway {
namespace {

// A generation may be silent for a long time (a long prompt, a non-streamed answer):
// the longest pause between two reads from an upstream.
constexpr std::chrono::milliseconds kUpstreamSilence{600'000};

// Response headers relayed from the engine; the framing ones are the server's own.
constexpr std::string_view kRelayedHeaders[] = {"content-type", "cache-control",
                                                "x-accel-buffering"};

}  // namespace

class Proxy::Impl : public std::enable_shared_from_this<Impl> {
 public:
  explicit Impl(ProxyOptions options) : options_(std::move(options)) {}

  void AddRoutes(common::HttpRouter& router) {
    std::weak_ptr<Impl> weak = weak_from_this();
    for (std::string_view path : {"/v1/chat/completions", "/v1/completions", "/v1/embeddings"}) {
      router.Add(common::HttpMethod::kPost, path,
                 common::HttpHandler([weak](std::shared_ptr<common::Responder> responder) {
                   if (auto self = weak.lock()) self->Forward(std::move(responder));
                 }));
    }
    router.Add(common::HttpMethod::kGet, "/v1/models",
               common::HttpSyncHandler([this](const common::HttpRequest&) { return ListModels(); }));
    router.Add(common::HttpMethod::kGet, "/v1/models/{model...}",
               common::HttpSyncHandler([this](const common::HttpRequest& request) {
                 return GetModel(request.PathParam("model"));
               }));
  }

  int64_t Outstanding(std::string_view id) const {
    absl::MutexLock lock(&mu_);
    const auto it = outstanding_.find(id);
    return it == outstanding_.end() ? 0 : it->second;
  }

 private:
  // One client request on its way through one or more upstream attempts.
  struct Exchange {
    std::shared_ptr<common::Responder> responder;
    std::string path;
    std::string model;
    std::set<std::string> tried;
    int attempts = 0;
    absl::Status last_error;

    std::mutex mu;  // guards handle and the flags below
    std::shared_ptr<common::HttpStreamHandle> handle;
    bool head_sent = false;
    bool event_stream = false;
    bool retry = false;  // this attempt's answer is dropped: try another upstream
  };

  static nlohmann::json ModelObject(const std::string& id) {
    return {{"id", id}, {"object", "model"}, {"created", 0}, {"owned_by", "triplane"}};
  }

  common::HttpResponse ListModels() const {
    nlohmann::json data = nlohmann::json::array();
    for (const std::string& model : options_.served_models()) data.push_back(ModelObject(model));
    return common::HttpResponse::Json(200, {{"object", "list"}, {"data", data}});
  }

  common::HttpResponse GetModel(std::string_view model) const {
    for (const std::string& served : options_.served_models()) {
      if (served == model) return common::HttpResponse::Json(200, ModelObject(served));
    }
    return common::OpenAiErrorResponse(404, fmt::format("model '{}' does not exist", model),
                                       "model_not_found", "model");
  }

  void Forward(std::shared_ptr<common::Responder> responder) {
    const common::HttpRequest& request = responder->request();
    const nlohmann::json body = nlohmann::json::parse(request.body, nullptr, false);
    if (body.is_discarded() || !body.is_object()) {
      responder->Send(common::OpenAiErrorResponse(400, "the body is not a JSON object"));
      return;
    }
    const auto model = body.find("model");
    if (model == body.end() || !model->is_string() || model->get_ref<const std::string&>().empty()) {
      responder->Send(common::OpenAiErrorResponse(400, "'model' is required and must be a string",
                                                  {}, "model"));
      return;
    }
    auto exchange = std::make_shared<Exchange>();
    exchange->responder = std::move(responder);
    exchange->path = request.path;
    exchange->model = model->get<std::string>();
    std::weak_ptr<Exchange> weak_exchange = exchange;
    exchange->responder->OnCancel([weak_exchange] {
      if (auto e = weak_exchange.lock()) {
        std::shared_ptr<common::HttpStreamHandle> handle;
        {
          std::lock_guard lock(e->mu);
          handle = e->handle;
        }
        if (handle) handle->Cancel();
      }
    });
    Attempt(exchange);
  }

  // Chooses the least loaded upstream not tried yet and counts the request against it.
  std::optional<Upstream> Pick(const std::vector<Upstream>& upstreams,
                               const std::set<std::string>& tried) {
    absl::MutexLock lock(&mu_);
    const Upstream* best = nullptr;
    int64_t best_load = 0;
    const size_t n = upstreams.size();
    const size_t start = n == 0 ? 0 : static_cast<size_t>(next_++ % n);
    for (size_t k = 0; k < n; ++k) {
      const Upstream& candidate = upstreams[(start + k) % n];
      if (tried.contains(candidate.id)) continue;
      const auto it = outstanding_.find(candidate.id);
      const int64_t load = it == outstanding_.end() ? 0 : it->second;
      if (best == nullptr || load < best_load) best = &candidate, best_load = load;
    }
    if (best == nullptr) return std::nullopt;
    ++outstanding_[best->id];
    return *best;
  }

  void Release(const std::string& id) {
    absl::MutexLock lock(&mu_);
    auto it = outstanding_.find(id);
    if (it != outstanding_.end() && --it->second <= 0) outstanding_.erase(it);
  }

  void Fail(const std::shared_ptr<Exchange>& e, int status, std::string message) {
    e->responder->Send(common::OpenAiErrorResponse(status, message));
  }

  void Attempt(const std::shared_ptr<Exchange>& e) {
    if (e->responder->IsCancelled()) return;
    const ModelRoute route = options_.route(e->model);
    if (!route.known) {
      e->responder->Send(common::OpenAiErrorResponse(
          404, fmt::format("model '{}' does not exist", e->model), "model_not_found", "model"));
      return;
    }
    std::optional<Upstream> upstream;
    if (e->attempts < options_.max_attempts) upstream = Pick(route.upstreams, e->tried);
    if (!upstream) {
      if (e->tried.empty()) {
        Fail(e, 503, fmt::format("no instance of model '{}' is ready yet; retry shortly", e->model));
      } else {
        // Every instance busy or draining is a 503 (retry later), anything else a 502.
        const bool busy = absl::IsUnavailable(e->last_error);
        Fail(e, busy ? 503 : 502,
             fmt::format("every instance of model '{}' failed: {}", e->model,
                         std::string(e->last_error.message())));
      }
      return;
    }
    ++e->attempts;
    e->tried.insert(upstream->id);
    {
      std::lock_guard lock(e->mu);
      e->retry = false;
    }

    const common::HttpRequest& request = e->responder->request();
    common::HttpClientRequest forward{.method = common::HttpMethod::kPost,
                                      .url = upstream->url + e->path,
                                      .body = request.body,
                                      .timeout = kUpstreamSilence};
    forward.headers.Set("content-type", "application/json");
    forward.headers.Set("x-request-id", request.request_id);
    if (auto accept = request.headers.Get("accept")) forward.headers.Set("accept", *accept);

    std::weak_ptr<Impl> weak_self = weak_from_this();
    const std::string upstream_id = upstream->id;
    common::HttpStreamCallbacks callbacks;
    callbacks.on_head = [e, upstream_id](int status, const common::HttpHeaders& headers) {
      std::lock_guard lock(e->mu);
      // A draining or overloaded instance: another one may take the request.
      if (status == 503) {
        e->retry = true;
        e->last_error = absl::UnavailableError(fmt::format("instance {} answered 503", upstream_id));
        return;
      }
      common::HttpHeaders relayed;
      for (std::string_view name : kRelayedHeaders) {
        if (auto value = headers.Get(name)) relayed.Set(name, *value);
      }
      relayed.Set("x-triplane-instance", upstream_id);
      e->event_stream = headers.Get("content-type").value_or("").starts_with("text/event-stream");
      e->head_sent = true;
      e->responder->StartStream(status, std::move(relayed));
    };
    callbacks.on_data = [e](std::string_view data) {
      {
        std::lock_guard lock(e->mu);
        if (e->retry) return false;
      }
      return e->responder->Write(std::string(data));
    };
    callbacks.on_done = [e, weak_self, upstream_id](absl::Status status) {
      auto self = weak_self.lock();
      if (self) self->Release(upstream_id);
      bool head_sent, retry;
      {
        std::lock_guard lock(e->mu);
        head_sent = e->head_sent;
        retry = e->retry;
        e->handle.reset();
      }
      if (!head_sent) {
        if (!status.ok() && !retry) e->last_error = status;
        if (e->responder->IsCancelled()) return;
        spdlog::warn("upstream {} failed for request {} before answering: {}", upstream_id,
                     e->responder->request().request_id, std::string(e->last_error.message()));
        if (self) {
          self->Attempt(e);
        } else {
          e->responder->Send(common::OpenAiErrorResponse(503, "shutting down"));
        }
        return;
      }
      if (!status.ok() && !e->responder->IsCancelled()) {
        spdlog::warn("upstream {} failed mid-answer for request {}: {}", upstream_id,
                     e->responder->request().request_id, std::string(status.message()));
        if (e->event_stream) {
          const nlohmann::json error = common::OpenAiErrorBody(
              502, fmt::format("the model instance failed while answering: {}", std::string(status.message())));
          e->responder->WriteSseData(error.dump());
        }
      }
      e->responder->Finish();
    };
    std::shared_ptr<common::HttpStreamHandle> handle =
        options_.client->Stream(std::move(forward), std::move(callbacks));
    bool cancelled_meanwhile = false;
    {
      std::lock_guard lock(e->mu);
      e->handle = handle;
      cancelled_meanwhile = e->responder->IsCancelled();
    }
    if (cancelled_meanwhile) handle->Cancel();
  }

  const ProxyOptions options_;
  mutable absl::Mutex mu_;
  std::map<std::string, int64_t, std::less<>> outstanding_ ABSL_GUARDED_BY(mu_);
  uint64_t next_ ABSL_GUARDED_BY(mu_) = 0;
};

Proxy::Proxy(ProxyOptions options) : impl_(std::make_shared<Impl>(std::move(options))) {}
Proxy::~Proxy() = default;

void Proxy::AddRoutes(common::HttpRouter& router) { impl_->AddRoutes(router); }

int64_t Proxy::Outstanding(std::string_view upstream_id) const {
  return impl_->Outstanding(upstream_id);
}

}  // namespace triplane::gateway
