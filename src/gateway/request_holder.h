#pragma once

// Scale from zero: a request for a model that has no ready instance, but a deployment
// that scales to zero, is held here instead of failing. The holder tells the deployments
// there is demand (`wake`, every `wake_every` while requests wait) and releases each held
// request as soon as the gateway's snapshot lists an upstream for its model; one still
// waiting after `timeout` is answered 503 with Retry-After.
//
// One thread polls the snapshot (every 100 ms) while anything is held; release and wake
// run on it. Thread-safe.

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/http_server.h"
#include "gateway/gateway_state.h"

namespace triplane::gateway {

struct RequestHolderOptions {
  absl::Duration timeout = absl::Seconds(60);
  absl::Duration wake_every = absl::Seconds(2);
  // Tells the control plane a deployment has waiting requests (in-process in `serve`,
  // POST /admin/v1/deployments/{name}/wake from a split gateway). May block briefly.
  std::function<void(const std::string& deployment)> wake;
  size_t max_held = 10000;  // beyond this, new requests are answered 503 at once
};

class RequestHolder {
 public:
  RequestHolder(const GatewayState& state, RequestHolderOptions options);
  ~RequestHolder();  // Close().

  RequestHolder(const RequestHolder&) = delete;
  RequestHolder& operator=(const RequestHolder&) = delete;

  // Holds `responder`'s request for `model` (woken through `deployments`); `release`
  // runs once the model has an upstream (then the caller handles the request again).
  void Hold(std::string model, std::vector<std::string> deployments,
            std::shared_ptr<common::Responder> responder, std::function<void()> release);

  size_t held() const;

  // Answers what is still held with 503 and stops; later requests get a 503 at once.
  // Call it before the server drains (a held request would hold the drain up).
  void Close();

 private:
  struct Held {
    std::string model;
    std::vector<std::string> deployments;
    std::shared_ptr<common::Responder> responder;
    std::function<void()> release;
    absl::Time deadline;
  };

  void Loop();

  const GatewayState& state_;
  const RequestHolderOptions options_;
  mutable absl::Mutex mu_;
  std::vector<Held> held_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace triplane::gateway
