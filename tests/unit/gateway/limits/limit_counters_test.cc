// One suite for every LimitCounters: InProcessCounters and RedisCounters on a real
// redis-server (tests/testing/redis_server.h).

#include "gateway/limits/limit_counters.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "gateway/limits/in_process_counters.h"
#include "gateway/limits/redis_counters.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/redis_server.h"

namespace triplane::gateway {
namespace {

using ::testing::HasSubstr;

enum class Store { kInProcess, kRedis };

absl::Time Utc(int y, int mo, int d, int h, int mi, int s) {
  return absl::FromCivil(absl::CivilSecond(y, mo, d, h, mi, s), absl::UTCTimeZone());
}

// 50 s before the end of a minute, mid-day, mid-month.
const absl::Time kNow = Utc(2026, 3, 15, 12, 30, 10);

class LimitCountersTest : public ::testing::TestWithParam<Store> {
 protected:
  void SetUp() override {
    if (GetParam() == Store::kInProcess) {
      first_ = std::make_unique<InProcessCounters>();
      return;
    }
    absl::StatusOr<testing::RedisServer*> server = testing::RedisServer::Shared();
    ASSERT_TRUE(server.ok()) << server.status();
    // Tests (and --gtest_repeat runs) share the server; a prefix per fixture keeps their
    // counters apart.
    static std::atomic<int> fixtures{0};
    const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
    prefix_ = std::string("test:") + info->name() + ":" + std::to_string(++fixtures) + ":";
    first_ = NewRedis((*server)->Url());
    second_ = NewRedis((*server)->Url());
  }

  std::unique_ptr<LimitCounters> NewRedis(const std::string& url) {
    absl::StatusOr<std::unique_ptr<RedisCounters>> counters =
        RedisCounters::Create({.url = url, .key_prefix = prefix_});
    EXPECT_TRUE(counters.ok()) << counters.status();
    return counters.ok() ? *std::move(counters) : nullptr;
  }

  LimitCounters& counters() { return *first_; }
  // A second gateway on the same store (Redis), or the same counters (in-process).
  LimitCounters& other_gateway() { return second_ != nullptr ? *second_ : *first_; }

  // Reserves and expects an answer (allowed or not).
  LimitDecision Reserve(const std::vector<LimitSubject>& subjects, int64_t tokens, absl::Time now,
                        Reservation* out = nullptr) {
    Reservation ignored;
    absl::StatusOr<LimitDecision> decision =
        counters().Reserve(subjects, tokens, now, out != nullptr ? out : &ignored);
    EXPECT_TRUE(decision.ok()) << decision.status();
    return decision.ok() ? *decision : LimitDecision{.allowed = false};
  }

  int64_t Usage(std::string_view scope, LimitKind kind, absl::Time at) {
    absl::StatusOr<int64_t> usage = counters().Usage(scope, kind, at);
    EXPECT_TRUE(usage.ok()) << usage.status();
    return usage.value_or(-1);
  }

