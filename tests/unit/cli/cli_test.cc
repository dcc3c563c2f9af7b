// Runs the real `triplane` binary and checks what a user sees: exit codes, help, and
// one-line errors.
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

extern char** environ;

namespace triplane::cli {
namespace {

using ::testing::HasSubstr;

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs TRIPLANE_BINARY with `args` and the test's environment minus TRIPLANE_*
// variables, plus `env` ("NAME=value" entries).
RunResult RunTriplane(const std::vector<std::string>& args,
                      const std::vector<std::string>& env = {}) {
  std::vector<std::string> argv_storage = {TRIPLANE_BINARY};
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& arg : argv_storage) argv.push_back(arg.data());
  argv.push_back(nullptr);

  std::vector<std::string> env_storage;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "TRIPLANE_", 9) != 0) env_storage.emplace_back(*e);
  }
  env_storage.insert(env_storage.end(), env.begin(), env.end());
  std::vector<char*> envp;
  for (std::string& entry : env_storage) envp.push_back(entry.data());
  envp.push_back(nullptr);

  int out_pipe[2], err_pipe[2];
  if (pipe(out_pipe) != 0 || pipe(err_pipe) != 0) return {};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], STDERR_FILENO);
  posix_spawn_file_actions_addclose(&actions, out_pipe[0]);
  posix_spawn_file_actions_addclose(&actions, err_pipe[0]);
  pid_t pid = 0;
  const int spawn_error = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  close(out_pipe[1]);
  close(err_pipe[1]);
  RunResult result;
  if (spawn_error != 0) {
    close(out_pipe[0]);
    close(err_pipe[0]);
    ADD_FAILURE() << "cannot spawn " << argv[0] << ": " << std::strerror(spawn_error);
    return result;
  }

  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_fds = 2;
  while (open_fds > 0) {
    if (poll(fds, 2, 10'000) <= 0) break;  // a hung child fails the test below
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buffer[4096];
      const ssize_t n = read(fds[i].fd, buffer, sizeof(buffer));
      if (n > 0) {
        sinks[i]->append(buffer, static_cast<size_t>(n));
      } else {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (const pollfd& fd : fds) {
    if (fd.fd >= 0) close(fd.fd);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

// True when `text` is exactly one line ending in a newline.
bool IsOneLine(const std::string& text) {
  return !text.empty() && text.back() == '\n' && text.find('\n') == text.size() - 1;
}

TEST(CliTest, HelpListsEverySubcommand) {
  const RunResult result = RunTriplane({"--help"});
  EXPECT_EQ(result.exit_code, 0);
  for (const char* name : {"serve", "engine", "gateway", "control", "generate", "version"}) {
    EXPECT_THAT(result.out, HasSubstr(name)) << name;
  }
  EXPECT_THAT(result.out, HasSubstr("--log-format"));
  EXPECT_THAT(result.out, HasSubstr("TRIPLANE_LOG_LEVEL"));
}

TEST(CliTest, VersionSubcommandPrintsBuildFacts) {
  const RunResult result = RunTriplane({"version"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_THAT(result.out, ::testing::StartsWith("triplane "));
  EXPECT_THAT(result.out, HasSubstr("commit:"));
  EXPECT_THAT(result.out, HasSubstr("cuda:"));
  EXPECT_EQ(result.err, "");
}

TEST(CliTest, VersionJsonIsOneObject) {
  const RunResult result = RunTriplane({"version", "--json"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const nlohmann::json json = nlohmann::json::parse(result.out);
  for (const char* key :
       {"version", "git_commit", "build_type", "compiler", "cuda", "sanitizers"}) {
    EXPECT_TRUE(json.contains(key)) << key;
  }
  EXPECT_TRUE(json["cuda"].is_boolean());
}

TEST(CliTest, VersionFlagPrintsOneLine) {
  const RunResult result = RunTriplane({"--version"});
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_THAT(result.out, ::testing::StartsWith("triplane "));
  EXPECT_TRUE(IsOneLine(result.out)) << result.out;
}


TEST(CliTest, GenerateWithoutAModelIsAOneLineUsageError) {
  const RunResult missing = RunTriplane({"generate", "--prompt", "hi"});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_TRUE(IsOneLine(missing.err)) << missing.err;
  const RunResult absent = RunTriplane({"generate", "--model", "/nonexistent.gguf", "--prompt", "hi"});
  EXPECT_NE(absent.exit_code, 0);
  EXPECT_TRUE(IsOneLine(absent.err)) << absent.err;
}

TEST(CliTest, GatewayWithoutAnAdminKeyIsAOneLineError) {
  const RunResult result = RunTriplane({"gateway", "--control", "http://127.0.0.1:1"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_TRUE(IsOneLine(result.err)) << result.err;
  EXPECT_THAT(result.err, HasSubstr("--admin-key"));
}

TEST(CliTest, EngineHelpListsItsFlags) {
  const RunResult result = RunTriplane({"engine", "--help"});
  EXPECT_EQ(result.exit_code, 0);
  for (const char* flag : {"--model", "--host", "--port", "--threads", "--ctx", "--kv-memory", "--max-batch-tokens",
                           "--max-seqs", "--served-model-name", "--drain-timeout"}) {
    EXPECT_THAT(result.out, HasSubstr(flag)) << flag;
  }
}

TEST(CliTest, EngineWithoutAUsableModelIsAOneLineError) {
  const RunResult missing = RunTriplane({"engine"});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_TRUE(IsOneLine(missing.err)) << missing.err;
  const RunResult absent = RunTriplane({"engine", "--model", "/nonexistent.gguf"});
  EXPECT_NE(absent.exit_code, 0);
  EXPECT_TRUE(IsOneLine(absent.err)) << absent.err;
  const RunResult not_gguf = RunTriplane({"engine", "--model", TRIPLANE_BINARY, "--port", "0"});
  EXPECT_EQ(not_gguf.exit_code, 1);
  EXPECT_THAT(not_gguf.err, HasSubstr(std::string("triplane engine: ") + TRIPLANE_BINARY));
  const RunResult bad_size = RunTriplane({"engine", "--model", TRIPLANE_BINARY, "--kv-memory", "lots"});
  EXPECT_NE(bad_size.exit_code, 0);
  EXPECT_TRUE(IsOneLine(bad_size.err)) << bad_size.err;
}

TEST(CliTest, UnknownSubcommandIsOneLineError) {
  const RunResult result = RunTriplane({"frobnicate"});
  EXPECT_NE(result.exit_code, 0);
  EXPECT_TRUE(IsOneLine(result.err)) << result.err;
  EXPECT_THAT(result.err, HasSubstr("frobnicate"));
}

TEST(CliTest, MissingSubcommandIsOneLineError) {
  const RunResult result = RunTriplane({});
  EXPECT_NE(result.exit_code, 0);
  EXPECT_TRUE(IsOneLine(result.err)) << result.err;
}

TEST(CliTest, UnknownFlagIsOneLineError) {
  const RunResult result = RunTriplane({"--bogus", "version"});
  EXPECT_NE(result.exit_code, 0);
  EXPECT_TRUE(IsOneLine(result.err)) << result.err;
  EXPECT_THAT(result.err, HasSubstr("--bogus"));
  EXPECT_EQ(result.out, "");
}

TEST(CliTest, LogFormatMustBeTextOrJson) {
  const RunResult result = RunTriplane({"--log-format", "xml", "version"});
  EXPECT_NE(result.exit_code, 0);
  EXPECT_TRUE(IsOneLine(result.err)) << result.err;
  EXPECT_THAT(result.err, HasSubstr("xml"));
  EXPECT_EQ(RunTriplane({"--log-format", "json", "version"}).exit_code, 0);
}

TEST(CliTest, GlobalOptionsMayFollowTheSubcommand) {
  const RunResult result = RunTriplane({"version", "--log-level", "debug", "--log-format=json"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(RunTriplane({"version", "--log-level", "chatty"}).exit_code, 0);
}

TEST(CliTest, EnvironmentSetsGlobalOptions) {
  const RunResult result = RunTriplane({"version"}, {"TRIPLANE_LOG_FORMAT=xml"});
  EXPECT_NE(result.exit_code, 0);
  EXPECT_THAT(result.err, HasSubstr("xml"));
}

class CliConfigTest : public ::testing::Test {
 protected:
  std::string WriteConfig(const std::string& text) {
    path_ = ::testing::TempDir() + "/cli_test_" + std::to_string(getpid()) + ".toml";
    std::ofstream(path_) << text;
    return path_;
  }
  void TearDown() override { std::remove(path_.c_str()); }
  std::string path_;
};

TEST_F(CliConfigTest, ConfigFileErrorsAreOneLineAndExitTwo) {
  const std::string path = WriteConfig("[version]\nshiny = true\n");
  const RunResult result = RunTriplane({"--config", path, "version"});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_TRUE(IsOneLine(result.err)) << result.err;
  EXPECT_THAT(result.err, HasSubstr(path));
  EXPECT_THAT(result.err, HasSubstr("[version] shiny"));
}

TEST_F(CliConfigTest, ConfigFileSetsSubcommandOptions) {
  const std::string path = WriteConfig("log-format = \"json\"\n[version]\njson = true\n");
  const RunResult result = RunTriplane({"version"}, {"TRIPLANE_CONFIG=" + path});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_TRUE(nlohmann::json::parse(result.out).contains("version"));
  // The environment beats the file.
  EXPECT_NE(
      RunTriplane({"version"}, {"TRIPLANE_CONFIG=" + path, "TRIPLANE_LOG_FORMAT=xml"}).exit_code,
      0);
}

TEST_F(CliConfigTest, MissingConfigFileIsAnError) {
  const RunResult result = RunTriplane({"--config=/nonexistent/triplane.toml", "version"});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_TRUE(IsOneLine(result.err)) << result.err;
}

TEST(CliTest, UnwritableLogFileIsOneLineError) {
  const std::string path =
      ::testing::TempDir() + "/no-such-dir-" + std::to_string(getpid()) + "/x.log";
  const RunResult result = RunTriplane({"--log-file", path, "version"});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_TRUE(IsOneLine(result.err)) << result.err;
}

}  // namespace
}  // namespace triplane::cli
