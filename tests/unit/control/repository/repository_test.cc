#include "control/repository/repository.h"

#include <unistd.h>

#include <chrono>
#include <memory>
#include <thread>

#include "common/sha256.h"
#include "common/strings.h"
#include "control/store/store_factory.h"
#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/file_server.h"
#include "testing/loopback_name.h"
#include "testing/test_pki.h"
#include "unit/control/repository/repository_test_support.h"
#include "testing/status_message.h"

namespace triplane::control {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing_support::FilesIn;
using testing_support::ReadFile;
using testing_support::ReadTinyGguf;
using testing_support::TempDir;
using testing_support::WriteTinyGguf;

using triplane::testing::Message;

class RepositoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    absl::StatusOr<std::unique_ptr<Store>> store =
        OpenStore("sqlite:" + (dir_.path() / "triplane.db").string(), dir_.path().string());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    models_dir_ = dir_.path() / "models";
    std::filesystem::create_directories(dir_.path() / "src");
    Open({});
  }

  void Open(std::vector<std::string> refused_hosts, int threads = 2, std::string ca_file = "") {
    repo_.reset();
    repo_ = std::make_unique<ModelRepository>(
        *store_, RepositoryOptions{.models_dir = models_dir_.string(),
                                   .read_gguf = ReadTinyGguf,
                                   .pull_threads = threads,
                                   .refused_hosts = std::move(refused_hosts),
                                   .ca_file = std::move(ca_file)});
  }

  std::string Source(const std::string& name, int elements = 64) {
    const std::string path = (dir_.path() / "src" / (name + ".gguf")).string();
    WriteTinyGguf(path, name, elements);
    return path;
  }

  absl::StatusOr<ModelVersion> Add(const std::string& model, const std::string& path,
                                   const std::string& version = "") {
    return repo_->AddFromPath(
        {.model = model, .version = version, .description = "a test model", .path = path},
        {.actor = "key-test"});
  }

  PullJob WaitForPull(const std::string& id) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      absl::StatusOr<PullJob> job = repo_->GetPull(id);
      EXPECT_TRUE(job.ok()) << job.status();
      if (!job.ok()) return {};
      if (job->state != PullState::kQueued && job->state != PullState::kRunning) return *job;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ADD_FAILURE() << id << " did not finish";
    return {};
  }

  TempDir dir_;
  std::filesystem::path models_dir_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<ModelRepository> repo_;
};

TEST_F(RepositoryTest, AddFromPathCopiesTheFileToItsContentAddress) {
  const std::string source = Source("alpha");
  absl::StatusOr<ModelVersion> v = Add("org/alpha", source);
  ASSERT_TRUE(v.ok()) << v.status();
  const std::string sha = common::Sha256Hex(ReadFile(source));
  EXPECT_EQ(v->model, "org/alpha");
  EXPECT_EQ(v->version, "1");
  EXPECT_EQ(v->sha256, sha);
  EXPECT_EQ(v->file_path, (models_dir_ / (sha + ".gguf")).string());
  EXPECT_EQ(v->size_bytes, static_cast<int64_t>(std::filesystem::file_size(source)));
  EXPECT_EQ(v->source, source);
  EXPECT_EQ(ReadFile(v->file_path), ReadFile(source));
  EXPECT_EQ(v->gguf.architecture, "llama");
  EXPECT_EQ(v->gguf.context_length, 2048);
  EXPECT_EQ(v->gguf.parameter_count, 64);
  EXPECT_TRUE(v->gguf.has_chat_template);
  EXPECT_THAT(v->gguf.tensor_types, ElementsAre("f32"));
  EXPECT_THAT(FilesIn(models_dir_), ElementsAre(sha + ".gguf"));  // nothing in .incoming
  absl::StatusOr<Model> model = store_->GetModel("org/alpha");
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(model->description, "a test model");
}

