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
#include <map>
#include <set>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/http_client.h"
#include "common/http_router.h"
#include "nlohmann/json.hpp"

namespace triplane::gateway {

struct Upstream {
  std::string id;       // instance id, for logs and load accounting
  std::string url;      // "http://127.0.0.1:PORT"; for an external backend its API root
  std::string version;  // the model version it serves (canary weights)
  std::string deployment;  // "" for an external backend
  // An external OpenAI-compatible server: `url` is its API root ("https://host/v1") and
  // the request goes to url + "/chat/completions"; `remote_model` (when set) replaces the
  // body's model; `api_key` (when set) is sent as `Authorization: Bearer`. It is never
  // logged. A 401 or 403 from it is the gateway's problem, not the client's: answered 502.
  bool external = false;
  std::string remote_model;
  std::string api_key;
};

// How to choose among a model's instances, beyond "least outstanding requests".
struct RouteHints {
  // Affinity: the same key goes to the same instance (rendezvous hashing) while that
  // instance has at most `kAffinitySlack` more requests in flight than the least busy
  // one. The session id (x-session-id) wins over the prompt prefix.
  std::string session;
  std::string prefix;  // the first bytes of the prompt: same prefix, same prefix cache
  // Canary: version -> weight (any positive numbers); empty: every version alike.
  std::map<std::string, double> version_weights;
};

inline constexpr int64_t kAffinitySlack = 2;

// The choice itself, separated for tests: among `upstreams` not in `tried`, with
// `load(id)` requests in flight and `random` uniform in [0, 1) for the weighted version
// draw, and `rotation` to break ties. Null when none is left.
const Upstream* ChooseUpstream(const std::vector<Upstream>& upstreams,
                               const std::set<std::string>& tried,
                               const std::function<int64_t(const std::string&)>& load,
                               const RouteHints& hints, double random, uint64_t rotation);

// What the proxy knows of a model when a request names it.
struct ModelRoute {
  bool known = false;               // some deployment serves this model
  std::vector<Upstream> upstreams;  // its ready instances (may be empty while starting)
};

// What came of one forwarded request, for accounting (usage ledger, limits).
struct ForwardResult {
  int status = 0;          // what the client got (0: it went away before an answer)
  std::string instance;    // the upstream that answered ("" when none did)
  std::string version;     // its model version and deployment
  std::string deployment;
  bool usage_seen = false;  // the engine reported usage (always asked for)
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t cached_tokens = 0;
  double ttft_seconds = 0;     // first byte of the answer
  double latency_seconds = 0;  // last byte
  bool stream = false;
  std::string error;  // why it failed, when it did
};

// One request to forward (Proxy::Forward).
struct ForwardRequest {
  std::string model;
  nlohmann::json body;  // as the client sent it; the proxy adds stream_options.include_usage
  std::vector<Upstream> upstreams;  // the model's ready instances, best first or any order
  common::HttpHeaders extra_headers;  // added to the answer's head (e.g. x-ratelimit-*)
  RouteHints hints;
  // Called once when the exchange is over, on a client I/O thread; must not block.
  std::function<void(const ForwardResult&)> on_complete;
};

struct ProxyOptions {
  common::HttpClient* client = nullptr;                      // required; outlives the proxy
  // For the routes AddRoutes() adds (not needed by Forward callers).
  std::function<ModelRoute(std::string_view model)> route;   // must not block long
  std::function<std::vector<std::string>()> served_models;   // GET /v1/models
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

  // Sends `request` to one of its upstreams and relays the answer to `responder`. Usage
  // is always asked of the engine (stream_options.include_usage) and the usage-only chunk
  // is left out of the stream when the client did not ask for it.
  void Forward(std::shared_ptr<common::Responder> responder, ForwardRequest request);

  // Requests currently forwarded to `upstream_id` (for tests and metrics).
  int64_t Outstanding(std::string_view upstream_id) const;

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace triplane::gateway
