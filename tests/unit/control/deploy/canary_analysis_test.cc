// Canary analysis over a real (SQLite) store: the usage rows are made up, since making a
// canary fail for real on cue is not practical; the decision and the rollback are real.

#include "control/deploy/canary_analysis.h"

#include <filesystem>
#include <fstream>

#include "common/sha256.h"
#include "control/store/store_factory.h"
#include "fmt/format.h"
#include "gtest/gtest.h"

namespace triplane::control {
namespace {

class CanaryAnalysisTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("triplane-canary-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    absl::StatusOr<std::unique_ptr<Store>> store = OpenStore("sqlite:" + (dir_ / "t.db").string(), dir_.string());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    ASSERT_TRUE(store_->CreateModel({.name = "m"}, {}).ok());
    for (const char* v : {"1", "2"}) {
      const std::string path = (dir_ / (std::string(v) + ".gguf")).string();
      std::ofstream(path) << v;
      ASSERT_TRUE(store_->CreateModelVersion({.model = "m", .version = v, .file_path = path, .size_bytes = 1,
                                              .sha256 = common::Sha256Hex(v)}, {}).ok());
    }
    ASSERT_TRUE(store_->CreateDeployment("web", {.model = "m", .version = "1", .canary_version = "2",
                                                 .canary_percent = 10}, {}).ok());
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  void Served(const std::string& version, int ok, int failed) {
    std::vector<UsageRecord> rows;
    for (int i = 0; i < ok + failed; ++i) {
      rows.push_back({.request_id = fmt::format("r{}", next_++), .time = absl::Now(), .model = "m",
                      .version = version, .status = i < ok ? 200 : 502, .latency_seconds = 0.01 * (i + 1)});
    }
    ASSERT_TRUE(store_->AppendUsage(rows).ok());
  }

  std::filesystem::path dir_;
  std::unique_ptr<Store> store_;
  int next_ = 0;
};

TEST_F(CanaryAnalysisTest, JudgesOnlyWithEnoughRequestsAndAboveTheThreshold) {
  const Deployment d = *store_->GetDeployment("web");
  const CanaryThresholds t{.max_error_rate = 0.1, .min_requests = 20};
  std::map<std::string, VersionStats> stats = {{"2", {.requests = 10, .errors = 10}}};
  EXPECT_FALSE(JudgeCanary(d, stats, t).has_value());  // too few to judge
  stats["2"] = {.requests = 40, .errors = 4};
  EXPECT_FALSE(JudgeCanary(d, stats, t).has_value());  // 10% is allowed
  stats["2"] = {.requests = 40, .errors = 5};
  std::optional<std::string> verdict = JudgeCanary(d, stats, t);
  ASSERT_TRUE(verdict.has_value());
  EXPECT_NE(verdict->find("5 of 40"), std::string::npos) << *verdict;
  stats = {{"1", {.requests = 100, .errors = 100}}};  // the stable version's errors are not the canary's
  EXPECT_FALSE(JudgeCanary(d, stats, t).has_value());
}

TEST_F(CanaryAnalysisTest, AFailingCanaryIsRolledBackWithAnEventAndAGoodOneIsNot) {
  int rollbacks = 0;
  CanaryAnalysis analysis(*store_, {.on_rollback = [&] { ++rollbacks; }});
  Served("1", 100, 0);
  Served("2", 30, 1);
  analysis.RunOnce();
  EXPECT_EQ(store_->GetDeployment("web")->spec.canary_version, "2");
  ASSERT_TRUE(store_->SetConfig("rollout.canary.max_error_rate", 0.02, {}).ok());
  analysis.RunOnce();  // 1 of 31 is above 2%
  const Deployment d = *store_->GetDeployment("web");
  EXPECT_TRUE(d.spec.canary_version.empty());
  EXPECT_EQ(d.spec.version, "1");
  EXPECT_EQ(rollbacks, 1);
  std::vector<DeploymentEvent> events = *store_->ListEvents("web", 0, 10);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].actor, "canary-analysis");
  EXPECT_NE(events[0].message.find("rolled back automatically"), std::string::npos);
  std::vector<AuditRecord> audit = *store_->ListAudit({.limit = 10, .newest_first = true});
  ASSERT_FALSE(audit.empty());
  EXPECT_EQ(audit[0].actor, "canary-analysis");
  const std::map<std::string, VersionStats> stats = *RecentStats(*store_, "m", absl::Seconds(60));
  EXPECT_EQ(stats.at("1").requests, 100);
  EXPECT_EQ(stats.at("2").errors, 1);
}

}  // namespace
}  // namespace triplane::control
