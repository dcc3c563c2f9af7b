#include "gateway/proxy.h"

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/http_server.h"
#include "common/json.h"
#include "common/openai_error.h"
#include "common/sse.h"
#include "common/strings.h"
#include "fmt/format.h"
#include "spdlog/spdlog.h"

namespace triplane::gateway {
namespace {

using Clock = std::chrono::steady_clock;

// A generation may be silent for a long time (a long prompt, a non-streamed answer):
// the longest pause between two reads from an upstream.
constexpr std::chrono::milliseconds kUpstreamSilence{600'000};
// A non-streamed answer is kept (besides relayed) up to this size to read its usage.
constexpr size_t kMaxKeptBody = 8u << 20;

// Response headers relayed from the engine; the framing ones are the server's own.
constexpr std::string_view kRelayedHeaders[] = {"content-type", "cache-control",
                                                "x-accel-buffering", "retry-after"};

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// `object[name]` when it is an integer, else 0: an upstream (an external backend) may
// send anything, and value() would throw on a string.
int64_t UsageTokens(const nlohmann::json& object, const char* name) {
  const auto it = object.find(name);
  return it != object.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
}

// Reads an OpenAI `usage` object into `result`.
void ReadUsage(const nlohmann::json& usage, ForwardResult& result) {
  if (!usage.is_object()) return;
  result.usage_seen = true;
  result.prompt_tokens = UsageTokens(usage, "prompt_tokens");
  result.completion_tokens = UsageTokens(usage, "completion_tokens");
  if (auto details = usage.find("prompt_tokens_details"); details != usage.end() && details->is_object()) {
    result.cached_tokens = UsageTokens(*details, "cached_tokens");
  }
}

// FNV-1a of `key` and `id`, finalized by SplitMix64: a well-spread rendezvous score.
uint64_t Score(std::string_view key, std::string_view id) {
  uint64_t h = 1469598103934665603ull;
  for (char c : key) h = (h ^ static_cast<uint8_t>(c)) * 1099511628211ull;
  h = (h ^ 0xff) * 1099511628211ull;
  for (char c : id) h = (h ^ static_cast<uint8_t>(c)) * 1099511628211ull;
  h ^= h >> 30;
  h *= 0xBF58476D1CE4E5B9ull;
  h ^= h >> 27;
  h *= 0x94D049BB133111EBull;
  return h ^ (h >> 31);
}

}  // namespace

const Upstream* ChooseUpstream(const std::vector<Upstream>& upstreams,
                               const std::set<std::string>& tried,
                               const std::function<int64_t(const std::string&)>& load,
                               const RouteHints& hints, double random, uint64_t rotation) {
  std::vector<const Upstream*> candidates;
  for (const Upstream& u : upstreams) {
    if (!tried.contains(u.id)) candidates.push_back(&u);
  }
  if (candidates.empty()) return nullptr;
  // Canary: draw a version by weight among the versions still available.
  if (!hints.version_weights.empty()) {
    std::map<std::string, double> present;
    for (const Upstream* u : candidates) {
      const auto w = hints.version_weights.find(u->version);
      if (w != hints.version_weights.end() && w->second > 0) present[u->version] = w->second;
    }
    double total = 0;
    for (const auto& [version, weight] : present) total += weight;
    if (total > 0) {
      double draw = random * total;
      std::string chosen = present.rbegin()->first;
      for (const auto& [version, weight] : present) {
        if (draw < weight) {
          chosen = version;
          break;
        }
        draw -= weight;
      }
      std::erase_if(candidates, [&](const Upstream* u) { return u->version != chosen; });
    }
  }
  // Least outstanding, ties broken by rotation.
  const size_t n = candidates.size();
  const Upstream* least = nullptr;
  int64_t least_load = 0;
  for (size_t k = 0; k < n; ++k) {
    const Upstream* candidate = candidates[(rotation + k) % n];
    const int64_t l = load(candidate->id);
    if (least == nullptr || l < least_load) least = candidate, least_load = l;
  }
  // Affinity, while the preferred instance is not much busier than the least busy one.
  const std::string_view key = !hints.session.empty() ? std::string_view(hints.session)
                                                      : std::string_view(hints.prefix);
  if (!key.empty()) {
    const Upstream* preferred = nullptr;
    uint64_t best = 0;
    for (const Upstream* candidate : candidates) {
      const uint64_t score = Score(key, candidate->id);
      if (preferred == nullptr || score > best) preferred = candidate, best = score;
    }
    if (load(preferred->id) <= least_load + kAffinitySlack) return preferred;
  }
  return least;
}

class Proxy::Impl : public std::enable_shared_from_this<Impl> {
 public:
  explicit Impl(ProxyOptions options) : options_(std::move(options)) {}

