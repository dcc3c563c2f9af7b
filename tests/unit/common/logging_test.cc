#include "common/logging.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace triplane::common {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Logs into a fresh file per test and puts the default stderr logger back afterwards.
class LoggingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = ::testing::TempDir() + "/logging_test_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".log";
    std::remove(path_.c_str());
  }
  void TearDown() override {
    ASSERT_TRUE(InitLogging({}).ok());
    std::remove(path_.c_str());
  }

  void Init(LogFormat format, std::string level = "info") {
    ASSERT_TRUE(InitLogging({.level = std::move(level), .format = format, .file = path_}).ok());
  }

  std::vector<std::string> Lines() const {
    std::ifstream in(path_);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  }

  std::string path_;
};

TEST_F(LoggingTest, JsonLinesParseAndCarryRequestId) {
  Init(LogFormat::kJson);
  spdlog::info("plain line {}", 1);
  RequestLog log("req-123");
  log.Info("request line {}", "two");
  log.Warn("careful");
  log.Error("broken");
  spdlog::info("after the request");

  const std::vector<std::string> lines = Lines();
  ASSERT_EQ(lines.size(), 5u);
  std::vector<nlohmann::json> objects;
  for (const std::string& line : lines) {
    objects.push_back(nlohmann::json::parse(line));  // throws (fails the test) if invalid
  }
  EXPECT_EQ(objects[0]["msg"], "plain line 1");
  EXPECT_EQ(objects[0]["level"], "info");
  EXPECT_FALSE(objects[0].contains("request_id"));
  EXPECT_EQ(objects[1]["msg"], "request line two");
  EXPECT_EQ(objects[1]["request_id"], "req-123");
  EXPECT_EQ(objects[2]["level"], "warn");
  EXPECT_EQ(objects[2]["request_id"], "req-123");
  EXPECT_EQ(objects[3]["level"], "error");
  EXPECT_FALSE(objects[4].contains("request_id"));
}

TEST_F(LoggingTest, JsonTimestampIsUtcWithMilliseconds) {
  Init(LogFormat::kJson);
  spdlog::info("tick");
  const nlohmann::json object = nlohmann::json::parse(Lines().at(0));
  const std::string ts = object["ts"];
  // 2026-12-04T19:48:23.123Z
  EXPECT_THAT(ts, ::testing::MatchesRegex(
                      "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z"));
}

TEST_F(LoggingTest, JsonEscapesControlCharactersAndReplacesInvalidUtf8) {
  Init(LogFormat::kJson);
  spdlog::info("quote \" backslash \\ newline \n tab \t bell \x07 bad \xff\xfe end é");
  const std::vector<std::string> lines = Lines();
  ASSERT_EQ(lines.size(), 1u);  // the newline in the message did not split the line
  const nlohmann::json object = nlohmann::json::parse(lines[0]);
  const std::string msg = object["msg"];
  EXPECT_THAT(msg, HasSubstr("quote \" backslash \\ newline \n tab \t bell \x07 bad "));
  EXPECT_THAT(msg, HasSubstr("\xEF\xBF\xBD"));  // U+FFFD
  EXPECT_THAT(msg, HasSubstr(" end é"));
}

TEST_F(LoggingTest, TextLinesCarryLevelLetterAndRequestId) {
  Init(LogFormat::kText);
  RequestLog("abc-42").Info("hello {}", "world");
  spdlog::warn("no id here");

  const std::vector<std::string> lines = Lines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_THAT(lines[0],
              ::testing::MatchesRegex(
                  "[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8}\\.[0-9]{3} I \\[abc-42\\] hello world"));
  EXPECT_THAT(lines[1], ::testing::EndsWith(" W no id here"));
  EXPECT_THAT(lines[1], Not(HasSubstr("[")));
}

TEST_F(LoggingTest, LevelFiltersLines) {
  Init(LogFormat::kJson, "warn");
  RequestLog log("id");
  log.Debug("hidden");
  log.Info("hidden");
  spdlog::info("hidden");
  log.Warn("shown");
  const std::vector<std::string> lines = Lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(nlohmann::json::parse(lines[0])["msg"], "shown");
}

TEST_F(LoggingTest, DebugLevelShowsDebugLines) {
  Init(LogFormat::kJson, "debug");
  RequestLog("id").Debug("visible");
  ASSERT_EQ(Lines().size(), 1u);
  EXPECT_EQ(nlohmann::json::parse(Lines()[0])["level"], "debug");
}

