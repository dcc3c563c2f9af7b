#include "gateway/limits/redis_counters.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "common/strings.h"
#include "fmt/format.h"
#include "gateway/limits/limit_plan.h"
#include "gateway/limits/limit_window.h"
#include "spdlog/spdlog.h"

namespace triplane::gateway {
namespace {

// KEYS: the counters. ARGV: limit, delta, ttl in ms for each key, in KEYS order.
// Returns {allowed (0/1), value of KEYS[1] before, value of KEYS[2] before, ...}. Reads
// everything first so that a refusal changes nothing.
constexpr std::string_view kReserveScript = R"lua(
local current = {}
local allowed = 1
for i = 1, #KEYS do
  current[i] = tonumber(redis.call('GET', KEYS[i]) or '0')
  if current[i] + tonumber(ARGV[3 * i - 1]) > tonumber(ARGV[3 * i - 2]) then
    allowed = 0
  end
end
if allowed == 1 then
  for i = 1, #KEYS do
    redis.call('INCRBY', KEYS[i], ARGV[3 * i - 1])
    redis.call('PEXPIRE', KEYS[i], ARGV[3 * i])
  end
end
local reply = {allowed}
for i = 1, #KEYS do
  reply[i + 1] = current[i]
end
return reply
)lua";

// KEYS: token counters. ARGV[1]: actual - reserved. Adjusts the counters that still
// exist, never below 0, keeping their TTL; an expired window is left alone.
constexpr std::string_view kSettleScript = R"lua(
local delta = tonumber(ARGV[1])
for i = 1, #KEYS do
  local value = redis.call('GET', KEYS[i])
  if value then
    if tonumber(value) + delta < 0 then
      redis.call('SET', KEYS[i], '0', 'KEEPTTL')
    else
      redis.call('INCRBY', KEYS[i], ARGV[1])
    end
  end
end
return 1
)lua";

// KEYS: token counters. ARGV[1]: tokens; ARGV[1 + i]: ttl in ms of KEYS[i], only ever
// lengthened.
constexpr std::string_view kAddUsageScript = R"lua(
for i = 1, #KEYS do
  redis.call('INCRBY', KEYS[i], ARGV[1])
  if redis.call('PTTL', KEYS[i]) < tonumber(ARGV[1 + i]) then
    redis.call('PEXPIRE', KEYS[i], ARGV[1 + i])
  end
end
return 1
)lua";

std::string Millis(absl::Duration d) { return std::to_string(absl::ToInt64Milliseconds(d)); }

}  // namespace

absl::StatusOr<std::unique_ptr<RedisCounters>> RedisCounters::Create(RedisCountersOptions options) {
  absl::StatusOr<std::unique_ptr<RedisClient>> client =
      RedisClient::Create(options.url, options.client);
  if (!client.ok()) return client.status();
  return std::unique_ptr<RedisCounters>(new RedisCounters(std::move(options), *std::move(client)));
}

RedisCounters::RedisCounters(RedisCountersOptions options, std::unique_ptr<RedisClient> client)
    : options_(std::move(options)), client_(std::move(client)) {}

absl::StatusOr<LimitDecision> RedisCounters::Reserve(std::span<const LimitSubject> subjects,
                                                     int64_t tokens, absl::Time now,
                                                     Reservation* out) {
  *out = Reservation{};
  absl::StatusOr<ReservationPlan> plan = PlanReservation(subjects, tokens, now);
  if (!plan.ok()) return plan.status();
  if (plan->refusal.has_value()) return *std::move(plan->refusal);
  if (plan->charges.empty()) return LimitDecision{};  // nothing is limited

  std::vector<std::string> keys;
  std::vector<std::string> args;
  keys.reserve(plan->charges.size());
  args.reserve(3 * plan->charges.size());
  for (const CounterCharge& charge : plan->charges) {
    keys.push_back(options_.key_prefix + charge.counter);
    args.push_back(std::to_string(charge.limit));
    args.push_back(std::to_string(charge.delta));
    args.push_back(Millis(charge.ttl));
  }
  absl::StatusOr<RedisValue> reply = RunScript(Script::kReserve, keys, args);
  if (reply.ok() && (reply->type != RedisValue::Type::kArray ||
                     reply->elements.size() != plan->charges.size() + 1)) {
    reply = absl::UnavailableError(
        fmt::format("redis {}: unexpected reply to the reserve script", client_->address()));
  }
  if (!reply.ok()) {
    if (options_.fail_mode == FailMode::kClosed) {
      return absl::UnavailableError(
          fmt::format("limit counters unavailable: {}", common::ToStd(reply.status().message())));
    }
    WarnThrottled(reply.status());
    return LimitDecision{
        .note = fmt::format("limits not enforced: {}", common::ToStd(reply.status().message()))};
  }
  std::vector<int64_t> current;
  current.reserve(plan->charges.size());
  for (size_t i = 1; i < reply->elements.size(); ++i) {
    current.push_back(reply->elements[i].integer);
  }
  // The script applied the same rule; Decide() recomputes it for the reason and headers.
  LimitDecision decision = Decide(subjects, plan->charges, current, now);
  const bool script_allowed = reply->elements[0].integer == 1;
  if (decision.allowed != script_allowed) {
    return absl::InternalError("the reserve script and Decide() disagree");
  }
  if (decision.allowed) *out = ReservationFor(plan->charges, tokens);
  return decision;
}