TEST_F(RepositoryTest, AMissingFileIsInvalidAndWritesNothing) {
  const std::string missing = (dir_.path() / "nope.gguf").string();
  absl::StatusOr<ModelVersion> v = Add("m", missing);
  EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Message(v.status()), "no such file: " + missing);
  EXPECT_THAT(FilesIn(models_dir_), IsEmpty());
  EXPECT_EQ(store_->GetModel("m").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(RepositoryTest, ANonGgufFileIsInvalidAndWritesNothing) {
  const std::string path = (dir_.path() / "src" / "notes.txt").string();
  std::ofstream(path) << "just some text, not a model";
  absl::StatusOr<ModelVersion> v = Add("m", path);
  EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(v.status()), HasSubstr("not a GGUF file"));
  EXPECT_THAT(FilesIn(models_dir_), IsEmpty());
  EXPECT_EQ(store_->GetModel("m").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(RepositoryTest, ATakenVersionIsRefusedBeforeCopying) {
  ASSERT_TRUE(Add("m", Source("a"), "v1").ok());
  const auto before = FilesIn(models_dir_);
  absl::StatusOr<ModelVersion> again = Add("m", Source("b"), "v1");
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(FilesIn(models_dir_), before);
}

TEST_F(RepositoryTest, VersionsWithTheSameBytesShareOneFileUntilTheLastIsDeleted) {
  const std::string source = Source("shared");
  absl::StatusOr<ModelVersion> a = Add("a", source);
  absl::StatusOr<ModelVersion> b = Add("b", source);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->file_path, b->file_path);
  ASSERT_TRUE(repo_->DeleteVersion("a", "1", {.actor = "key-test"}).ok());
  EXPECT_TRUE(std::filesystem::exists(b->file_path));
  ASSERT_TRUE(repo_->DeleteModel("b", {.actor = "key-test"}).ok());
  EXPECT_FALSE(std::filesystem::exists(b->file_path));
  EXPECT_EQ(store_->GetModel("b").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(RepositoryTest, AVersionInUseIsNotDeletedNorItsFile) {
  absl::StatusOr<ModelVersion> v = Add("m", Source("used"));
  ASSERT_TRUE(v.ok());
  ASSERT_TRUE(store_->CreateDeployment("d", {.model = "m", .version = "1"}, {}).ok());
  EXPECT_EQ(repo_->DeleteVersion("m", "1", {}).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(repo_->DeleteModel("m", {}).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(std::filesystem::exists(v->file_path));
}

class RepositoryPullTest : public RepositoryTest {
 protected:
  void SetUp() override {
    RepositoryTest::SetUp();
    const std::string path = Source("pulled", 256 * 1024);  // about 1 MiB
    body_ = ReadFile(path);
    server_ = std::make_unique<testing::FileServer>(body_);
  }
  void TearDown() override {
    repo_.reset();  // cancels pulls before the server goes
    server_.reset();
  }

  absl::StatusOr<PullJob> Pull(const std::string& url, const std::string& sha256 = "",
                               const std::string& version = "") {
    return repo_->StartPull({.model = "pulled", .version = version, .url = url, .sha256 = sha256},
                            {.actor = "key-test"});
  }

  std::string body_;
  std::unique_ptr<testing::FileServer> server_;
};

TEST_F(RepositoryPullTest, APullDownloadsVerifiesAndRegisters) {
  const std::string sha = common::Sha256Hex(body_);
  absl::StatusOr<PullJob> started = Pull(server_->url(), common::AsciiToLower(sha));
  ASSERT_TRUE(started.ok()) << started.status();
  EXPECT_EQ(started->id, "pull-1");
  const PullJob job = WaitForPull(started->id);
  ASSERT_EQ(job.state, PullState::kSucceeded) << job.error;
  EXPECT_EQ(job.bytes_done, static_cast<int64_t>(body_.size()));
  EXPECT_EQ(job.bytes_total, static_cast<int64_t>(body_.size()));
  ASSERT_TRUE(job.version.has_value());
  EXPECT_EQ(job.version->sha256, sha);
  EXPECT_EQ(job.version->source, server_->url());
  EXPECT_EQ(job.version->gguf.extra["name"], "pulled");
  EXPECT_NE(job.finished_at, absl::InfinitePast());
  EXPECT_THAT(FilesIn(models_dir_), ElementsAre(sha + ".gguf"));
  EXPECT_EQ(ToJson(job)["result"]["sha256"], sha);
  EXPECT_EQ(ToJson(job)["state"], "succeeded");
}

TEST_F(RepositoryPullTest, AnUppercaseChecksumIsAccepted) {
  std::string sha = common::Sha256Hex(body_);
  for (char& c : sha) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  absl::StatusOr<PullJob> started = Pull(server_->url(), sha);
  ASSERT_TRUE(started.ok()) << started.status();
  EXPECT_EQ(WaitForPull(started->id).state, PullState::kSucceeded);
}

TEST_F(RepositoryPullTest, ADroppedConnectionResumes) {
  server_->DropAfter(100000, 1);
  absl::StatusOr<PullJob> started = Pull(server_->url());
  ASSERT_TRUE(started.ok()) << started.status();
  const PullJob job = WaitForPull(started->id);
  ASSERT_EQ(job.state, PullState::kSucceeded) << job.error;
  EXPECT_THAT(server_->ranges(), ElementsAre("100000-"));
  EXPECT_EQ(ReadFile(job.version->file_path), body_);
}

TEST_F(RepositoryPullTest, AChecksumMismatchFailsWithoutAVersion) {
  absl::StatusOr<PullJob> started = Pull(server_->url(), std::string(64, 'a'));
  ASSERT_TRUE(started.ok()) << started.status();
  const PullJob job = WaitForPull(started->id);
  EXPECT_EQ(job.state, PullState::kFailed);
  EXPECT_THAT(job.error, HasSubstr("checksum mismatch"));
  EXPECT_FALSE(job.version.has_value());
  EXPECT_EQ(store_->GetModel("pulled").status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(FilesIn(models_dir_), IsEmpty());
}

TEST_F(RepositoryPullTest, ANonGgufDownloadFailsAndIsRemoved) {
  testing::FileServer text("plain text, no model here");
  absl::StatusOr<PullJob> started = Pull(text.url());
  ASSERT_TRUE(started.ok()) << started.status();
  const PullJob job = WaitForPull(started->id);
  EXPECT_EQ(job.state, PullState::kFailed);
  EXPECT_THAT(job.error, HasSubstr("not a GGUF file"));
  EXPECT_THAT(FilesIn(models_dir_), IsEmpty());
}

TEST_F(RepositoryPullTest, AnHttpsPullTrustsTheConfiguredCa) {
  testing::TestCa ca(dir_.path(), "repository");
  testing::FileServer https(body_, ca.Issue("server", "IP:127.0.0.1"));
  Open({}, 2, ca.cert_file());
  const std::string sha = common::Sha256Hex(body_);
  absl::StatusOr<PullJob> started = Pull(https.url(), sha);
  ASSERT_TRUE(started.ok()) << started.status();
  const PullJob job = WaitForPull(started->id);
  ASSERT_EQ(job.state, PullState::kSucceeded) << job.error;
  EXPECT_EQ(job.version->sha256, sha);
  EXPECT_EQ(job.version->source, https.url());
  EXPECT_EQ(ReadFile(job.version->file_path), body_);
}

TEST_F(RepositoryPullTest, BadRequestsAreRefusedUpFront) {
  for (const char* url : {"ftp://127.0.0.1/x.gguf", "file:///etc/passwd", "hf://only-org"}) {
    EXPECT_EQ(Pull(url).status().code(), absl::StatusCode::kInvalidArgument) << url;
  }
  EXPECT_EQ(Pull(server_->url(), "abc").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Pull(server_->url(), std::string(64, 'g')).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(repo_->StartPull({.model = "../x", .url = server_->url()}, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(Add("pulled", Source("other"), "v1").ok());
  EXPECT_EQ(Pull(server_->url(), "", "v1").status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(repo_->ListPulls(), IsEmpty());
}

TEST_F(RepositoryPullTest, TheControlPlanesOwnAddressIsRefused) {
  const std::string port = std::to_string(server_->port());
  Open({"localhost:" + port});
  absl::StatusOr<PullJob> self = Pull("http://127.0.0.1:" + port + "/model.gguf");
  EXPECT_EQ(self.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(self.status()), HasSubstr("own address"));
  Open({"127.0.0.1:" + port});
  EXPECT_EQ(Pull("http://localhost:" + port + "/model.gguf").status().code(),
            absl::StatusCode::kInvalidArgument);
  Open({"127.0.0.1:1"});
  EXPECT_TRUE(Pull(server_->url()).ok()) << "another port is not the control plane";
}

TEST_F(RepositoryPullTest, EverySpellingOfLoopbackIsTheOwnAddressOnceItIsKnown) {
  const std::string port = std::to_string(server_->port());
  Open({});
  // A server on port 0 learns its port after the repository exists.
  repo_->RefusePullsFrom("127.0.0.1:" + port);
  for (const char* host : {"127.0.0.1", "127.1", "127.0.0.2", "2130706433", "0x7f000001", "0177.0.0.1",
                           "0.0.0.0", "[::1]", "[::]", "[::ffff:127.0.0.1]", "LocalHost"}) {
    const std::string url = fmt::format("http://{}:{}/model.gguf", host, port);
    EXPECT_EQ(Pull(url).status().code(), absl::StatusCode::kInvalidArgument) << url;
  }
  EXPECT_THAT(repo_->ListPulls(), IsEmpty());
}

// The literal check at StartPull cannot see through a redirect or a host name; every hop
// is checked again, names resolved, before anything is requested from it.
TEST_F(RepositoryPullTest, ARedirectToTheOwnAddressFailsThePullWithoutRequestingIt) {
  testing::FileServer own(body_);  // plays the control plane
  Open({"127.0.0.1:" + std::to_string(own.port())});
  server_->Redirect("/model.gguf", 302, own.url("/model.gguf", "localhost"));
  absl::StatusOr<PullJob> started = Pull(server_->url());
  ASSERT_TRUE(started.ok()) << started.status();
  const PullJob job = WaitForPull(started->id);
  EXPECT_EQ(job.state, PullState::kFailed);
  EXPECT_THAT(job.error, HasSubstr("own address"));
  EXPECT_EQ(own.requests(), 0);
}

TEST_F(RepositoryPullTest, AHostNameThatResolvesToTheOwnAddressFailsThePull) {
  const std::string loopback_name = testing::LoopbackHostName();
  if (loopback_name.empty()) GTEST_SKIP() << "no name besides localhost resolves to 127.0.0.0/8 here";
  Open({"127.0.0.1:" + std::to_string(server_->port())});
  absl::StatusOr<PullJob> started = Pull(server_->url("/model.gguf", loopback_name));
  ASSERT_TRUE(started.ok()) << started.status();
  const PullJob job = WaitForPull(started->id);
  EXPECT_EQ(job.state, PullState::kFailed) << loopback_name;
  EXPECT_THAT(job.error, HasSubstr("own address"));
  EXPECT_EQ(server_->requests(), 0);
}

TEST_F(RepositoryPullTest, CancelStopsQueuedAndRunningPulls) {
  Open({}, /*threads=*/1);
  server_->SetStatus(503);  // the running pull keeps retrying
  absl::StatusOr<PullJob> running = Pull(server_->url());
  testing::FileServer other(body_);
  absl::StatusOr<PullJob> queued = Pull(other.url());
  ASSERT_TRUE(running.ok() && queued.ok());
  ASSERT_TRUE(repo_->CancelPull(queued->id).ok());
  EXPECT_EQ(repo_->GetPull(queued->id)->state, PullState::kCancelled);
  ASSERT_TRUE(repo_->CancelPull(running->id).ok());
  EXPECT_EQ(WaitForPull(running->id).state, PullState::kCancelled);
  EXPECT_EQ(repo_->CancelPull("pull-99").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(repo_->GetPull("nonsense").status().code(), absl::StatusCode::kNotFound);
  const std::vector<PullJob> jobs = repo_->ListPulls();
  ASSERT_EQ(jobs.size(), 2u);
  EXPECT_EQ(jobs[0].id, queued->id);  // newest first
  EXPECT_EQ(other.requests(), 0);
}

}  // namespace
}  // namespace triplane::control
