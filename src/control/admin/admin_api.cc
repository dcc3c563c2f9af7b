#include "control/admin/admin_api.h"

#include <algorithm>
#include <atomic>
#include <list>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/http_server.h"
#include "common/openai_error.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "common/thread_pool.h"
#include "control/admin/admin_internal.h"
#include "control/admin/api_keys.h"
#include "fmt/format.h"
#include "spdlog/spdlog.h"

namespace triplane::control {

using common::HttpMethod;
using common::HttpRequest;
using common::HttpResponse;
using common::Responder;
using namespace admin_internal;

namespace {

constexpr int64_t kDefaultWatchSeconds = 30;
// How often a waiting watch looks at the stop flag and the client's connection.
constexpr absl::Duration kWatchSlice = absl::Milliseconds(500);

}  // namespace

absl::StatusOr<ApiKey> AuthenticateAdmin(Store& store, const HttpRequest& request) {
  const std::string_view presented = common::PresentedApiKey(request);
  if (presented.empty()) {
    return absl::UnauthenticatedError(
        "Missing API key: send `Authorization: Bearer KEY` or `x-api-key: KEY`.");
  }
  const absl::Status invalid = absl::UnauthenticatedError("Invalid API key.");
  if (!LooksLikeApiKey(presented)) return invalid;
  absl::StatusOr<ApiKey> key = store.GetApiKeyByDigest(ApiKeyDigest(presented));
  if (absl::IsNotFound(key.status())) return invalid;
  if (!key.ok()) return key.status();
  if (key->revoked_at.has_value()) {
    return absl::UnauthenticatedError("This API key has been revoked.");
  }
  if (key->expires_at.has_value() && *key->expires_at <= absl::Now()) {
    return absl::UnauthenticatedError("This API key has expired.");
  }
  if (key->role != KeyRole::kAdmin) {
    return absl::PermissionDeniedError("The admin API needs an admin key.");
  }
  return key;
}

class AdminApi::Impl {
 public:
  explicit Impl(AdminApiOptions options)
      : options_(std::move(options)),
        services_{.store = *options_.store,
                  .repository = *options_.repository,
                  .on_deployments_changed = options_.on_deployments_changed,
                  .capacity = options_.capacity,
                  .metrics = options_.metrics,
                  .wake = options_.wake},
        pool_(std::max(1, options_.worker_threads), "admin-api") {
    for (auto* area : {&ModelRoutes, &DeploymentRoutes, &AccessRoutes, &ConfigRoutes, &UsageRoutes,
                       &BackendRoutes, &MetricsRoutes, &RolloutRoutes}) {
      for (Route& route : (*area)(services_)) routes_.push_back(std::move(route));
    }
  }

  ~Impl() {
    std::list<std::unique_ptr<Watch>> watches;
    {
      absl::MutexLock lock(&watch_mu_);
      stopping_ = true;
      watches.swap(watches_);
    }
    // Each watch notices the flag within one slice (kWatchSlice) and answers.
    for (const auto& watch : watches) watch->thread.join();
    pool_.Shutdown();
  }

  void AddRoutes(common::HttpRouter& router) {
    for (const Route& route : routes_) {
      const RouteHandler* handler = &route.handler;  // routes_ never changes after construction
      router.Add(route.method, route.pattern,
                 common::HttpHandler([this, handler](std::shared_ptr<Responder> responder) {
                   Dispatch(std::move(responder), *handler);
                 }));
    }
    // Listed after config/{key...}: the literal segment wins over the rest parameter.
    router.Add(HttpMethod::kGet, "/admin/v1/config/watch",
               common::HttpHandler([this](std::shared_ptr<Responder> responder) {
                 StartWatch(std::move(responder));
               }));
  }

 private:
  struct Watch {
    std::thread thread;
    std::atomic<bool> done{false};
  };