  std::string prefix_;
  std::unique_ptr<LimitCounters> first_;
  std::unique_ptr<LimitCounters> second_;
};

TEST_P(LimitCountersTest, ChargesEveryWindowOfAnAllowedRequest) {
  const std::vector<LimitSubject> subjects = {{.scope = "key:k1",
                                               .policy = {.requests_per_minute = 10,
                                                          .tokens_per_minute = 1000,
                                                          .tokens_per_day = 5000,
                                                          .tokens_per_month = 90000}}};
  Reservation reservation;
  const LimitDecision decision = Reserve(subjects, 100, kNow, &reservation);
  EXPECT_TRUE(decision.allowed);
  EXPECT_TRUE(decision.violated.empty());
  EXPECT_EQ(Usage("key:k1", LimitKind::kRequestsPerMinute, kNow), 1);
  EXPECT_EQ(Usage("key:k1", LimitKind::kTokensPerMinute, kNow), 100);
  EXPECT_EQ(Usage("key:k1", LimitKind::kTokensPerDay, kNow), 100);
  EXPECT_EQ(Usage("key:k1", LimitKind::kTokensPerMonth, kNow), 100);
  EXPECT_EQ(reservation.tokens, 100);
  EXPECT_EQ(reservation.token_counters.size(), 3u);
  ASSERT_TRUE(decision.requests.has_value());
  EXPECT_EQ(decision.requests->limit, 10);
  EXPECT_EQ(decision.requests->remaining, 9);
  EXPECT_EQ(decision.requests->reset, absl::Seconds(50));
  ASSERT_TRUE(decision.tokens.has_value());
  EXPECT_EQ(decision.tokens->limit, 1000);
  EXPECT_EQ(decision.tokens->remaining, 900);
}

TEST_P(LimitCountersTest, RefusalChargesNoSubjectAtAll) {
  const std::vector<LimitSubject> subjects = {
      {.scope = "key:k1", .policy = {.requests_per_minute = 100, .tokens_per_minute = 10000}},
      {.scope = "team:t1", .policy = {.tokens_per_day = 150}}};
  EXPECT_TRUE(Reserve(subjects, 100, kNow).allowed);
  const LimitDecision refused = Reserve(subjects, 100, kNow);
  EXPECT_FALSE(refused.allowed);
  EXPECT_TRUE(refused.retryable);
  EXPECT_EQ(refused.violated, "tokens_per_day of team:t1");
  EXPECT_EQ(refused.retry_after, Utc(2026, 3, 16, 0, 0, 0) - kNow);
  EXPECT_THAT(refused.reason, HasSubstr("tokens_per_day of team:t1 is 150"));
  // The key's counters did not move either.
  EXPECT_EQ(Usage("key:k1", LimitKind::kRequestsPerMinute, kNow), 1);
  EXPECT_EQ(Usage("key:k1", LimitKind::kTokensPerMinute, kNow), 100);
  EXPECT_EQ(Usage("team:t1", LimitKind::kTokensPerDay, kNow), 100);
  // Requests still fit within what is left.
  EXPECT_TRUE(Reserve(subjects, 50, kNow).allowed);
  EXPECT_EQ(Usage("key:k1", LimitKind::kRequestsPerMinute, kNow), 2);
}

TEST_P(LimitCountersTest, RequestsPerMinuteResetsWithTheMinute) {
  const std::vector<LimitSubject> subjects = {
      {.scope = "key:k1", .policy = {.requests_per_minute = 2}}};
  EXPECT_TRUE(Reserve(subjects, 0, kNow).allowed);
  EXPECT_TRUE(Reserve(subjects, 0, kNow).allowed);
  const LimitDecision refused = Reserve(subjects, 0, kNow);
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.violated, "requests_per_minute of key:k1");
  EXPECT_EQ(refused.retry_after, absl::Seconds(50));
  ASSERT_TRUE(refused.requests.has_value());
  EXPECT_EQ(refused.requests->remaining, 0);
  EXPECT_TRUE(Reserve(subjects, 0, Utc(2026, 3, 15, 12, 31, 0)).allowed);
}

TEST_P(LimitCountersTest, TokensPerMinuteResetsWithTheMinute) {
  const std::vector<LimitSubject> subjects = {
      {.scope = "key:k1", .policy = {.tokens_per_minute = 100}}};
  EXPECT_TRUE(Reserve(subjects, 100, kNow).allowed);
  const LimitDecision refused = Reserve(subjects, 1, Utc(2026, 3, 15, 12, 30, 59));
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.violated, "tokens_per_minute of key:k1");
  EXPECT_EQ(refused.retry_after, absl::Seconds(1));
  EXPECT_TRUE(Reserve(subjects, 100, Utc(2026, 3, 15, 12, 31, 0)).allowed);
}

TEST_P(LimitCountersTest, TokensPerDayResetsAtUtcMidnight) {
  const std::vector<LimitSubject> subjects = {
      {.scope = "team:t1", .policy = {.tokens_per_day = 100}}};
  EXPECT_TRUE(Reserve(subjects, 60, kNow).allowed);
  const absl::Time last_ms = Utc(2026, 3, 16, 0, 0, 0) - absl::Milliseconds(1);
  const LimitDecision refused = Reserve(subjects, 60, last_ms);
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.retry_after, absl::Milliseconds(1));
  EXPECT_TRUE(Reserve(subjects, 60, Utc(2026, 3, 16, 0, 0, 0)).allowed);
  EXPECT_EQ(Usage("team:t1", LimitKind::kTokensPerDay, Utc(2026, 3, 16, 0, 0, 0)), 60);
}

TEST_P(LimitCountersTest, TokensPerMonthResetsOnTheFirstOfTheMonth) {
  const std::vector<LimitSubject> subjects = {
      {.scope = "team:t1", .policy = {.tokens_per_month = 1000}}};
  EXPECT_TRUE(Reserve(subjects, 1000, Utc(2026, 2, 1, 0, 0, 0)).allowed);
  const LimitDecision refused = Reserve(subjects, 1, Utc(2026, 2, 28, 23, 0, 0));
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.violated, "tokens_per_month of team:t1");
  EXPECT_EQ(refused.retry_after, absl::Hours(1));
  EXPECT_TRUE(Reserve(subjects, 1000, Utc(2026, 3, 1, 0, 0, 0)).allowed);
}