  void AddRoutes(common::HttpRouter& router) {
    std::weak_ptr<Impl> weak = weak_from_this();
    for (std::string_view path : {"/v1/chat/completions", "/v1/completions", "/v1/embeddings"}) {
      router.Add(common::HttpMethod::kPost, path,
                 common::HttpHandler([weak](std::shared_ptr<common::Responder> responder) {
                   if (auto self = weak.lock()) self->ForwardUnauthenticated(std::move(responder));
                 }));
    }
    router.Add(common::HttpMethod::kGet, "/v1/models",
               common::HttpSyncHandler([this](const common::HttpRequest&) {
                 return ModelList(options_.served_models());
               }));
    router.Add(common::HttpMethod::kGet, "/v1/models/{model...}",
               common::HttpSyncHandler([this](const common::HttpRequest& request) {
                 return ModelObject(options_.served_models(), request.PathParam("model"));
               }));
  }

  int64_t Outstanding(std::string_view id) const {
    absl::MutexLock lock(&mu_);
    const auto it = outstanding_.find(id);
    return it == outstanding_.end() ? 0 : it->second;
  }

  void Forward(std::shared_ptr<common::Responder> responder, ForwardRequest request) {
    auto e = std::make_shared<Exchange>();
    e->responder = std::move(responder);
    e->path = e->responder->request().path;
    e->model = std::move(request.model);
    e->upstreams = std::move(request.upstreams);
    e->on_complete = std::move(request.on_complete);
    e->extra_headers = std::move(request.extra_headers);
    e->hints = std::move(request.hints);
    e->started = Clock::now();
    nlohmann::json& body = request.body;
    // The client's body as it came (value() would throw on "stream": "yes"); fields of
    // the wrong type are left for the engine to refuse with a 400.
    const auto stream = body.find("stream");
    e->result.stream = stream != body.end() && stream->is_boolean() && stream->get<bool>();
    if (e->result.stream && e->path != "/v1/embeddings") {
      // Usage is always collected: ask for it, and hide it from a client that did not.
      nlohmann::json& stream_options = body["stream_options"];
      if (stream_options.is_null()) stream_options = nlohmann::json::object();
      const auto include = stream_options.is_object() ? stream_options.find("include_usage") : stream_options.end();
      if (stream_options.is_object() &&
          (include == stream_options.end() || include->is_null() || include->is_boolean())) {
        e->strip_usage = !(include != stream_options.end() && include->is_boolean() && include->get<bool>());
        stream_options["include_usage"] = true;
      }
    }
    e->body = body.dump();
    for (const Upstream& u : e->upstreams) {
      if (!u.remote_model.empty()) {
        e->json = std::move(body);  // renamed per external backend in Attempt
        break;
      }
    }
    std::weak_ptr<Exchange> weak_exchange = e;
    e->responder->OnCancel([weak_exchange] {
      if (auto exchange = weak_exchange.lock()) {
        std::shared_ptr<common::HttpStreamHandle> handle;
        {
          std::lock_guard lock(exchange->mu);
          handle = exchange->handle;
        }
        if (handle) handle->Cancel();
      }
    });
    Attempt(e);
  }