absl::Status RedisCounters::Settle(const Reservation& reservation, int64_t actual_tokens) {
  if (actual_tokens < 0) {
    return absl::InvalidArgumentError(fmt::format("actual tokens are negative: {}", actual_tokens));
  }
  const int64_t delta = actual_tokens - reservation.tokens;
  if (delta == 0 || reservation.token_counters.empty()) return absl::OkStatus();
  std::vector<std::string> keys;
  keys.reserve(reservation.token_counters.size());
  for (const std::string& counter : reservation.token_counters) {
    keys.push_back(options_.key_prefix + counter);
  }
  const std::string args[] = {std::to_string(delta)};
  absl::StatusOr<RedisValue> reply = RunScript(Script::kSettle, keys, args);
  return reply.ok() ? absl::OkStatus() : reply.status();
}

absl::Status RedisCounters::AddUsage(std::string_view scope, int64_t tokens, absl::Time at) {
  if (absl::Status s = ValidateScope(scope); !s.ok()) return s;
  if (tokens < 0) {
    return absl::InvalidArgumentError(fmt::format("usage tokens are negative: {}", tokens));
  }
  std::vector<std::string> keys;
  std::vector<std::string> args = {std::to_string(tokens)};
  for (const LimitKind kind : kAllLimitKinds) {
    if (!CountsTokens(kind)) continue;
    const LimitWindow window = WindowOf(kind, at);
    keys.push_back(options_.key_prefix + CounterName(kind, window, scope));
    args.push_back(Millis(CounterTtl(window, at)));
  }
  absl::StatusOr<RedisValue> reply = RunScript(Script::kAddUsage, keys, args);
  return reply.ok() ? absl::OkStatus() : reply.status();
}

absl::StatusOr<int64_t> RedisCounters::Usage(std::string_view scope, LimitKind kind,
                                             absl::Time at) {
  const std::string argv[] = {"GET",
                              options_.key_prefix + CounterName(kind, WindowOf(kind, at), scope)};
  absl::StatusOr<RedisValue> reply = client_->Command(argv);
  if (!reply.ok()) return reply.status();
  if (reply->type == RedisValue::Type::kNil) return 0;
  int64_t value = 0;
  if (reply->type != RedisValue::Type::kString || !absl::SimpleAtoi(reply->str, &value)) {
    return absl::InternalError(
        fmt::format("redis {}: counter {} is not an integer", client_->address(), argv[1]));
  }
  return value;
}

absl::StatusOr<RedisValue> RedisCounters::RunScript(Script script,
                                                    std::span<const std::string> keys,
                                                    std::span<const std::string> args) {
  const size_t index = static_cast<size_t>(script);
  static constexpr std::string_view kSources[kScriptCount] = {kReserveScript, kSettleScript,
                                                              kAddUsageScript};
  const std::string_view source = kSources[index];
  std::string sha;
  {
    absl::MutexLock lock(&mu_);
    sha = script_shas_[index];
  }
  if (sha.empty()) {
    const std::string load[] = {"SCRIPT", "LOAD", std::string(source)};
    absl::StatusOr<RedisValue> loaded = client_->Command(load);
    if (!loaded.ok()) return loaded.status();
    if (loaded->type != RedisValue::Type::kString) {
      return absl::UnavailableError(
          fmt::format("redis {}: SCRIPT LOAD failed: {}", client_->address(), loaded->str));
    }
    sha = loaded->str;
    absl::MutexLock lock(&mu_);
    script_shas_[index] = sha;
  }
  std::vector<std::string> argv = {"EVALSHA", sha, std::to_string(keys.size())};
  argv.insert(argv.end(), keys.begin(), keys.end());
  argv.insert(argv.end(), args.begin(), args.end());
  absl::StatusOr<RedisValue> reply = client_->Command(argv);
  if (reply.ok() && reply->type == RedisValue::Type::kError && reply->str.starts_with("NOSCRIPT")) {
    // Redis restarted (or flushed its script cache): EVAL runs and caches it again.
    argv[0] = "EVAL";
    argv[1] = std::string(source);
    reply = client_->Command(argv);
  }
  if (reply.ok() && reply->type == RedisValue::Type::kError) {
    return absl::UnavailableError(
        fmt::format("redis {}: script failed: {}", client_->address(), reply->str));
  }
  return reply;
}

void RedisCounters::WarnThrottled(const absl::Status& status) {
  const absl::Time now = absl::Now();
  {
    absl::MutexLock lock(&mu_);
    if (now - last_warning_ < absl::Seconds(10)) return;
    last_warning_ = now;
  }
  spdlog::warn("limit counters: {}; allowing requests without limits (fail mode open)",
               common::ToStd(status.message()));
}

}  // namespace triplane::gateway
