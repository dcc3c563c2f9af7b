#include "gateway/limits/limit_counters.h"

#include <memory>
#include <string>

#include "gateway/limits/in_process_counters.h"
#include "gateway/limits/redis_counters.h"

namespace triplane::gateway {

absl::StatusOr<std::unique_ptr<LimitCounters>> MakeLimitCounters(std::string_view url,
                                                                 FailMode fail_mode) {
  if (url.empty() || url == "memory") return std::make_unique<InProcessCounters>();
  if (url.starts_with("redis://")) {
    absl::StatusOr<std::unique_ptr<RedisCounters>> redis =
        RedisCounters::Create({.url = std::string(url), .fail_mode = fail_mode});
    if (!redis.ok()) return redis.status();
    return std::unique_ptr<LimitCounters>(*std::move(redis));
  }
  return absl::InvalidArgumentError(
      "limit counters URL must be empty, \"memory\" or redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]");
}

}  // namespace triplane::gateway