  static common::HttpResponse ModelList(const std::vector<std::string>& models) {
    nlohmann::json data = nlohmann::json::array();
    for (const std::string& model : models) data.push_back(ModelJson(model));
    return common::HttpResponse::Json(200, {{"object", "list"}, {"data", data}});
  }

  static common::HttpResponse ModelObject(const std::vector<std::string>& models, std::string_view model) {
    for (const std::string& served : models) {
      if (served == model) return common::HttpResponse::Json(200, ModelJson(served));
    }
    return common::OpenAiErrorResponse(404, fmt::format("model '{}' does not exist", model),
                                       "model_not_found", "model");
  }

 private:
  // One client request on its way through one or more upstream attempts.
  struct Exchange {
    std::shared_ptr<common::Responder> responder;
    std::string path;
    std::string model;
    std::string body;  // what goes upstream
    nlohmann::json json;  // the body, kept when some backend needs its model renamed
    std::vector<Upstream> upstreams;
    std::function<void(const ForwardResult&)> on_complete;
    common::HttpHeaders extra_headers;
    RouteHints hints;
    bool strip_usage = false;
    std::set<std::string> tried;
    int attempts = 0;
    absl::Status last_error;
    Clock::time_point started;

    std::mutex mu;  // guards everything below
    std::shared_ptr<common::HttpStreamHandle> handle;
    bool head_sent = false;
    bool event_stream = false;
    bool retry = false;  // this attempt's answer is dropped: try another upstream
    bool completed = false;
    common::SseParser sse;
    std::string kept;  // a non-streamed answer, to read its usage
    ForwardResult result;
  };

  static nlohmann::json ModelJson(const std::string& id) {
    return {{"id", id}, {"object", "model"}, {"created", 0}, {"owned_by", "triplane"}};
  }

  // Without the gateway: any caller, routed by `options_.route`.
  void ForwardUnauthenticated(std::shared_ptr<common::Responder> responder) {
    const common::HttpRequest& request = responder->request();
    absl::StatusOr<nlohmann::json> parsed = common::ParseJson(request.body);  // depth-bounded
    if (!parsed.ok() || !parsed->is_object()) {
      responder->Send(common::OpenAiErrorResponse(
          400, parsed.ok() ? "the body is not a JSON object"
                           : fmt::format("the body is not a JSON object: {}", common::ToStd(parsed.status().message()))));
      return;
    }
    nlohmann::json body = *std::move(parsed);
    const auto model = body.find("model");
    if (model == body.end() || !model->is_string() || model->get_ref<const std::string&>().empty()) {
      responder->Send(common::OpenAiErrorResponse(400, "'model' is required and must be a string",
                                                  {}, "model"));
      return;
    }
    const std::string name = model->get<std::string>();
    ModelRoute route = options_.route(name);
    if (!route.known) {
      responder->Send(common::OpenAiErrorResponse(
          404, fmt::format("model '{}' does not exist", name), "model_not_found", "model"));
      return;
    }
    Forward(std::move(responder), {.model = name, .body = std::move(body), .upstreams = std::move(route.upstreams)});
  }

  // Chooses an upstream not tried yet (ChooseUpstream) and counts the request against it.
  std::optional<Upstream> Pick(const std::vector<Upstream>& upstreams,
                               const std::set<std::string>& tried, const RouteHints& hints) {
    absl::MutexLock lock(&mu_);
    auto load = [this](const std::string& id) ABSL_NO_THREAD_SAFETY_ANALYSIS {
      const auto it = outstanding_.find(id);
      return it == outstanding_.end() ? int64_t{0} : it->second;
    };
    const double random = std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
    const Upstream* best = ChooseUpstream(upstreams, tried, load, hints, random, next_++);
    if (best == nullptr) return std::nullopt;
    ++outstanding_[best->id];
    return *best;
  }

