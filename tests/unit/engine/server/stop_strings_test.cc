#include "engine/server/stop_strings.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace triplane::engine::server {
namespace {

// Pushes `pieces` and returns everything emitted (plus the flush when nothing stopped).
struct Pushed {
  std::vector<std::string> chunks;
  std::string text;
  bool stopped = false;
};

Pushed PushAll(StopStringMatcher& matcher, const std::vector<std::string>& pieces) {
  Pushed run;
  for (const std::string& piece : pieces) {
    StopStringMatcher::Output out = matcher.Push(piece);
    run.chunks.push_back(out.text);
    run.text += out.text;
    run.stopped = run.stopped || out.stopped;
  }
  if (!run.stopped) run.text += matcher.Flush();
  return run;
}

bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    const size_t len = c < 0x80           ? 1
                       : (c >> 5) == 0x6  ? 2
                       : (c >> 4) == 0xE  ? 3
                       : (c >> 3) == 0x1E ? 4
                                          : 0;
    if (len == 0 || i + len > s.size()) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += len;
  }
  return true;
}

TEST(StopStringMatcherTest, WithoutStopStringsTextPassesStraightThrough) {
  StopStringMatcher matcher({});
  EXPECT_EQ(matcher.Push("Hello").text, "Hello");
  EXPECT_EQ(matcher.held_bytes(), 0u);
  EXPECT_EQ(matcher.Flush(), "");
}

TEST(StopStringMatcherTest, StopsInsideOnePushAndEmitsOnlyWhatCameBefore) {
  StopStringMatcher matcher({"\n\n"});
  StopStringMatcher::Output out = matcher.Push("one\n\ntwo");
  EXPECT_EQ(out.text, "one");
  EXPECT_TRUE(out.stopped);
  EXPECT_EQ(matcher.matched(), "\n\n");
  // Nothing after a stop.
  EXPECT_EQ(matcher.Push("more").text, "");
  EXPECT_TRUE(matcher.Push("more").stopped);
  EXPECT_EQ(matcher.Flush(), "");
}

TEST(StopStringMatcherTest, StopSpanningTokensIsNeverEmitted) {
  StopStringMatcher matcher({"o Wo"});
  Pushed run = PushAll(matcher, {"Hel", "lo W", "orld"});
  EXPECT_TRUE(run.stopped);
  EXPECT_EQ(run.text, "Hell");
  EXPECT_EQ(run.chunks, (std::vector<std::string>{"Hel", "l", ""}));
}

TEST(StopStringMatcherTest, HoldsBackAPossibleStartAndReleasesItWhenItIsNot) {
  StopStringMatcher matcher({"END"});
  EXPECT_EQ(matcher.Push("the E").text, "the ");
  EXPECT_EQ(matcher.held_bytes(), 1u);
  EXPECT_EQ(matcher.Push("N").text, "");
  EXPECT_EQ(matcher.held_bytes(), 2u);
  StopStringMatcher::Output out = matcher.Push("Dless");  // "ENDless" contains "END"
  EXPECT_TRUE(out.stopped);
  EXPECT_EQ(out.text, "");

  StopStringMatcher other({"END"});
  EXPECT_EQ(other.Push("the EN").text, "the ");
  EXPECT_EQ(other.Push("ough").text, "ENough");
  EXPECT_EQ(other.Push("EN").text, "");
  EXPECT_EQ(other.Flush(), "EN");  // the stream ended: held text is text
}

TEST(StopStringMatcherTest, EarliestStartingStopWins) {
  StopStringMatcher matcher({"world", "o w"});
  Pushed run = PushAll(matcher, {"hello world"});
  EXPECT_EQ(run.text, "hell");
  EXPECT_EQ(matcher.matched(), "o w");
}

TEST(StopStringMatcherTest, LongestWinsAmongStopsStartingAtTheSameByte) {
  StopStringMatcher matcher({"ab", "abc"});
  StopStringMatcher::Output out = matcher.Push("xabc");
  EXPECT_EQ(out.text, "x");
  EXPECT_EQ(matcher.matched(), "abc");
}

TEST(StopStringMatcherTest, OverlappingCandidatesStopAtTheFirstCompleteOne) {
  // "abcd" is still possible when "bc" completes; the complete one stops.
  StopStringMatcher matcher({"abcd", "bc"});
  Pushed run = PushAll(matcher, {"a", "b", "c", "d"});
  EXPECT_EQ(run.text, "a");
  EXPECT_EQ(matcher.matched(), "bc");

  // A held candidate that fails releases only what can no longer start a stop.
  StopStringMatcher second({"aab"});
  Pushed two = PushAll(second, {"a", "a", "a", "b"});
  EXPECT_TRUE(two.stopped);
  EXPECT_EQ(two.text, "a");
}

TEST(StopStringMatcherTest, MultibyteTextIsNeverSplitInsideACharacter) {
  StopStringMatcher matcher({"日本", "éa"});
  const std::vector<std::string> pieces = {"今", "日", "は", "日", "曜", "日", "本", "当"};
  Pushed run = PushAll(matcher, pieces);
  EXPECT_TRUE(run.stopped);
  EXPECT_EQ(run.text, "今日は日曜");
  for (const std::string& chunk : run.chunks) EXPECT_TRUE(IsValidUtf8(chunk)) << chunk;

  StopStringMatcher accent({"éa"});
  Pushed cafe = PushAll(accent, {"café", "é", "b", "éa", "x"});
  EXPECT_EQ(cafe.text, "cafééb");
  for (const std::string& chunk : cafe.chunks) EXPECT_TRUE(IsValidUtf8(chunk)) << chunk;
}

TEST(StopStringMatcherTest, EveryEmittedPrefixAddsUpToTheTextBeforeTheStop) {
  // Random-ish piece boundaries over a text with a stop near the end.
  const std::string text = "The quick brown fox jumps over the lazy dog. STOP here";
  for (size_t step = 1; step <= 7; ++step) {
    StopStringMatcher matcher({"STOP", "lazy cat"});
    std::vector<std::string> pieces;
    for (size_t i = 0; i < text.size(); i += step) pieces.push_back(text.substr(i, step));
    Pushed run = PushAll(matcher, pieces);
    EXPECT_TRUE(run.stopped) << step;
    EXPECT_EQ(run.text, "The quick brown fox jumps over the lazy dog. ") << step;
  }
}

}  // namespace
}  // namespace triplane::engine::server
