#include "gateway/limits/limit_policy.h"

#include <string>
#include <unordered_set>

#include "fmt/format.h"

namespace triplane::gateway {

std::string_view LimitKindName(LimitKind kind) {
  switch (kind) {
    case LimitKind::kRequestsPerMinute:
      return "requests_per_minute";
    case LimitKind::kTokensPerMinute:
      return "tokens_per_minute";
    case LimitKind::kTokensPerDay:
      return "tokens_per_day";
    case LimitKind::kTokensPerMonth:
      return "tokens_per_month";
  }
  return "unknown";
}

int64_t LimitOf(const LimitPolicy& policy, LimitKind kind) {
  switch (kind) {
    case LimitKind::kRequestsPerMinute:
      return policy.requests_per_minute;
    case LimitKind::kTokensPerMinute:
      return policy.tokens_per_minute;
    case LimitKind::kTokensPerDay:
      return policy.tokens_per_day;
    case LimitKind::kTokensPerMonth:
      return policy.tokens_per_month;
  }
  return 0;
}

absl::Status ValidateScope(std::string_view scope) {
  if (scope.empty() || scope.size() > 256) {
    return absl::InvalidArgumentError(
        fmt::format("limit scope must be 1 to 256 characters, got {}", scope.size()));
  }
  for (const char c : scope) {
    if (c <= ' ' || c > '~') {
      return absl::InvalidArgumentError("limit scope must be printable ASCII without spaces");
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateSubjects(std::span<const LimitSubject> subjects) {
  std::unordered_set<std::string_view> seen;
  for (const LimitSubject& subject : subjects) {
    if (absl::Status s = ValidateScope(subject.scope); !s.ok()) return s;
    if (!seen.insert(subject.scope).second) {
      return absl::InvalidArgumentError(
          fmt::format("limit scope {} appears twice in one request", subject.scope));
    }
    for (const LimitKind kind : kAllLimitKinds) {
      if (LimitOf(subject.policy, kind) < 0) {
        return absl::InvalidArgumentError(
            fmt::format("{} of {} is negative", LimitKindName(kind), subject.scope));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace triplane::gateway