  void Release(const std::string& id) {
    absl::MutexLock lock(&mu_);
    auto it = outstanding_.find(id);
    if (it != outstanding_.end() && --it->second <= 0) outstanding_.erase(it);
  }

  // Reports the exchange once.
  static void Complete(const std::shared_ptr<Exchange>& e, int status, std::string error) {
    ForwardResult result;
    {
      std::lock_guard lock(e->mu);
      if (e->completed) return;
      e->completed = true;
      e->result.status = status;
      e->result.error = std::move(error);
      e->result.latency_seconds = Seconds(Clock::now() - e->started);
      result = e->result;
    }
    if (e->on_complete) e->on_complete(result);
  }

  static void Fail(const std::shared_ptr<Exchange>& e, int status, std::string message) {
    e->responder->Send(common::OpenAiErrorResponse(status, message));
    Complete(e, status, std::move(message));
  }

  void Attempt(const std::shared_ptr<Exchange>& e) {
    if (e->responder->IsCancelled()) {
      Complete(e, 0, "the client went away");
      return;
    }
    std::optional<Upstream> upstream;
    if (e->attempts < options_.max_attempts) upstream = Pick(e->upstreams, e->tried, e->hints);
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
                                      .body = e->body,
                                      .timeout = kUpstreamSilence};
    if (upstream->external) {
      // The API root already names the version: ".../v1" + "/chat/completions".
      forward.url = upstream->url + e->path.substr(std::string_view("/v1").size());
      if (!upstream->remote_model.empty()) {
        nlohmann::json renamed = e->json;
        renamed["model"] = upstream->remote_model;
        forward.body = renamed.dump();
      }
      if (!upstream->api_key.empty()) forward.headers.Set("authorization", "Bearer " + upstream->api_key);
    }
    forward.headers.Set("content-type", "application/json");
    forward.headers.Set("x-request-id", request.request_id);
    if (auto accept = request.headers.Get("accept")) forward.headers.Set("accept", *accept);

