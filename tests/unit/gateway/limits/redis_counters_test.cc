// RedisCounters against Redis failures: the fail modes while redis-server is stopped,
// and recovery once it is back. The shared behaviour is in limit_counters_test.cc.

#include "gateway/limits/redis_counters.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "gateway/limits/in_process_counters.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/redis_server.h"

namespace triplane::gateway {
namespace {

using ::testing::HasSubstr;

const absl::Time kRedisNow = absl::FromUnixSeconds(1'773'577'810);  // 2026-03-15 12:30:10 UTC

const std::vector<LimitSubject> kSubjects = {
    {.scope = "key:k1", .policy = {.requests_per_minute = 1000, .tokens_per_minute = 1000}}};

class RedisCountersFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<testing::RedisServer>> server = testing::RedisServer::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }

  std::unique_ptr<RedisCounters> Counters(FailMode mode) {
    absl::StatusOr<std::unique_ptr<RedisCounters>> counters =
        RedisCounters::Create({.url = server_->Url(),
                               .fail_mode = mode,
                               .client = {.reconnect_backoff = absl::Milliseconds(10)}});
    EXPECT_TRUE(counters.ok()) << counters.status();
    return counters.ok() ? *std::move(counters) : nullptr;
  }

  // Restarts the server and waits (generously) until `counters` reserve again.
  void RestartAndWait(RedisCounters& counters) {
    ASSERT_TRUE(server_->StartAgain().ok());
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    absl::StatusOr<LimitDecision> decision;
    do {
      Reservation reservation;
      decision = counters.Reserve(kSubjects, 0, kRedisNow, &reservation);
      if (decision.ok() && decision->note.empty()) return;
      absl::SleepFor(absl::Milliseconds(20));
    } while (absl::Now() < deadline);
    FAIL() << "no recovery within 30 s: "
           << (decision.ok() ? decision->note : decision.status().ToString());
  }

  std::unique_ptr<testing::RedisServer> server_;
};

TEST_F(RedisCountersFaultTest, ClosedModeRefusesWhileRedisIsDown) {
  std::unique_ptr<RedisCounters> counters = Counters(FailMode::kClosed);
  ASSERT_NE(counters, nullptr);
  Reservation reservation;
  absl::StatusOr<LimitDecision> decision = counters->Reserve(kSubjects, 100, kRedisNow, &reservation);
  ASSERT_TRUE(decision.ok()) << decision.status();
  EXPECT_TRUE(decision->allowed);

  server_->Stop();
  Reservation during;
  decision = counters->Reserve(kSubjects, 100, kRedisNow, &during);
  EXPECT_EQ(decision.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(during.token_counters.empty());
  EXPECT_EQ(counters->Settle(reservation, 10).code(), absl::StatusCode::kUnavailable);

  RestartAndWait(*counters);
  // The restarted Redis is empty (no persistence) and its script cache too: limits hold.
  decision = counters->Reserve(kSubjects, 1000, kRedisNow, &reservation);
  ASSERT_TRUE(decision.ok()) << decision.status();
  EXPECT_TRUE(decision->allowed);
  decision = counters->Reserve(kSubjects, 1, kRedisNow, &reservation);
  ASSERT_TRUE(decision.ok()) << decision.status();
  EXPECT_FALSE(decision->allowed);
}

TEST_F(RedisCountersFaultTest, OpenModeAllowsWhileRedisIsDown) {
  std::unique_ptr<RedisCounters> counters = Counters(FailMode::kOpen);
  ASSERT_NE(counters, nullptr);
  server_->Stop();
  for (int i = 0; i < 3; ++i) {  // more than the limit would allow; one warning logged
    Reservation reservation;
    absl::StatusOr<LimitDecision> decision = counters->Reserve(kSubjects, 600, kRedisNow, &reservation);
    ASSERT_TRUE(decision.ok()) << decision.status();
    EXPECT_TRUE(decision->allowed);
    EXPECT_THAT(decision->note, HasSubstr("limits not enforced"));
    EXPECT_TRUE(reservation.token_counters.empty());
    EXPECT_TRUE(counters->Settle(reservation, 600).ok());  // nothing to settle
  }

  RestartAndWait(*counters);
  Reservation reservation;
  absl::StatusOr<LimitDecision> decision = counters->Reserve(kSubjects, 1000, kRedisNow, &reservation);
  ASSERT_TRUE(decision.ok()) << decision.status();
  EXPECT_TRUE(decision->allowed);
  EXPECT_TRUE(decision->note.empty());
  decision = counters->Reserve(kSubjects, 1, kRedisNow, &reservation);
  ASSERT_TRUE(decision.ok()) << decision.status();
  EXPECT_FALSE(decision->allowed);
}

TEST_F(RedisCountersFaultTest, KeepsDatabasesAndPrefixesApart) {
  absl::StatusOr<std::unique_ptr<RedisCounters>> db3 =
      RedisCounters::Create({.url = server_->Url() + "/3"});
  absl::StatusOr<std::unique_ptr<RedisCounters>> db0 =
      RedisCounters::Create({.url = server_->Url()});
  absl::StatusOr<std::unique_ptr<RedisCounters>> other =
      RedisCounters::Create({.url = server_->Url(), .key_prefix = "other:"});
  ASSERT_TRUE(db3.ok() && db0.ok() && other.ok());
  ASSERT_TRUE((*db3)->AddUsage("team:t", 70, kRedisNow).ok());
  ASSERT_TRUE((*db0)->AddUsage("team:t", 5, kRedisNow).ok());
  EXPECT_EQ((*db3)->Usage("team:t", LimitKind::kTokensPerDay, kRedisNow).value_or(-1), 70);
  EXPECT_EQ((*db0)->Usage("team:t", LimitKind::kTokensPerDay, kRedisNow).value_or(-1), 5);
  EXPECT_EQ((*other)->Usage("team:t", LimitKind::kTokensPerDay, kRedisNow).value_or(-1), 0);
}

TEST(MakeLimitCountersTest, PicksTheStoreFromTheUrl) {
  absl::StatusOr<std::unique_ptr<LimitCounters>> memory = MakeLimitCounters("", FailMode::kClosed);
  ASSERT_TRUE(memory.ok());
  EXPECT_NE(dynamic_cast<InProcessCounters*>(memory->get()), nullptr);
  memory = MakeLimitCounters("memory", FailMode::kClosed);
  ASSERT_TRUE(memory.ok());
  EXPECT_NE(dynamic_cast<InProcessCounters*>(memory->get()), nullptr);
  // Redis is contacted lazily: an unreachable one is no error yet.
  absl::StatusOr<std::unique_ptr<LimitCounters>> redis =
      MakeLimitCounters("redis://127.0.0.1:1", FailMode::kOpen);
  ASSERT_TRUE(redis.ok()) << redis.status();
  EXPECT_NE(dynamic_cast<RedisCounters*>(redis->get()), nullptr);
  EXPECT_EQ(MakeLimitCounters("postgres://x", FailMode::kOpen).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MakeLimitCounters("redis://:1", FailMode::kOpen).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace triplane::gateway