  // Runs the route on the pool: authentication and the store work both block.
  void Dispatch(std::shared_ptr<Responder> responder, const RouteHandler& handler) {
    auto task = [this, responder, &handler] {
      responder->Send(Handle(responder->request(), handler));
    };
    if (!pool_.Submit(std::move(task))) {
      responder->Send(ErrorResponse(absl::UnavailableError("the admin API is shutting down")));
    }
  }

  HttpResponse Handle(const HttpRequest& request, const RouteHandler& handler) {
    absl::StatusOr<ApiKey> key = Authenticate(request);
    if (!key.ok()) return ErrorResponse(key.status());
    const Call call{.request = request, .write = {.actor = key->id}};
    Result result = handler(call);
    if (!result.ok()) return ErrorResponse(result.status());
    if (request.method != HttpMethod::kGet && options_.on_change) options_.on_change();
    if (!result->content_type.empty()) {
      return HttpResponse::Text(result->status, std::move(result->text), result->content_type);
    }
    return HttpResponse::Json(result->status, result->body);
  }

  absl::StatusOr<ApiKey> Authenticate(const HttpRequest& request) {
    return AuthenticateAdmin(services_.store, request);
  }

  // Long polls wait on threads of their own so that they never hold a pool worker.
  void StartWatch(std::shared_ptr<Responder> responder) {
    absl::MutexLock lock(&watch_mu_);
    // Join watches that have answered (their threads are ending or ended).
    for (auto it = watches_.begin(); it != watches_.end();) {
      if ((*it)->done) {
        (*it)->thread.join();
        it = watches_.erase(it);
      } else {
        ++it;
      }
    }
    if (stopping_) {
      responder->Send(ErrorResponse(absl::UnavailableError("the admin API is shutting down")));
      return;
    }
    if (static_cast<int>(watches_.size()) >= options_.max_watches) {
      responder->Send(ErrorResponse(absl::UnavailableError(fmt::format(
          "too many open config watches (at most {}); retry shortly", options_.max_watches))));
      return;
    }
    auto watch = std::make_unique<Watch>();
    Watch* w = watch.get();
    w->thread = std::thread([this, w, responder = std::move(responder)] {
      responder->Send(RunWatch(*responder));
      w->done = true;
    });
    watches_.push_back(std::move(watch));
  }

  HttpResponse RunWatch(Responder& responder) {
    const HttpRequest& request = responder.request();
    absl::StatusOr<ApiKey> key = Authenticate(request);
    if (!key.ok()) return ErrorResponse(key.status());
    absl::StatusOr<std::optional<int64_t>> since = QueryInt(request, "since", 0, INT64_MAX);
    if (!since.ok()) return ErrorResponse(since.status());
    absl::StatusOr<std::optional<int64_t>> timeout = QueryInt(request, "timeout", 0, INT64_MAX);
    if (!timeout.ok()) return ErrorResponse(timeout.status());
    const int64_t seconds =
        std::min<int64_t>(timeout->value_or(kDefaultWatchSeconds), options_.max_watch_seconds);
    Result result =
        WatchConfig(services_.store, since->value_or(0), absl::Seconds(seconds), kWatchSlice,
                    [this, &responder] { return stopping() || responder.IsCancelled(); });
    if (!result.ok()) return ErrorResponse(result.status());
    return HttpResponse::Json(result->status, result->body);
  }

  bool stopping() {
    absl::MutexLock lock(&watch_mu_);
    return stopping_;
  }

  const AdminApiOptions options_;
  const Services services_;
  std::vector<Route> routes_;  // fixed after construction; handlers point into it
  common::ThreadPool pool_;

  absl::Mutex watch_mu_;
  std::list<std::unique_ptr<Watch>> watches_ ABSL_GUARDED_BY(watch_mu_);
  bool stopping_ ABSL_GUARDED_BY(watch_mu_) = false;
};

AdminApi::AdminApi(AdminApiOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

AdminApi::~AdminApi() = default;

void AdminApi::AddRoutes(common::HttpRouter& router) { impl_->AddRoutes(router); }

}  // namespace triplane::control
