#include "gateway/limits/limit_window.h"

#include <algorithm>
#include <string>

#include "absl/time/civil_time.h"
#include "fmt/format.h"

namespace triplane::gateway {
namespace {

constexpr int64_t kSecondsPerMinute = 60;
constexpr int64_t kSecondsPerDay = 86400;

// floor(a / b) for b > 0; integer division truncates toward zero.
int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && (a < 0) ? 1 : 0); }

LimitWindow FixedWindow(absl::Time t, int64_t seconds) {
  const int64_t id = FloorDiv(absl::ToUnixSeconds(t), seconds);
  return {.id = std::to_string(id),
          .start = absl::FromUnixSeconds(id * seconds),
          .end = absl::FromUnixSeconds((id + 1) * seconds)};
}

std::string_view ShortName(LimitKind kind) {
  switch (kind) {
    case LimitKind::kRequestsPerMinute:
      return "rpm";
    case LimitKind::kTokensPerMinute:
      return "tpm";
    case LimitKind::kTokensPerDay:
      return "tpd";
    case LimitKind::kTokensPerMonth:
      return "tpmo";
  }
  return "unknown";
}

}  // namespace

LimitWindow WindowOf(LimitKind kind, absl::Time t) {
  switch (kind) {
    case LimitKind::kRequestsPerMinute:
    case LimitKind::kTokensPerMinute:
      return FixedWindow(t, kSecondsPerMinute);
    case LimitKind::kTokensPerDay:
      return FixedWindow(t, kSecondsPerDay);
    case LimitKind::kTokensPerMonth:
      break;
  }
  const absl::TimeZone utc = absl::UTCTimeZone();
  const absl::CivilMonth month(absl::ToCivilSecond(t, utc));
  return {.id = fmt::format("{:04}-{:02}", month.year(), month.month()),
          .start = absl::FromCivil(month, utc),
          .end = absl::FromCivil(month + 1, utc)};
}

absl::Duration CounterTtl(const LimitWindow& window, absl::Time now) {
  return std::max(window.end - now, absl::ZeroDuration()) + absl::Minutes(1);
}

std::string CounterName(LimitKind kind, const LimitWindow& window, std::string_view scope) {
  return fmt::format("{}:{}:{}", ShortName(kind), window.id, scope);
}

}  // namespace triplane::gateway
