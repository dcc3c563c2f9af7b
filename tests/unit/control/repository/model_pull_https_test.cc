// PullFile over https:// and across redirects, against real servers on 127.0.0.1: an
// HTTPS file server with a certificate from a throwaway CA, and a plain HTTP one that
// redirects to it.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>

#include "common/sha256.h"
#include "common/strings.h"
#include "control/repository/model_pull.h"
#include "testing/file_server.h"
#include "testing/test_pki.h"
#include "unit/control/repository/repository_test_support.h"

namespace triplane::control {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing_support::ReadFile;
using testing_support::TempDir;

class ModelPullHttpsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    std::mt19937 rng(7);
    body_.resize(1 << 20);
    for (char& c : body_) c = static_cast<char>(rng());
    ca_ = std::make_unique<testing::TestCa>(dir_.path(), "pull");
    https_ = std::make_unique<testing::FileServer>(body_, ca_->Issue("server", "DNS:localhost,IP:127.0.0.1"));
    http_ = std::make_unique<testing::FileServer>("the plain server's own file");
  }

  std::string Dest() const { return (dir_.path() / "model.gguf").string(); }
  PullOptions Options(const std::string& url) {
    return {.url = url,
            .dest = Dest(),
            .ca_file = ca_->cert_file(),
            .expected_sha256 = common::Sha256Hex(body_),
            .initial_backoff = std::chrono::milliseconds(10)};
  }
  static std::string Message(const absl::Status& status) {
    return std::string(common::ToStd(status.message()));
  }

  TempDir dir_;
  std::string body_;
  std::unique_ptr<testing::TestCa> ca_;
  std::unique_ptr<testing::FileServer> https_;
  std::unique_ptr<testing::FileServer> http_;
};

TEST_F(ModelPullHttpsTest, DownloadsOverHttpsAndVerifiesTheChecksum) {
  absl::StatusOr<PullResult> result = PullFile(Options(https_->url("/model.gguf", "localhost")));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->sha256, common::Sha256Hex(body_));
  EXPECT_EQ(ReadFile(Dest()), body_);
}

TEST_F(ModelPullHttpsTest, ResumesOverHttpsAfterTheConnectionDrops) {
  https_->DropAfter(300'000, 1);
  absl::StatusOr<PullResult> result = PullFile(Options(https_->url()));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->resumed, 1);
  EXPECT_THAT(https_->ranges(), ElementsAre("300000-"));
  EXPECT_EQ(ReadFile(Dest()), body_);
}

TEST_F(ModelPullHttpsTest, AnUntrustedServerFailsWithTheTlsError) {
  PullOptions options = Options(https_->url());
  options.ca_file.clear();  // the system store does not know the test CA
  options.max_attempts = 2;
  absl::StatusOr<PullResult> result = PullFile(options);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(Message(result.status()), HasSubstr("certificate verify failed"));
  EXPECT_FALSE(std::filesystem::exists(Dest()));
}

TEST_F(ModelPullHttpsTest, FollowsARedirectFromHttpToHttps) {
  http_->Redirect("/resolve/main/model.gguf", 302, https_->url("/cdn/model.gguf"));
  absl::StatusOr<PullResult> result = PullFile(Options(http_->url("/resolve/main/model.gguf")));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(ReadFile(Dest()), body_);
  EXPECT_THAT(https_->paths(), ElementsAre("/cdn/model.gguf"));
}

TEST_F(ModelPullHttpsTest, FollowsAChainOfRelativeRedirectsKeepingTheRange) {
  std::ofstream(Dest() + ".part", std::ios::binary) << body_.substr(0, 12345);
  http_->Redirect("/a/start", 301, "/b/next");      // absolute path
  http_->Redirect("/b/next", 307, "again?x=1");     // relative to /b/
  http_->Redirect("/b/again?x=1", 308, https_->url("/c/model.gguf"));
  https_->Redirect("/c/model.gguf", 303, "//127.0.0.1:" + std::to_string(https_->port()) + "/d/model.gguf");
  absl::StatusOr<PullResult> result = PullFile(Options(http_->url("/a/start")));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(ReadFile(Dest()), body_);
  EXPECT_EQ(result->resumed, 1);
  EXPECT_THAT(http_->paths(), ElementsAre("/a/start", "/b/next", "/b/again?x=1"));
  EXPECT_THAT(https_->paths(), ElementsAre("/c/model.gguf", "/d/model.gguf"));
  EXPECT_THAT(http_->ranges(), ElementsAre("12345-", "12345-", "12345-"));
  EXPECT_THAT(https_->ranges(), ElementsAre("12345-", "12345-"));
}

TEST_F(ModelPullHttpsTest, RefusesARedirectFromHttpsToHttp) {
  https_->Redirect("/model.gguf", 302, http_->url("/model.gguf"));
  absl::StatusOr<PullResult> result = PullFile(Options(https_->url("/model.gguf")));
  EXPECT_EQ(result.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Message(result.status()), HasSubstr("downgrades https to http"));
  EXPECT_EQ(http_->requests(), 0);
}

TEST_F(ModelPullHttpsTest, GivesUpAfterTooManyRedirects) {
  http_->Redirect("/loop", 302, "/loop");
  absl::StatusOr<PullResult> result = PullFile(Options(http_->url("/loop")));
  EXPECT_EQ(result.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Message(result.status()), HasSubstr("too many redirects"));
  EXPECT_EQ(http_->requests(), kMaxPullRedirects + 1);
}

TEST_F(ModelPullHttpsTest, ARedirectWithoutLocationFails) {
  http_->Redirect("/nowhere", 302, "");
  absl::StatusOr<PullResult> result = PullFile(Options(http_->url("/nowhere")));
  EXPECT_EQ(result.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Message(result.status()), HasSubstr("without a Location"));
}

}  // namespace
}  // namespace triplane::control
