// The gateway's choice of instance: least outstanding, affinity by session or prompt
// prefix while load allows, and canary weights between versions.
#include <gtest/gtest.h>

#include <map>

#include "gateway/proxy.h"

namespace triplane::gateway {
namespace {

class RouteChoiceTest : public ::testing::Test {
 protected:
  const Upstream* Choose(const RouteHints& hints, double random = 0.5, uint64_t rotation = 0,
                         const std::set<std::string>& tried = {}) {
    return ChooseUpstream(upstreams_, tried, [this](const std::string& id) { return load_[id]; },
                          hints, random, rotation);
  }
  std::vector<Upstream> upstreams_ = {
      {.id = "a", .version = "1"}, {.id = "b", .version = "1"}, {.id = "c", .version = "2"}};
  std::map<std::string, int64_t> load_;
};

TEST_F(RouteChoiceTest, LeastOutstandingWithRotatingTies) {
  load_ = {{"a", 3}, {"b", 1}, {"c", 2}};
  EXPECT_EQ(Choose({})->id, "b");
  load_ = {};
  std::set<std::string> seen;
  for (uint64_t r = 0; r < 3; ++r) seen.insert(Choose({}, 0.5, r)->id);
  EXPECT_EQ(seen.size(), 3u);
  EXPECT_EQ(Choose({}, 0.5, 0, {"a", "b", "c"}), nullptr);
  EXPECT_EQ(Choose({}, 0.5, 0, {"a", "b"})->id, "c");
}

TEST_F(RouteChoiceTest, TheSameSessionOrPrefixSticksUntilItsInstanceIsBusy) {
  const std::string first = Choose({.session = "user-42"})->id;
  for (uint64_t r = 0; r < 10; ++r) EXPECT_EQ(Choose({.session = "user-42"}, 0.5, r)->id, first);
  // Different keys spread over the instances.
  std::set<std::string> seen;
  for (int i = 0; i < 64; ++i) seen.insert(Choose({.prefix = "system prompt " + std::to_string(i)})->id);
  EXPECT_EQ(seen.size(), 3u);
  // The session wins over the prefix.
  EXPECT_EQ(Choose({.session = "user-42", .prefix = "anything"})->id, first);
  // Busy beyond the slack: the least busy one takes it.
  load_[first] = kAffinitySlack;
  EXPECT_EQ(Choose({.session = "user-42"})->id, first);
  load_[first] = kAffinitySlack + 1;
  EXPECT_NE(Choose({.session = "user-42"})->id, first);
}

TEST_F(RouteChoiceTest, CanaryWeightsSplitByVersion) {
  const RouteHints canary{.version_weights = {{"1", 90}, {"2", 10}}};
  int version2 = 0;
  for (int i = 0; i < 1000; ++i) version2 += Choose(canary, (i + 0.5) / 1000.0)->version == "2";
  EXPECT_EQ(version2, 100);
  // A version without instances left is skipped: the other takes everything.
  EXPECT_EQ(Choose(canary, 0.99, 0, {"c"})->version, "1");
  EXPECT_EQ(Choose({.version_weights = {{"2", 1}}}, 0.1)->id, "c");
}

}  // namespace
}  // namespace triplane::gateway
