#include "control/repository/model_pull.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string_view>
#include <vector>

#include "common/sha256.h"
#include "testing/file_server.h"

namespace triplane::control {
namespace {

class ModelPullTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("triplane-pull-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    std::mt19937 rng(5);
    body_.resize(3 << 20);
    for (char& c : body_) c = static_cast<char>(rng());
    server_ = std::make_unique<testing::FileServer>(body_);
  }
  void TearDown() override {
    server_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::string Dest() const { return (dir_ / "model.gguf").string(); }
  static std::string Read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  PullOptions Options() {
    return {.url = server_->url(), .dest = Dest(), .initial_backoff = std::chrono::milliseconds(10)};
  }

  std::filesystem::path dir_;
  std::string body_;
  std::unique_ptr<testing::FileServer> server_;
};

TEST_F(ModelPullTest, DownloadsAndVerifiesTheChecksum) {
  PullOptions options = Options();
  options.expected_sha256 = common::Sha256Hex(body_);
  std::vector<std::pair<int64_t, int64_t>> progress;
  options.progress = [&](int64_t done, int64_t total) { progress.emplace_back(done, total); };
  auto result = PullFile(options);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->bytes, static_cast<int64_t>(body_.size()));
  EXPECT_EQ(result->sha256, options.expected_sha256);
  EXPECT_EQ(result->resumed, 0);
  EXPECT_EQ(Read(Dest()), body_);
  EXPECT_FALSE(std::filesystem::exists(Dest() + ".part"));
  ASSERT_FALSE(progress.empty());
  EXPECT_EQ(progress.back(), std::make_pair(result->bytes, result->bytes));
  for (size_t i = 1; i < progress.size(); ++i) EXPECT_GE(progress[i].first, progress[i - 1].first);
}

TEST_F(ModelPullTest, ResumesAfterTheConnectionDropsMidFile) {
  server_->DropAfter(1 << 20, 2);  // two responses cut after 1 MiB each
  PullOptions options = Options();
  options.expected_sha256 = common::Sha256Hex(body_);
  auto result = PullFile(options);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(Read(Dest()), body_);
  EXPECT_EQ(result->resumed, 2);
  EXPECT_EQ(server_->ranges(), (std::vector<std::string>{"1048576-", "2097152-"}));
}

TEST_F(ModelPullTest, ContinuesAPartialFileFromAnEarlierPull) {
  std::ofstream(Dest() + ".part", std::ios::binary) << body_.substr(0, 12345);
  auto result = PullFile(Options());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(Read(Dest()), body_);
  EXPECT_EQ(server_->ranges(), (std::vector<std::string>{"12345-"}));
}

TEST_F(ModelPullTest, StartsOverWhenTheServerIgnoresRanges) {
  server_->IgnoreRanges(true);
  server_->DropAfter(100000, 1);
  auto result = PullFile(Options());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(Read(Dest()), body_);
}

TEST_F(ModelPullTest, AChecksumMismatchDiscardsTheDownload) {
  PullOptions options = Options();
  options.expected_sha256 = std::string(64, 'a');
  auto result = PullFile(options);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(std::string(result.status().message()).find("checksum mismatch"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(Dest()));
  EXPECT_FALSE(std::filesystem::exists(Dest() + ".part"));
}

TEST_F(ModelPullTest, ClientErrorsAreNotRetried) {
  server_->SetStatus(404);
  EXPECT_EQ(PullFile(Options()).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(server_->requests(), 1);
  server_->SetStatus(403);
  EXPECT_EQ(PullFile(Options()).status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_FALSE(std::filesystem::exists(Dest()));
}

TEST_F(ModelPullTest, ServerErrorsAreRetriedThenGiveUp) {
  server_->SetStatus(503);
  PullOptions options = Options();
  options.max_attempts = 3;
  auto result = PullFile(options);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(server_->requests(), 3);
}

TEST_F(ModelPullTest, RefusesUrlsItCannotFetch) {
  for (const char* url : {"ftp://host/x.gguf", "file:///etc/passwd", "hf://org/repo/x.gguf", ""}) {
    PullOptions options = Options();
    options.url = url;
    EXPECT_EQ(PullFile(options).status().code(), absl::StatusCode::kInvalidArgument) << url;
  }
}

TEST_F(ModelPullTest, AHostThatConnectsToARefusedAddressGetsNoRequest) {
  // The hop's host passes the check ("localhost" is not the refused "127.0.0.1"), as a
  // name does when it resolves elsewhere at the check and to a refused address at the
  // connection (DNS rebinding); the connection's peer is judged too.
  PullOptions options = Options();
  options.url = server_->url("/model.gguf", "localhost");
  std::vector<std::string> asked;
  options.refuse = [&](std::string_view host, int port) {
    asked.emplace_back(host);
    return host == "127.0.0.1" && port == server_->port();
  };
  auto result = PullFile(options);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument) << result.status();
  EXPECT_NE(result.status().message().find("127.0.0.1"), std::string_view::npos) << result.status();
  EXPECT_EQ(server_->requests(), 0);
  EXPECT_EQ(asked, (std::vector<std::string>{"localhost", "127.0.0.1"}));
  EXPECT_FALSE(std::filesystem::exists(Dest()));
}

TEST(ResolveModelUrlTest, MapsHuggingFaceReferences) {
  EXPECT_EQ(*ResolveModelUrl("hf://Qwen/Qwen2.5-0.5B-Instruct-GGUF/qwen2.5-0.5b-instruct-q8_0.gguf"),
            "https://huggingface.co/Qwen/Qwen2.5-0.5B-Instruct-GGUF/resolve/main/qwen2.5-0.5b-instruct-q8_0.gguf");
  EXPECT_EQ(*ResolveModelUrl("hf://org/repo/sub/dir/m.gguf@v1.0"),
            "https://huggingface.co/org/repo/resolve/v1.0/sub/dir/m.gguf");
  EXPECT_EQ(*ResolveModelUrl("http://127.0.0.1:9/m.gguf"), "http://127.0.0.1:9/m.gguf");
  for (const char* bad : {"hf://org/repo", "hf://org//m.gguf", "hf://org/repo/../m.gguf", "s3://b/m.gguf",
                          "hf://org/repo/m.gguf@", "/etc/passwd", "hf://o/r/m.gguf?x=1"}) {
    EXPECT_EQ(ResolveModelUrl(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace triplane::control