    std::weak_ptr<Impl> weak_self = weak_from_this();
    const std::string upstream_id = upstream->id;
    common::HttpStreamCallbacks callbacks;
    const bool external = upstream->external;
    callbacks.on_head = [e, upstream_id, external, version = upstream->version,
                         deployment = upstream->deployment](int status, const common::HttpHeaders& headers) {
      std::lock_guard lock(e->mu);
      // A draining or overloaded instance: another one may take the request.
      if (status == 503) {
        e->retry = true;
        e->last_error = absl::UnavailableError(fmt::format("instance {} answered 503", upstream_id));
        return;
      }
      // An external backend refusing the key it was given: a configuration problem of
      // the gateway's, which another upstream may not have.
      if (external && (status == 401 || status == 403)) {
        e->retry = true;
        e->last_error = absl::FailedPreconditionError(
            fmt::format("{} refused the gateway's credentials ({}); check its api_key", upstream_id, status));
        return;
      }
      common::HttpHeaders relayed;
      for (std::string_view name : kRelayedHeaders) {
        if (auto value = headers.Get(name)) relayed.Set(name, *value);
      }
      relayed.Set("x-triplane-instance", upstream_id);
      for (const auto& [name, value] : e->extra_headers.fields()) relayed.Set(name, value);
      e->event_stream = headers.Get("content-type").value_or("").starts_with("text/event-stream");
      e->head_sent = true;
      e->result.instance = upstream_id;
      e->result.version = version;
      e->result.deployment = deployment;
      e->result.status = status;
      e->responder->StartStream(status, std::move(relayed));
    };
    callbacks.on_data = [e](std::string_view data) { return Relay(*e, data); };
    callbacks.on_done = [e, weak_self, upstream_id](absl::Status status) {
      auto self = weak_self.lock();
      if (self) self->Release(upstream_id);
      bool head_sent, retry;
      int answered = 0;
      {
        std::lock_guard lock(e->mu);
        head_sent = e->head_sent;
        retry = e->retry;
        answered = e->result.status;
        e->handle.reset();
        if (head_sent && !e->event_stream && !e->kept.empty()) {
          const nlohmann::json body = nlohmann::json::parse(e->kept, nullptr, false);
          if (body.is_object() && body.contains("usage")) ReadUsage(body["usage"], e->result);
        }
      }
      if (!head_sent) {
        if (!status.ok() && !retry) e->last_error = status;
        if (e->responder->IsCancelled()) {
          Complete(e, 0, "the client went away");
          return;
        }
        spdlog::warn("upstream {} failed for request {} before answering: {}", upstream_id,
                     e->responder->request().request_id, std::string(e->last_error.message()));
        if (self) {
          self->Attempt(e);
        } else {
          Fail(e, 503, "shutting down");
        }
        return;
      }
      std::string error;
      if (!status.ok()) {
        error = std::string(status.message());
        if (!e->responder->IsCancelled()) {
          spdlog::warn("upstream {} failed mid-answer for request {}: {}", upstream_id,
                       e->responder->request().request_id, error);
          if (e->event_stream) {
            const nlohmann::json body = common::OpenAiErrorBody(
                502, fmt::format("the model instance failed while answering: {}", error));
            e->responder->WriteSseData(body.dump());
          }
        }
      }
      e->responder->Finish();
      // A stream cut short failed, whatever its status line said.
      Complete(e, status.ok() ? answered : (e->responder->IsCancelled() ? 499 : 502), error);
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

  // Passes a piece of the answer to the client, reading usage on the way.
  static bool Relay(Exchange& e, std::string_view data) {
    std::string out;
    {
      std::lock_guard lock(e.mu);
      if (e.retry) return false;
      if (e.result.ttft_seconds == 0) e.result.ttft_seconds = Seconds(Clock::now() - e.started);
      if (!e.event_stream) {
        if (e.kept.size() + data.size() <= kMaxKeptBody) e.kept.append(data);
        out = std::string(data);
      } else {
        const bool strip = e.strip_usage;
        if (!strip) out = std::string(data);
        const absl::Status parsed = e.sse.Feed(data, [&](common::SseEvent&& event) {
          if (event.data.find("\"usage\":{") != std::string::npos) {
            const nlohmann::json chunk = nlohmann::json::parse(event.data, nullptr, false);
            if (chunk.is_object()) ReadUsage(chunk.value("usage", nlohmann::json()), e.result);
            // The usage-only chunk the client did not ask for.
            if (strip && chunk.is_object() && chunk.value("choices", nlohmann::json::array()).empty()) return;
          }
          if (!strip) return;
          // Fields the engine added because usage was asked for on the client's behalf.
          std::string& text = event.data;
          for (size_t at; (at = text.find(",\"usage\":null")) != std::string::npos;) text.erase(at, 13);
          out += common::FormatSseEvent(event);
        });
        if (!parsed.ok() && strip) return false;
      }
    }
    return out.empty() || e.responder->Write(std::move(out));
  }

  const ProxyOptions options_;
  mutable absl::Mutex mu_;
  std::map<std::string, int64_t, std::less<>> outstanding_ ABSL_GUARDED_BY(mu_);
  uint64_t next_ ABSL_GUARDED_BY(mu_) = 0;
  std::mt19937_64 rng_ ABSL_GUARDED_BY(mu_){std::random_device{}()};
};

Proxy::Proxy(ProxyOptions options) : impl_(std::make_shared<Impl>(std::move(options))) {}
Proxy::~Proxy() = default;

void Proxy::AddRoutes(common::HttpRouter& router) { impl_->AddRoutes(router); }

void Proxy::Forward(std::shared_ptr<common::Responder> responder, ForwardRequest request) {
  impl_->Forward(std::move(responder), std::move(request));
}

int64_t Proxy::Outstanding(std::string_view upstream_id) const {
  return impl_->Outstanding(upstream_id);
}

}  // namespace triplane::gateway
