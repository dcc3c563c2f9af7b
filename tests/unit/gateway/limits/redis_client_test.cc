#include "gateway/limits/redis_client.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/redis_server.h"

namespace triplane::gateway {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(RedisUrlTest, ParsesHostPortDatabaseAndCredentials) {
  absl::StatusOr<RedisUrl> plain = ParseRedisUrl("redis://cache.internal");
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(plain->host, "cache.internal");
  EXPECT_EQ(plain->port, 6379);
  EXPECT_EQ(plain->db, 0);
  EXPECT_TRUE(plain->password.empty());

  absl::StatusOr<RedisUrl> full = ParseRedisUrl("redis://:s%40cret@10.0.0.7:6380/3");
  ASSERT_TRUE(full.ok()) << full.status();
  EXPECT_EQ(full->host, "10.0.0.7");
  EXPECT_EQ(full->port, 6380);
  EXPECT_EQ(full->db, 3);
  EXPECT_EQ(full->user, "");
  EXPECT_EQ(full->password, "s@cret");

  absl::StatusOr<RedisUrl> acl = ParseRedisUrl("redis://gateway:pw@[::1]:7000/");
  ASSERT_TRUE(acl.ok()) << acl.status();
  EXPECT_EQ(acl->host, "::1");
  EXPECT_EQ(acl->port, 7000);
  EXPECT_EQ(acl->user, "gateway");
  EXPECT_EQ(acl->password, "pw");
}

TEST(RedisUrlTest, RejectsMalformedUrlsWithoutEchoingThePassword) {
  for (const char* url :
       {"http://host:6379", "redis://", "redis://host:", "redis://host:99999", "redis://host:x",
        "redis://host/db", "redis://[::1", "redis://topsecret@host", "redis://:pw%4@host"}) {
    SCOPED_TRACE(url);
    absl::StatusOr<RedisUrl> parsed = ParseRedisUrl(url);
    ASSERT_FALSE(parsed.ok());
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(parsed.status().message()), Not(HasSubstr("topsecret")));
  }
}

TEST(RedisClientTest, RunsCommandsAndReconnectsAfterARestart) {
  absl::StatusOr<std::unique_ptr<testing::RedisServer>> server = testing::RedisServer::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  absl::StatusOr<std::unique_ptr<RedisClient>> client =
      RedisClient::Create((*server)->Url() + "/2", {.reconnect_backoff = absl::Milliseconds(10)});
  ASSERT_TRUE(client.ok()) << client.status();

  const std::vector<std::string> set = {"SET", "k", std::string("a\0b", 3)};
  absl::StatusOr<RedisValue> reply = (*client)->Command(set);
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->type, RedisValue::Type::kStatus);
  const std::vector<std::string> get = {"GET", "k"};
  reply = (*client)->Command(get);
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->str, std::string("a\0b", 3));
  const std::vector<std::string> bad = {"INCR", "k"};
  reply = (*client)->Command(bad);
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->type, RedisValue::Type::kError);

  (*server)->Stop();
  reply = (*client)->Command(get);
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kUnavailable);
  ASSERT_TRUE((*server)->StartAgain().ok());
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  do {
    reply = (*client)->Command(get);
    if (reply.ok()) break;
    absl::SleepFor(absl::Milliseconds(20));
  } while (absl::Now() < deadline);
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->type, RedisValue::Type::kNil);  // nothing is saved across restarts
}

TEST(RedisClientTest, AuthenticatesWithThePasswordFromTheUrl) {
  absl::StatusOr<std::unique_ptr<testing::RedisServer>> server =
      testing::RedisServer::Start("test-password");
  ASSERT_TRUE(server.ok()) << server.status();
  const std::vector<std::string> ping = {"PING"};
  absl::StatusOr<std::unique_ptr<RedisClient>> good =
      RedisClient::Create("redis://:test-password@127.0.0.1:" + std::to_string((*server)->port()));
  ASSERT_TRUE(good.ok());
  absl::StatusOr<RedisValue> reply = (*good)->Command(ping);
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->str, "PONG");

  absl::StatusOr<std::unique_ptr<RedisClient>> wrong =
      RedisClient::Create("redis://:nope@127.0.0.1:" + std::to_string((*server)->port()));
  ASSERT_TRUE(wrong.ok());
  reply = (*wrong)->Command(ping);
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(reply.status().message()), HasSubstr("AUTH failed"));
}

}  // namespace
}  // namespace triplane::gateway
