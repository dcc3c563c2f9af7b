#pragma once

// What the gateway limits and for whom: a LimitPolicy (requests per minute, tokens per
// minute/day/month) attached to a scope ("key:<id>" or "team:<name>"). The counters that
// enforce policies live in limit_counters.h.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace triplane::gateway {

// Limits of one scope. 0 means unlimited (and that counter is not kept); negative
// values are invalid.
struct LimitPolicy {
  int64_t requests_per_minute = 0;
  int64_t tokens_per_minute = 0;
  int64_t tokens_per_day = 0;
  int64_t tokens_per_month = 0;
};

// One party a request is charged to: its API key or its team.
struct LimitSubject {
  std::string scope;  // "key:<id>" or "team:<name>"; any printable ASCII without spaces
  LimitPolicy policy;
};

// The four counted quantities. Every kind counts in a fixed UTC-aligned window
// (limit_window.h): the minute (epoch seconds / 60), the UTC day or the UTC month.
enum class LimitKind { kRequestsPerMinute, kTokensPerMinute, kTokensPerDay, kTokensPerMonth };

inline constexpr LimitKind kAllLimitKinds[] = {
    LimitKind::kRequestsPerMinute, LimitKind::kTokensPerMinute, LimitKind::kTokensPerDay,
    LimitKind::kTokensPerMonth};

// "requests_per_minute", "tokens_per_minute", "tokens_per_day" or "tokens_per_month":
// the LimitPolicy field name, used in refusal reasons.
std::string_view LimitKindName(LimitKind kind);

// The policy's limit for `kind` (0: unlimited).
int64_t LimitOf(const LimitPolicy& policy, LimitKind kind);

// True for the kinds that count tokens (all but kRequestsPerMinute).
inline bool CountsTokens(LimitKind kind) { return kind != LimitKind::kRequestsPerMinute; }

// OK when `scope` is 1 to 256 printable ASCII characters without spaces; else
// InvalidArgument naming the problem.
[[nodiscard]] absl::Status ValidateScope(std::string_view scope);

// OK when every scope is valid, no scope repeats and no limit is negative; else
// InvalidArgument naming the first bad subject.
[[nodiscard]] absl::Status ValidateSubjects(std::span<const LimitSubject> subjects);

}  // namespace triplane::gateway
