#include "common/sse.h"

#include <vector>

#include "gtest/gtest.h"

namespace triplane::common {
namespace {

std::vector<SseEvent> ParseAll(std::string_view text, size_t piece = 0) {
  SseParser parser;
  std::vector<SseEvent> events;
  auto collect = [&](SseEvent&& e) { events.push_back(std::move(e)); };
  if (piece == 0) {
    EXPECT_TRUE(parser.Feed(text, collect).ok());
  } else {
    for (size_t i = 0; i < text.size(); i += piece) {
      EXPECT_TRUE(parser.Feed(text.substr(i, piece), collect).ok());
    }
  }
  return events;
}

TEST(SseTest, FormatsMultiLineDataAsSeveralDataFields) {
  EXPECT_EQ(FormatSseData("hello"), "data: hello\n\n");
  EXPECT_EQ(FormatSseEvent({.event = "error", .data = "a\nb", .id = "7", .retry_ms = 100}),
            "event: error\nid: 7\nretry: 100\ndata: a\ndata: b\n\n");
  EXPECT_EQ(FormatSseComment("ping"), ": ping\n\n");
}

TEST(SseTest, ParsesWhatItFormatsWhateverTheChunking) {
  std::string wire = FormatSseEvent({.event = "token", .data = "x\ny", .id = "1"}) +
                     FormatSseComment("keep-alive") + FormatSseData("[DONE]");
  for (size_t piece : {0, 1, 2, 3, 7}) {
    auto events = ParseAll(wire, piece);
    ASSERT_EQ(events.size(), 2u) << "piece " << piece;
    EXPECT_EQ(events[0].event, "token");
    EXPECT_EQ(events[0].data, "x\ny");
    EXPECT_EQ(events[0].id, "1");
    EXPECT_EQ(events[1].data, "[DONE]");
  }
}

TEST(SseTest, AcceptsCrLfAndLoneCrLineEndings) {
  for (size_t piece : {0, 1}) {
    auto events = ParseAll("data: one\r\n\r\ndata: two\r\rdata:three\n\n", piece);
    ASSERT_EQ(events.size(), 3u);
    EXPECT_EQ(events[0].data, "one");
    EXPECT_EQ(events[1].data, "two");
    EXPECT_EQ(events[2].data, "three");  // the space after the colon is optional
  }
}

TEST(SseTest, SkipsLeadingBomAndIgnoresUnknownFields) {
  auto events = ParseAll("\xEF\xBB\xBF" "foo: bar\ndata: x\n\n", 1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].data, "x");
}

TEST(SseTest, EventWithoutDataIsNotDispatched) {
  auto events = ParseAll("event: ping\n\ndata: y\n\n");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].event, "");
  EXPECT_EQ(events[0].data, "y");
}

TEST(SseTest, UnterminatedTrailingEventIsReportedByFinish) {
  SseParser parser;
  int count = 0;
  ASSERT_TRUE(parser.Feed("data: partial", [&](SseEvent&&) { ++count; }).ok());
  EXPECT_EQ(count, 0);
  EXPECT_FALSE(parser.Finish());
}

TEST(SseTest, RefusesEventsBeyondTheSizeLimit) {
  SseParser parser(/*max_event_bytes=*/64);
  auto status = parser.Feed("data: " + std::string(100, 'a'), [](SseEvent&&) {});
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_FALSE(parser.Feed("\n\n", [](SseEvent&&) {}).ok());
}

}  // namespace
}  // namespace triplane::common