TEST_P(LimitCountersTest, RetryAfterRunsToTheEndOfTheWindowAtBothEdges) {
  const std::vector<LimitSubject> subjects = {
      {.scope = "key:k1", .policy = {.tokens_per_minute = 10}}};
  const absl::Time start = Utc(2026, 3, 15, 12, 31, 0);
  EXPECT_TRUE(Reserve(subjects, 10, start).allowed);
  EXPECT_EQ(Reserve(subjects, 1, start).retry_after, absl::Seconds(60));
  const LimitDecision last =
      Reserve(subjects, 1, start + absl::Seconds(60) - absl::Milliseconds(1));
  EXPECT_FALSE(last.allowed);
  EXPECT_EQ(last.retry_after, absl::Milliseconds(1));
  ASSERT_TRUE(last.tokens.has_value());
  EXPECT_EQ(last.tokens->reset, absl::Milliseconds(1));
  EXPECT_TRUE(Reserve(subjects, 10, start + absl::Seconds(60)).allowed);
}

TEST_P(LimitCountersTest, LongestViolatedWindowSetsRetryAfter) {
  const std::vector<LimitSubject> subjects = {
      {.scope = "key:k1", .policy = {.tokens_per_minute = 100, .tokens_per_day = 100}}};
  EXPECT_TRUE(Reserve(subjects, 100, kNow).allowed);
  const LimitDecision refused = Reserve(subjects, 1, kNow);
  EXPECT_EQ(refused.violated, "tokens_per_day of key:k1");
  EXPECT_EQ(refused.retry_after, Utc(2026, 3, 16, 0, 0, 0) - kNow);
}

TEST_P(LimitCountersTest, RequestLargerThanALimitIsRefusedForGood) {
  const std::vector<LimitSubject> subjects = {
      {.scope = "key:k1", .policy = {.requests_per_minute = 5}},
      {.scope = "team:t1", .policy = {.tokens_per_minute = 4000}}};
  const LimitDecision refused = Reserve(subjects, 5000, kNow);
  EXPECT_FALSE(refused.allowed);
  EXPECT_FALSE(refused.retryable);
  EXPECT_EQ(refused.retry_after, absl::ZeroDuration());
  EXPECT_EQ(refused.violated, "tokens_per_minute of team:t1");
  EXPECT_THAT(refused.reason, HasSubstr("is 4000 and the request needs 5000 tokens"));
  EXPECT_EQ(Usage("key:k1", LimitKind::kRequestsPerMinute, kNow), 0);
}

TEST_P(LimitCountersTest, SettleRefundsWhatWasNotUsed) {
  const std::vector<LimitSubject> subjects = {
      {.scope = "key:k1", .policy = {.tokens_per_minute = 1000, .tokens_per_month = 1000}}};
  Reservation reservation;
  EXPECT_TRUE(Reserve(subjects, 800, kNow, &reservation).allowed);
  EXPECT_FALSE(Reserve(subjects, 300, kNow).allowed);
  ASSERT_TRUE(counters().Settle(reservation, 200).ok());
  EXPECT_EQ(Usage("key:k1", LimitKind::kTokensPerMinute, kNow), 200);
  EXPECT_EQ(Usage("key:k1", LimitKind::kTokensPerMonth, kNow), 200);
  EXPECT_TRUE(Reserve(subjects, 300, kNow).allowed);
  EXPECT_EQ(Usage("key:k1", LimitKind::kTokensPerMinute, kNow), 500);
}

TEST_P(LimitCountersTest, SettleChargesUsageBeyondTheEstimate) {
  const std::vector<LimitSubject> subjects = {
      {.scope = "key:k1", .policy = {.tokens_per_minute = 1000}}};
  Reservation reservation;
  EXPECT_TRUE(Reserve(subjects, 100, kNow, &reservation).allowed);
  ASSERT_TRUE(counters().Settle(reservation, 150).ok());
  EXPECT_EQ(Usage("key:k1", LimitKind::kTokensPerMinute, kNow), 150);
}

