#include "gateway/request_holder.h"

#include <map>
#include <set>

#include "common/openai_error.h"
#include "fmt/format.h"

namespace triplane::gateway {
namespace {

constexpr absl::Duration kPoll = absl::Milliseconds(100);

common::HttpResponse StillStarting(const std::string& model) {
  common::HttpResponse response = common::OpenAiErrorResponse(
      503, fmt::format("model '{}' is scaled to zero and no instance became ready in time; retry shortly", model));
  response.headers.Set("retry-after", "5");
  return response;
}

}  // namespace

RequestHolder::RequestHolder(const GatewayState& state, RequestHolderOptions options)
    : state_(state), options_(std::move(options)) {
  thread_ = std::thread([this] { Loop(); });
}

RequestHolder::~RequestHolder() { Close(); }

void RequestHolder::Close() {
  std::vector<Held> held;
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
  {
    absl::MutexLock lock(&mu_);
    held.swap(held_);
  }
  for (Held& h : held) h.responder->Send(StillStarting(h.model));
}

void RequestHolder::Hold(std::string model, std::vector<std::string> deployments,
                         std::shared_ptr<common::Responder> responder, std::function<void()> release) {
  {
    absl::MutexLock lock(&mu_);
    if (!stop_ && held_.size() < options_.max_held) {
      held_.push_back({.model = std::move(model),
                       .deployments = std::move(deployments),
                       .responder = std::move(responder),
                       .release = std::move(release),
                       .deadline = absl::Now() + options_.timeout});
      return;
    }
  }
  responder->Send(StillStarting(model));
}

size_t RequestHolder::held() const {
  absl::MutexLock lock(&mu_);
  return held_.size();
}

void RequestHolder::Loop() {
  std::map<std::string, absl::Time> last_wake;  // by deployment
  while (true) {
    std::vector<Held> ready, expired;
    std::set<std::string> to_wake;
    {
      absl::MutexLock lock(&mu_);
      auto has_work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || !held_.empty(); };
      mu_.Await(absl::Condition(&has_work));
      if (stop_) return;
      const std::shared_ptr<const GatewaySnapshot> snapshot = state_.Get();
      const absl::Time now = absl::Now();
      std::vector<Held> waiting;
      for (Held& h : held_) {
        const auto route = snapshot->models.find(h.model);
        if (h.responder->IsCancelled()) {
          continue;  // the client went away: nothing to answer
        }
        if (route != snapshot->models.end() && !route->second.empty()) {
          ready.push_back(std::move(h));
        } else if (now >= h.deadline) {
          expired.push_back(std::move(h));
        } else {
          for (const std::string& d : h.deployments) {
            if (now - last_wake[d] >= options_.wake_every) to_wake.insert(d);
          }
          waiting.push_back(std::move(h));
        }
      }
      held_.swap(waiting);
      for (const std::string& d : to_wake) last_wake[d] = now;
    }
    for (Held& h : ready) h.release();
    for (Held& h : expired) h.responder->Send(StillStarting(h.model));
    if (options_.wake) {
      for (const std::string& d : to_wake) options_.wake(d);
    }
    absl::MutexLock lock(&mu_);
    auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_; };
    mu_.AwaitWithTimeout(absl::Condition(&stopping), kPoll);
    if (stop_) return;
  }
}

}  // namespace triplane::gateway