TEST_F(LoggingTest, RequestIdIsNotLeftSetAfterTheCall) {
  Init(LogFormat::kJson);
  RequestLog("outer").Info("x");
  EXPECT_EQ(internal::CurrentRequestId(), nullptr);
}

TEST_F(LoggingTest, RequestLogIsUsableFromManyThreads) {
  Init(LogFormat::kJson);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t] {
      RequestLog log("thread-" + std::to_string(t));
      for (int i = 0; i < 100; ++i) log.Info("line {}", i);
    });
  }
  for (std::thread& thread : threads) thread.join();
  const std::vector<std::string> lines = Lines();
  ASSERT_EQ(lines.size(), 400u);
  for (const std::string& line : lines) {
    const nlohmann::json object = nlohmann::json::parse(line);
    EXPECT_THAT(object["request_id"].get<std::string>(), ::testing::StartsWith("thread-"));
  }
}

TEST(InitLoggingTest, RejectsUnknownLevel) {
  const absl::Status status = InitLogging({.level = "loud"});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("loud"));
}

TEST(InitLoggingTest, RejectsFileInMissingDirectory) {
  const std::string path =
      ::testing::TempDir() + "/no-such-dir-" + std::to_string(getpid()) + "/x.log";
  const absl::Status status = InitLogging({.file = path});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr(path));
  EXPECT_EQ(std::string(status.message()).find('\n'), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(std::filesystem::path(path).parent_path()));
}

TEST(InitLoggingTest, RejectsUnopenableFile) {
  // A directory cannot be opened for appending, even by root.
  const absl::Status status = InitLogging({.file = ::testing::TempDir()});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(status.message()).find('\n'), std::string::npos);
}

TEST(ParseLogFormatTest, AcceptsTextAndJsonOnly) {
  EXPECT_EQ(*ParseLogFormat("text"), LogFormat::kText);
  EXPECT_EQ(*ParseLogFormat("json"), LogFormat::kJson);
  EXPECT_EQ(ParseLogFormat("xml").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseLogFormat("").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LogFormatName(LogFormat::kJson), "json");
}

TEST(RequestIdTest, NewIdsAreUniqueAndValid) {
  std::set<std::string> ids;
  for (int i = 0; i < 100'000; ++i) {
    std::string id = NewRequestId();
    ASSERT_EQ(id.size(), 26u);
    ASSERT_TRUE(IsValidRequestId(id)) << id;
    ids.insert(std::move(id));
  }
  EXPECT_EQ(ids.size(), 100'000u);
}

TEST(RequestIdTest, IdsFromDifferentThreadsDiffer) {
  std::vector<std::vector<std::string>> per_thread(4);
  std::vector<std::thread> threads;
  for (auto& ids : per_thread) {
    threads.emplace_back([&ids] {
      for (int i = 0; i < 10'000; ++i) ids.push_back(NewRequestId());
    });
  }
  for (std::thread& thread : threads) thread.join();
  std::set<std::string> all;
  for (const auto& ids : per_thread) all.insert(ids.begin(), ids.end());
  EXPECT_EQ(all.size(), 40'000u);
}

TEST(RequestIdTest, ValidatesIncomingIds) {
  EXPECT_TRUE(IsValidRequestId("a"));
  EXPECT_TRUE(IsValidRequestId("req_1.2:3-XYZ"));
  EXPECT_TRUE(IsValidRequestId(std::string(128, 'x')));
  EXPECT_FALSE(IsValidRequestId(""));
  EXPECT_FALSE(IsValidRequestId(std::string(129, 'x')));
  EXPECT_FALSE(IsValidRequestId("has space"));
  EXPECT_FALSE(IsValidRequestId("new\nline"));
  EXPECT_FALSE(IsValidRequestId("quote\""));
  EXPECT_FALSE(IsValidRequestId("slash/"));
  EXPECT_FALSE(IsValidRequestId("caf\xc3\xa9"));
}

TEST(RequestLogTest, CopiesShareTheId) {
  const RequestLog log("abc");
  const RequestLog copy = log;
  EXPECT_EQ(copy.request_id(), "abc");
  EXPECT_EQ(&copy.request_id(), &log.request_id());
}

}  // namespace
}  // namespace triplane::common