TEST_P(LimitCountersTest, SettleNeverTakesACounterBelowZero) {
  const std::vector<LimitSubject> subjects = {
      {.scope = "key:k1", .policy = {.tokens_per_minute = 1000}}};
  Reservation reservation;
  EXPECT_TRUE(Reserve(subjects, 300, kNow, &reservation).allowed);
  Reservation inflated = reservation;
  inflated.tokens = 900;
  ASSERT_TRUE(counters().Settle(inflated, 0).ok());
  EXPECT_EQ(Usage("key:k1", LimitKind::kTokensPerMinute, kNow), 0);
  EXPECT_FALSE(counters().Settle(reservation, -1).ok());
}

TEST_P(LimitCountersTest, SettleAfterRolloverAdjustsOnlyTheOldWindow) {
  const std::vector<LimitSubject> subjects = {
      {.scope = "key:k1", .policy = {.tokens_per_minute = 1000}}};
  const absl::Time next_minute = Utc(2026, 3, 15, 12, 31, 5);
  Reservation old_reservation;
  EXPECT_TRUE(Reserve(subjects, 400, kNow, &old_reservation).allowed);
  EXPECT_TRUE(Reserve(subjects, 50, next_minute).allowed);
  ASSERT_TRUE(counters().Settle(old_reservation, 0).ok());
  EXPECT_EQ(Usage("key:k1", LimitKind::kTokensPerMinute, kNow), 0);
  EXPECT_EQ(Usage("key:k1", LimitKind::kTokensPerMinute, next_minute), 50);
}

TEST_P(LimitCountersTest, AddUsageSeedsTheBudgets) {
  ASSERT_TRUE(counters().AddUsage("team:t1", 900, kNow - absl::Hours(2)).ok());
  const std::vector<LimitSubject> subjects = {
      {.scope = "team:t1", .policy = {.tokens_per_minute = 1000, .tokens_per_day = 1000}}};
  const LimitDecision refused = Reserve(subjects, 200, kNow);
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.violated, "tokens_per_day of team:t1");
  EXPECT_TRUE(Reserve(subjects, 100, kNow).allowed);
  EXPECT_EQ(Usage("team:t1", LimitKind::kTokensPerDay, kNow), 1000);
  // Reserve counts only limited kinds; AddUsage seeds every token window.
  EXPECT_EQ(Usage("team:t1", LimitKind::kTokensPerMonth, kNow), 900);
  EXPECT_FALSE(counters().AddUsage("team:t1", -1, kNow).ok());
}

TEST_P(LimitCountersTest, HeadersReportTheTightestMinuteLimits) {
  const std::vector<LimitSubject> subjects = {
      {.scope = "key:k1", .policy = {.requests_per_minute = 10, .tokens_per_minute = 500}},
      {.scope = "team:t1", .policy = {.requests_per_minute = 5, .tokens_per_minute = 2000}}};
  const LimitDecision decision = Reserve(subjects, 100, kNow);
  ASSERT_TRUE(decision.requests.has_value());
  EXPECT_EQ(decision.requests->limit, 5);
  EXPECT_EQ(decision.requests->remaining, 4);
  ASSERT_TRUE(decision.tokens.has_value());
  EXPECT_EQ(decision.tokens->limit, 500);
  EXPECT_EQ(decision.tokens->remaining, 400);
}

TEST_P(LimitCountersTest, UnlimitedSubjectsAreAllowedWithoutHeaders) {
  const std::vector<LimitSubject> subjects = {{.scope = "key:k1", .policy = {}}};
  const LimitDecision decision = Reserve(subjects, 1'000'000, kNow);
  EXPECT_TRUE(decision.allowed);
  EXPECT_FALSE(decision.requests.has_value());
  EXPECT_FALSE(decision.tokens.has_value());
}

