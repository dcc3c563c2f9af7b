#include "common/subprocess.h"

#include <pthread.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "gtest/gtest.h"

namespace triplane::common {
namespace {

using namespace std::chrono_literals;

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// This process's scratch directory, removed when the test binary exits.
struct ScratchDir {
  std::filesystem::path path = std::filesystem::temp_directory_path() /
                               ("triplane-subprocess-" + std::to_string(::getpid()));
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

std::filesystem::path TempFile(const std::string& name) {
  static ScratchDir scratch;
  std::filesystem::create_directories(scratch.path);
  auto path = scratch.path / name;
  std::filesystem::remove(path);
  return path;
}

TEST(SubprocessTest, RedirectsOutputPassesEnvironmentAndReportsExitCode) {
  auto out = TempFile("out.txt");
  auto child = Subprocess::Spawn({.argv = {"/bin/sh", "-c", "echo \"hi $GREETING\"; echo err >&2; exit 3"},
                                  .env = {"GREETING=there"},
                                  .stdout_path = out.string(),
                                  .stderr_path = out.string()});
  ASSERT_TRUE(child.ok()) << child.status();
  auto status = (*child)->Wait(10s);
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->code, 3);
  EXPECT_EQ(status->ToString(), "exit code 3");
  EXPECT_EQ(ReadFile(out), "hi there\nerr\n");
}

TEST(SubprocessTest, ReportsTheChildsOwnPeakMemory) {
  // The shell keeps a 256 MB string; a shell that exits at once stays small. (Linux counts
  // the spawning process's image before exec in a child's peak, so the small one is
  // bounded relative to the big one, not absolutely: this test binary may be large.)
  auto big = Subprocess::Spawn({.argv = {"/bin/sh", "-c", "x=$(head -c 256000000 /dev/zero | tr '\\0' a); echo ${#x}"}});
  auto small = Subprocess::Spawn({.argv = {"/bin/sh", "-c", "exit 0"}});
  ASSERT_TRUE(big.ok() && small.ok());
  const auto big_status = (*big)->Wait(60s), small_status = (*small)->Wait(30s);
  ASSERT_TRUE(big_status && small_status);
  EXPECT_GE(big_status->peak_rss_bytes, 256'000'000);
  EXPECT_GT(small_status->peak_rss_bytes, 0);
  EXPECT_LT(small_status->peak_rss_bytes, big_status->peak_rss_bytes - (128 << 20));
}

TEST(SubprocessTest, ChildDoesNotInheritBlockedSignals) {
  sigset_t set, old;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, &old);
  auto child = Subprocess::Spawn({.argv = {"/bin/sleep", "30"}});
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  ASSERT_TRUE(child.ok());
  ExitStatus status = (*child)->Terminate(5s);
  EXPECT_EQ(status.signal, SIGTERM);  // SIGTERM worked; SIGKILL was not needed
}

TEST(SubprocessTest, MissingProgramIsAnError) {
  auto child = Subprocess::Spawn({.argv = {"/nonexistent/program"}});
  ASSERT_FALSE(child.ok());
  EXPECT_NE(std::string(child.status().message()).find("/nonexistent/program"), std::string::npos);
  EXPECT_FALSE(Subprocess::Spawn({}).ok());
}

TEST(SubprocessTest, PollIsNonBlockingAndDestructorReapsARunningChild) {
  auto child = Subprocess::Spawn({.argv = {"/bin/sleep", "30"}});
  ASSERT_TRUE(child.ok());
  EXPECT_FALSE((*child)->Poll().has_value());
  pid_t pid = (*child)->pid();
  child->reset();
  EXPECT_NE(::kill(pid, 0), 0);  // gone and reaped
}

}  // namespace
}  // namespace triplane::common
