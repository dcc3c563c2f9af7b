#include "control/gateway_feed.h"

#include <map>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/http_server.h"
#include "common/openai_error.h"
#include "common/thread_pool.h"
#include "control/admin/admin_api.h"
#include "fmt/format.h"
#include "spdlog/spdlog.h"

namespace triplane::control {
namespace {

constexpr int64_t kDefaultWaitSeconds = 30;
constexpr int64_t kMaxWaitSeconds = 60;

}  // namespace

class GatewayFeed::Impl : public std::enable_shared_from_this<Impl> {
 public:
  Impl(Store& store, std::function<std::vector<Endpoint>()> endpoints, GatewayFeedOptions options)
      : store_(store), endpoints_(std::move(endpoints)), options_(options), auth_(1, "gateway-feed") {}

  absl::Status Start() {
    absl::StatusOr<nlohmann::json> first = Build();
    if (!first.ok()) return first.status();
    Publish(std::move(*first));
    thread_ = std::thread([this] { Loop(); });
    return absl::OkStatus();
  }

  void Stop() {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
      stopping_ = true;
    }
    if (thread_.joinable()) thread_.join();
    auth_.Shutdown();
    std::vector<Waiter> waiters;
    {
      absl::MutexLock lock(&mu_);
      waiters.swap(waiters_);
    }
    for (Waiter& w : waiters) w.responder->Send(Unchanged(w.since));
  }

  void Refresh() {
    absl::MutexLock lock(&mu_);
    refresh_requested_ = true;
  }

  absl::Status RefreshNow() {
    absl::MutexLock build(&build_mu_);
    absl::StatusOr<nlohmann::json> next = Build();
    if (!next.ok()) return next.status();
    Publish(std::move(*next));
    return absl::OkStatus();
  }

  std::shared_ptr<const nlohmann::json> Current() const {
    absl::MutexLock lock(&mu_);
    return current_;
  }

  void Subscribe(std::function<void(std::shared_ptr<const nlohmann::json>)> callback) {
    std::shared_ptr<const nlohmann::json> now;
    {
      absl::MutexLock lock(&mu_);
      subscribers_.push_back(callback);
      now = current_;
    }
    if (now != nullptr) callback(now);
  }

  void AddRoutes(common::HttpRouter& router) {
    std::weak_ptr<Impl> weak = weak_from_this();
    router.Add(common::HttpMethod::kGet, "/admin/v1/gateway/state",
               common::HttpHandler([weak](std::shared_ptr<common::Responder> responder) {
                 auto self = weak.lock();
                 if (self == nullptr) {
                   responder->Send(common::OpenAiErrorResponse(503, "shutting down"));
                   return;
                 }
                 // The key check reads the store: off the I/O thread.
                 std::shared_ptr<common::Responder> r = responder;
                 if (!self->auth_.Submit([self, r] { self->Poll(r); })) {
                   responder->Send(common::OpenAiErrorResponse(503, "shutting down"));
                 }
               }));
  }

 private:
  struct Waiter {
    std::shared_ptr<common::Responder> responder;
    int64_t since = 0;
    absl::Time deadline;
  };

  static common::HttpResponse Unchanged(int64_t since) {
    return common::HttpResponse::Json(200, {{"revision", since}, {"unchanged", true}});
  }

  void Poll(const std::shared_ptr<common::Responder>& responder) {
    const common::HttpRequest& request = responder->request();
    if (absl::StatusOr<ApiKey> key = AuthenticateAdmin(store_, request); !key.ok()) {
      responder->Send(common::OpenAiErrorResponse(key.status()));
      return;
    }
    int64_t since = 0, timeout = kDefaultWaitSeconds;
    for (auto [name, target] : {std::pair{"since", &since}, std::pair{"timeout", &timeout}}) {
      if (std::optional<std::string> text = request.QueryParam(name)) {
        try {
          size_t used = 0;
          *target = std::stoll(*text, &used);
          if (used != text->size() || *target < 0) throw std::invalid_argument(*text);
        } catch (const std::exception&) {
          responder->Send(common::OpenAiErrorResponse(
              400, fmt::format("'{}' must be a non-negative integer", name), "invalid_value", name));
          return;
        }
      }
    }
    timeout = std::min(timeout, kMaxWaitSeconds);
    absl::MutexLock lock(&mu_);
    const int64_t revision = (*current_)["revision"].get<int64_t>();
    if (revision > since || since > revision) {  // newer, or the caller saw another store
      responder->Send(common::HttpResponse::Json(200, *current_));
      return;
    }
    if (static_cast<int>(waiters_.size()) >= options_.max_waiters || stopping_) {
      responder->Send(common::OpenAiErrorResponse(503, "too many gateway watches; retry shortly"));
      return;
    }
    waiters_.push_back({responder, since, absl::Now() + absl::Seconds(timeout)});
  }

