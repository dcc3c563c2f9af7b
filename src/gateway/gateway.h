#pragma once

// The public OpenAI-compatible API: who is calling, may they use this model, then the
// request goes to one of the model's ready instances through the Proxy, and what it cost
// is recorded. Everything a request needs is in the current GatewayState snapshot: no
// call to the control plane per request.
//
// Authentication: `Authorization: Bearer KEY` or `x-api-key: KEY`; the key's SHA-256 is
// looked up among the snapshot's unrevoked keys and compared in constant time. 401 for a
// missing, unknown or expired key (a revoked key is gone from the snapshot), 403 for a
// model the key may not use, 404 for a model no deployment serves.

#include <functional>
#include <memory>
#include <string>

#include "common/http_router.h"
#include "gateway/gateway_state.h"
#include "gateway/limits/limit_counters.h"
#include "gateway/proxy.h"
#include "gateway/request_holder.h"
#include "gateway/token_bound.h"

namespace triplane::gateway {

// One finished request, for the usage ledger.
struct UsageEvent {
  std::string request_id;
  absl::Time time;
  std::string key_id;
  std::string team;
  std::string model;
  std::string instance;
  std::string endpoint;  // "chat.completions", "completions", "embeddings"
  ForwardResult result;
  int64_t cost_micros = 0;  // from config `prices.MODEL`
};

struct GatewayServices {
  GatewayState* state = nullptr;  // required
  Proxy* proxy = nullptr;         // required
  // Receives every finished request (must not block: queue it).
  std::function<void(UsageEvent)> usage;
  // Enforces the config's limits (see LimitsFor); null: no limits.
  LimitCounters* limits = nullptr;
  // Holds requests for models scaled to zero until an instance is ready; null: such
  // requests fail at once like those of any model without a ready instance.
  RequestHolder* holder = nullptr;
};

class Gateway {
 public:
  explicit Gateway(GatewayServices services);

  // GET /v1/models, GET /v1/models/{model}, POST /v1/chat/completions, /v1/completions,
  // /v1/embeddings. The Gateway must outlive the server.
  void AddRoutes(common::HttpRouter& router);

 private:
  void Handle(std::shared_ptr<common::Responder> responder, std::string endpoint);
  common::HttpResponse Models(const common::HttpRequest& request, std::string_view one) const;

  GatewayServices options_;
};

// The limits a key is held to, from the config: `limits.key.<id>`, else `limits.default`,
// for the key; `limits.team.<name>` for its team. Each is an object with any of
// requests_per_minute, tokens_per_minute, tokens_per_day, tokens_per_month (0 or absent:
// unlimited). Subjects without any limit are left out.
std::vector<LimitSubject> LimitsFor(const GatewaySnapshot& snapshot, const KeyInfo& key);


// cost_micros of `prompt` and `completion` tokens under `price` ({"prompt_per_million",
// "completion_per_million"}, in currency units per million tokens); 0 when unpriced.
int64_t CostMicros(const nlohmann::json& price, int64_t prompt, int64_t completion);

}  // namespace triplane::gateway