TEST_P(LimitCountersTest, RejectsInvalidInput) {
  Reservation reservation;
  const std::vector<LimitSubject> ok = {{.scope = "key:k1", .policy = {.tokens_per_day = 10}}};
  EXPECT_EQ(counters().Reserve(ok, -1, kNow, &reservation).status().code(),
            absl::StatusCode::kInvalidArgument);
  const std::vector<LimitSubject> twice = {ok[0], ok[0]};
  EXPECT_EQ(counters().Reserve(twice, 1, kNow, &reservation).status().code(),
            absl::StatusCode::kInvalidArgument);
  const std::vector<LimitSubject> blank = {{.scope = "key: k1", .policy = {}}};
  EXPECT_EQ(counters().Reserve(blank, 1, kNow, &reservation).status().code(),
            absl::StatusCode::kInvalidArgument);
  const std::vector<LimitSubject> negative = {
      {.scope = "key:k1", .policy = {.tokens_per_minute = -5}}};
  EXPECT_EQ(counters().Reserve(negative, 1, kNow, &reservation).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// Two gateways (two RedisCounters on one Redis; in-process: one counter set) with 8
// threads each reserve random amounts against one shared team budget and settle random
// usage. The budget is never exceeded, and the end state is exactly what was settled.
TEST_P(LimitCountersTest, ConcurrentGatewaysNeverExceedASharedBudget) {
  constexpr int64_t kBudget = 100'000;
  constexpr int kGateways = 2;
  constexpr int kThreadsPerGateway = 8;
  constexpr int kIterations = 500;
  const LimitSubject team = {
      .scope = "team:shared",
      .policy = {.requests_per_minute = 1'000'000, .tokens_per_minute = kBudget}};
  std::atomic<int64_t> max_observed{0};
  std::atomic<int64_t> allowed{0};
  std::atomic<int64_t> refused{0};
  std::atomic<int64_t> settled{0};
  std::atomic<int> errors{0};
  std::vector<int64_t> settled_per_key(kGateways * kThreadsPerGateway, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kGateways * kThreadsPerGateway; ++t) {
    threads.emplace_back([&, t] {
      LimitCounters& gateway = t < kThreadsPerGateway ? counters() : other_gateway();
      std::mt19937_64 rng(static_cast<uint64_t>(t) + 1);
      const std::vector<LimitSubject> subjects = {
          {.scope = "key:k" + std::to_string(t), .policy = {.tokens_per_day = 1'000'000'000}},
          team};
      std::vector<Reservation> pending;
      auto settle_one = [&] {
        const size_t i = std::uniform_int_distribution<size_t>(0, pending.size() - 1)(rng);
        // Real usage is mostly well under the reservation (max_tokens is a bound), so the
        // budget stays contended by reservations in flight for much of the run.
        const int64_t actual =
            std::uniform_int_distribution<int64_t>(0, pending[i].tokens / 4)(rng);
        if (!gateway.Settle(pending[i], actual).ok()) ++errors;
        settled += actual;
        settled_per_key[t] += actual;
        pending.erase(pending.begin() + static_cast<std::ptrdiff_t>(i));
      };
      for (int i = 0; i < kIterations; ++i) {
        const int64_t tokens = std::uniform_int_distribution<int64_t>(1, 2000)(rng);
        Reservation reservation;
        absl::StatusOr<LimitDecision> decision =
            gateway.Reserve(subjects, tokens, kNow, &reservation);
        if (!decision.ok()) {
          ++errors;
          continue;
        }
        if (decision->allowed) {
          ++allowed;
          pending.push_back(reservation);
          absl::StatusOr<int64_t> used =
              gateway.Usage("team:shared", LimitKind::kTokensPerMinute, kNow);
          if (!used.ok()) ++errors;
          int64_t seen = max_observed.load();
          while (used.ok() && *used > seen && !max_observed.compare_exchange_weak(seen, *used)) {
          }
        } else {
          ++refused;
        }
        if (!pending.empty() && (pending.size() > 4 || rng() % 2 == 0)) settle_one();
      }
      while (!pending.empty()) settle_one();
    });
  }
  for (std::thread& thread : threads) thread.join();

  RecordProperty("allowed", std::to_string(allowed.load()));
  RecordProperty("refused", std::to_string(refused.load()));
  EXPECT_EQ(errors.load(), 0);
  EXPECT_GT(allowed.load(), 0);
  EXPECT_GT(refused.load(), 0) << "the budget was never reached: the test proves nothing";
  EXPECT_LE(max_observed.load(), kBudget);
  EXPECT_EQ(Usage("team:shared", LimitKind::kTokensPerMinute, kNow), settled.load());
  EXPECT_EQ(Usage("team:shared", LimitKind::kRequestsPerMinute, kNow), allowed.load());
  for (int t = 0; t < kGateways * kThreadsPerGateway; ++t) {
    EXPECT_EQ(Usage("key:k" + std::to_string(t), LimitKind::kTokensPerDay, kNow),
              settled_per_key[t]);
  }
}

INSTANTIATE_TEST_SUITE_P(Stores, LimitCountersTest,
                         ::testing::Values(Store::kInProcess, Store::kRedis),
                         [](const ::testing::TestParamInfo<Store>& info) {
                           return info.param == Store::kInProcess ? "InProcess" : "Redis";
                         });

}  // namespace
}  // namespace triplane::gateway