  absl::StatusOr<nlohmann::json> Build() {
    nlohmann::json snapshot = {{"keys", nlohmann::json::array()},
                               {"config", nlohmann::json::object()},
                               {"models", nlohmann::json::object()}};
    absl::StatusOr<std::vector<ApiKey>> keys = store_.ListApiKeys();
    if (!keys.ok()) return keys.status();
    for (const ApiKey& key : *keys) {
      if (key.revoked_at.has_value()) continue;
      snapshot["keys"].push_back(
          {{"id", key.id},
           {"digest", key.digest},
           {"role", ToString(key.role)},
           {"team", key.team},
           {"allowed_models", key.allowed_models},
           {"expires_at", key.expires_at ? nlohmann::json(absl::ToUnixSeconds(*key.expires_at))
                                         : nlohmann::json(nullptr)}});
    }
    absl::StatusOr<ConfigSnapshot> config = store_.ListConfig("");
    if (!config.ok()) return config.status();
    for (const ConfigEntry& entry : config->entries) snapshot["config"][entry.key] = entry.value;
    absl::StatusOr<std::vector<Deployment>> deployments = store_.ListDeployments();
    if (!deployments.ok()) return deployments.status();
    nlohmann::json& models = snapshot["models"];
    for (const Deployment& d : *deployments) {
      if (!models.contains(d.spec.model)) models[d.spec.model] = {{"upstreams", nlohmann::json::array()}};
      if (!d.spec.canary_version.empty()) {
        models[d.spec.model]["weights"] = {{d.spec.version, 100 - d.spec.canary_percent},
                                           {d.spec.canary_version, d.spec.canary_percent}};
      }
      // Deployments that may be at zero replicas: the gateway holds requests and wakes them.
      if (d.spec.autoscale && d.spec.autoscale->scale_to_zero) models[d.spec.model]["wake"].push_back(d.name);
    }
    for (const Endpoint& e : endpoints_()) {
      if (!models.contains(e.model)) models[e.model] = {{"upstreams", nlohmann::json::array()}};
      models[e.model]["upstreams"].push_back({{"id", e.instance_id},
                                              {"url", e.url},
                                              {"deployment", e.deployment},
                                              {"version", e.version}});
    }
    absl::StatusOr<std::vector<Backend>> backends = store_.ListBackends();
    if (!backends.ok()) return backends.status();
    for (const Backend& b : *backends) {
      if (!models.contains(b.model)) models[b.model] = {{"upstreams", nlohmann::json::array()}};
      models[b.model]["upstreams"].push_back({{"id", "backend/" + b.name},
                                              {"url", b.base_url},
                                              {"external", true},
                                              {"remote_model", b.remote_model},
                                              {"api_key", b.api_key}});
    }
    return snapshot;
  }

  // Installs `content` as the current snapshot when it differs from it.
  void Publish(nlohmann::json content) {
    std::vector<std::function<void(std::shared_ptr<const nlohmann::json>)>> subscribers;
    std::vector<Waiter> answered;
    std::shared_ptr<const nlohmann::json> snapshot;
    {
      absl::MutexLock lock(&mu_);
      if (current_ != nullptr) {
        nlohmann::json previous = *current_;
        previous.erase("revision");
        if (previous == content) return;
      }
      content["revision"] = ++revision_;
      current_ = snapshot = std::make_shared<const nlohmann::json>(std::move(content));
      subscribers = subscribers_;
      answered.swap(waiters_);
    }
    for (auto& callback : subscribers) callback(snapshot);
    for (Waiter& w : answered) w.responder->Send(common::HttpResponse::Json(200, *snapshot));
  }

  void ExpireWaiters() {
    std::vector<Waiter> expired;
    {
      absl::MutexLock lock(&mu_);
      const absl::Time now = absl::Now();
      for (auto it = waiters_.begin(); it != waiters_.end();) {
        if (it->deadline <= now || it->responder->IsCancelled()) {
          expired.push_back(std::move(*it));
          it = waiters_.erase(it);
        } else {
          ++it;
        }
      }
    }
    for (Waiter& w : expired) {
      if (!w.responder->IsCancelled()) w.responder->Send(Unchanged(w.since));
    }
  }

  void Loop() {
    while (true) {
      {
        absl::MutexLock lock(&mu_);
        auto woken = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return refresh_requested_ || stopping_; };
        mu_.AwaitWithTimeout(absl::Condition(&woken), options_.refresh);
        if (stopping_) return;
        refresh_requested_ = false;
      }
      {
        // One build at a time, so that an older build never replaces a newer one.
        absl::MutexLock build(&build_mu_);
        absl::StatusOr<nlohmann::json> next = Build();
        if (next.ok()) {
          Publish(std::move(*next));
        } else {
          spdlog::warn("gateway feed: cannot read the store: {}", std::string(next.status().message()));
        }
      }
      ExpireWaiters();
    }
  }

  Store& store_;
  const std::function<std::vector<Endpoint>()> endpoints_;
  const GatewayFeedOptions options_;
  common::ThreadPool auth_;
  std::thread thread_;
  absl::Mutex build_mu_;  // held across Build() and Publish(); acquired before mu_
  mutable absl::Mutex mu_;
  std::shared_ptr<const nlohmann::json> current_ ABSL_GUARDED_BY(mu_);
  int64_t revision_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<Waiter> waiters_ ABSL_GUARDED_BY(mu_);
  std::vector<std::function<void(std::shared_ptr<const nlohmann::json>)>> subscribers_ ABSL_GUARDED_BY(mu_);
  bool refresh_requested_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
};

GatewayFeed::GatewayFeed(Store& store, std::function<std::vector<Endpoint>()> endpoints,
                         GatewayFeedOptions options)
    : impl_(std::make_shared<Impl>(store, std::move(endpoints), options)) {}
GatewayFeed::~GatewayFeed() { impl_->Stop(); }
absl::Status GatewayFeed::Start() { return impl_->Start(); }
void GatewayFeed::Stop() { impl_->Stop(); }
void GatewayFeed::Refresh() { impl_->Refresh(); }
absl::Status GatewayFeed::RefreshNow() { return impl_->RefreshNow(); }
std::shared_ptr<const nlohmann::json> GatewayFeed::Current() const { return impl_->Current(); }
void GatewayFeed::Subscribe(std::function<void(std::shared_ptr<const nlohmann::json>)> callback) {
  impl_->Subscribe(std::move(callback));
}
void GatewayFeed::AddRoutes(common::HttpRouter& router) { impl_->AddRoutes(router); }

}  // namespace triplane::control
