#include "gateway/limits/limit_window.h"

#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace triplane::gateway {
namespace {

absl::Time WindowUtc(int y, int mo, int d, int h, int mi, int s) {
  return absl::FromCivil(absl::CivilSecond(y, mo, d, h, mi, s), absl::UTCTimeZone());
}

TEST(LimitWindowTest, MinuteIsEpochSecondsOverSixty) {
  const LimitWindow w = WindowOf(LimitKind::kTokensPerMinute, absl::FromUnixSeconds(179));
  EXPECT_EQ(w.id, "2");
  EXPECT_EQ(w.start, absl::FromUnixSeconds(120));
  EXPECT_EQ(w.end, absl::FromUnixSeconds(180));
  EXPECT_EQ(WindowOf(LimitKind::kRequestsPerMinute, absl::FromUnixSeconds(180)).id, "3");
  EXPECT_EQ(
      WindowOf(LimitKind::kRequestsPerMinute, absl::FromUnixSeconds(180) - absl::Nanoseconds(1)).id,
      "2");
}

TEST(LimitWindowTest, DayIsTheUtcDay) {
  const LimitWindow w = WindowOf(LimitKind::kTokensPerDay, WindowUtc(2026, 3, 15, 23, 59, 59));
  EXPECT_EQ(w.id, "20527");  // days since 1970-01-01
  EXPECT_EQ(w.start, WindowUtc(2026, 3, 15, 0, 0, 0));
  EXPECT_EQ(w.end, WindowUtc(2026, 3, 16, 0, 0, 0));
}

TEST(LimitWindowTest, MonthIsTheUtcCalendarMonth) {
  const LimitWindow december = WindowOf(LimitKind::kTokensPerMonth, WindowUtc(2026, 12, 31, 23, 59, 59));
  EXPECT_EQ(december.id, "2026-12");
  EXPECT_EQ(december.start, WindowUtc(2026, 12, 1, 0, 0, 0));
  EXPECT_EQ(december.end, WindowUtc(2027, 1, 1, 0, 0, 0));
  const LimitWindow leap = WindowOf(LimitKind::kTokensPerMonth, WindowUtc(2028, 2, 29, 12, 0, 0));
  EXPECT_EQ(leap.id, "2028-02");
  EXPECT_EQ(leap.end, WindowUtc(2028, 3, 1, 0, 0, 0));
}

TEST(LimitWindowTest, CounterNamesCarryKindWindowAndScope) {
  const absl::Time t = absl::FromUnixSeconds(120);
  EXPECT_EQ(
      CounterName(LimitKind::kTokensPerMinute, WindowOf(LimitKind::kTokensPerMinute, t), "key:k1"),
      "tpm:2:key:k1");
  EXPECT_EQ(CounterName(LimitKind::kRequestsPerMinute, WindowOf(LimitKind::kRequestsPerMinute, t),
                        "team:a"),
            "rpm:2:team:a");
  EXPECT_EQ(
      CounterName(LimitKind::kTokensPerMonth, WindowOf(LimitKind::kTokensPerMonth, t), "team:a"),
      "tpmo:1970-01:team:a");
}

TEST(LimitWindowTest, CountersLiveAMinuteBeyondTheirWindow) {
  const absl::Time t = absl::FromUnixSeconds(150);
  EXPECT_EQ(CounterTtl(WindowOf(LimitKind::kTokensPerMinute, t), t), absl::Seconds(90));
  EXPECT_EQ(CounterTtl(WindowOf(LimitKind::kTokensPerDay, t), t), absl::Seconds(86400 - 150 + 60));
}

}  // namespace
}  // namespace triplane::gateway
