#pragma once

// Forwards the public OpenAI API (`/v1/*`) to engine instances: the request goes to one
// ready instance of the model it names, and the answer (a JSON body or an SSE stream)
// is relayed chunk by chunk as it arrives, never buffered whole.
//
// Instance choice: the least outstanding requests among the model's ready upstreams,
// picked and counted in one step (so that concurrent requests spread out), ties broken
// round-robin. An upstream that fails before sending its response head is retried on
// another one (up to `max_attempts`); a failure after the head ends the stream with an
// SSE error event (or a truncated body for non-streamed answers). A client that goes
// away cancels the upstream request.
//
// This is the gateway's routing core. `triplane serve` mounts it without
// authentication until API keys and limits land (issue 6).

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/http_client.h"
#include "common/http_router.h"

namespace triplane::gateway {

struct Upstream {
  std::string id;   // instance id, for logs and load accounting
  std::string url;  // "http://127.0.0.1:PORT"
};

// What the proxy knows of a model when a request names it.
struct ModelRoute {
  bool known = false;               // some deployment serves this model
  std::vector<Upstream> upstreams;  // its ready instances (may be empty while starting)
};

struct ProxyOptions {
  common::HttpClient* client = nullptr;                      // required; outlives the proxy
  std::function<ModelRoute(std::string_view model)> route;   // required; must not block long
  std::function<std::vector<std::string>()> served_models;   // GET /v1/models; required
  int max_attempts = 3;
};

class Proxy {
 public:
  explicit Proxy(ProxyOptions options);
  ~Proxy();

  Proxy(const Proxy&) = delete;
  Proxy& operator=(const Proxy&) = delete;

  // GET /v1/models, GET /v1/models/{model}, POST /v1/chat/completions, /v1/completions,
  // /v1/embeddings. The Proxy must outlive the server.
  void AddRoutes(common::HttpRouter& router);

  // Requests currently forwarded to `upstream_id` (for tests and metrics).
  int64_t Outstanding(std::string_view upstream_id) const;

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace triplane::gateway
