#include "common/config.h"

#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace triplane::common {
namespace {

using ::testing::HasSubstr;

// Sets an environment variable for the scope's lifetime.
class ScopedEnv {
 public:
  ScopedEnv(std::string name, const std::optional<std::string>& value) : name_(std::move(name)) {
    if (const char* old = getenv(name_.c_str())) old_ = old;
    if (value) {
      setenv(name_.c_str(), value->c_str(), 1);
    } else {
      unsetenv(name_.c_str());
    }
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_.c_str(), old_->c_str(), 1);
    } else {
      unsetenv(name_.c_str());
    }
  }

 private:
  std::string name_;
  std::optional<std::string> old_;
};

// A small command line shaped like triplane's: global options and two subcommands.
struct TestCli {
  TestCli() {
    app.fallthrough();
    app.add_option("--log-level", log_level);
    app.add_option("--config", config_file);
    serve = app.add_subcommand("serve", "serve");
    serve->add_option("--port", port)->check(CLI::Range(0, 65535));
    serve->add_option("--host", host);
    serve->add_option("--ratio", ratio);
    serve->add_option("--tag", tags);
    serve->add_flag("--verbose", verbose);
    engine = app.add_subcommand("engine", "engine");
    engine->add_option("--kv-memory", kv_memory);
    engine->add_option("--model", model)->required();
    BindEnvironment(app);
  }

  // Parses `args` (without the program name); returns CLI11's error text, or "" on success.
  std::string Parse(std::vector<std::string> args) {
    args.insert(args.begin(), "triplane");
    std::vector<const char*> argv;
    for (const std::string& arg : args) argv.push_back(arg.c_str());
    try {
      app.parse(static_cast<int>(argv.size()), argv.data());
    } catch (const CLI::ParseError& e) {
      return e.what();
    }
    return "";
  }

  CLI::App app{"test", "triplane"};
  CLI::App* serve = nullptr;
  CLI::App* engine = nullptr;
  std::string log_level = "info";
  std::string config_file;
  int port = 8080;
  std::string host = "127.0.0.1";
  double ratio = 0.5;
  std::vector<std::string> tags;
  bool verbose = false;
  std::string kv_memory = "0";
  std::string model;
};

class ConfigTest : public ::testing::Test {
 protected:
  // Writes `text` to a fresh file and returns its path.
  std::string WriteFile(const std::string& text) {
    const std::string path = ::testing::TempDir() + "/config_test_" + std::to_string(getpid()) +
                             "_" + std::to_string(files_.size()) + ".toml";
    std::ofstream(path) << text;
    files_.push_back(path);
    return path;
  }
  void TearDown() override {
    for (const std::string& path : files_) std::remove(path.c_str());
  }

  std::vector<std::string> files_;
  // No stray TRIPLANE_* variables from the environment running the tests.
  ScopedEnv no_port_{"TRIPLANE_PORT", std::nullopt};
  ScopedEnv no_level_{"TRIPLANE_LOG_LEVEL", std::nullopt};
  ScopedEnv no_config_{"TRIPLANE_CONFIG", std::nullopt};
  ScopedEnv no_model_{"TRIPLANE_MODEL", std::nullopt};
};

TEST(EnvVarNameTest, UppercasesAndReplacesDashes) {
  EXPECT_EQ(EnvVarName("kv-memory"), "TRIPLANE_KV_MEMORY");
  EXPECT_EQ(EnvVarName("port"), "TRIPLANE_PORT");
}

TEST_F(ConfigTest, BindEnvironmentNamesEveryLongOptionButMetaOnes) {
  TestCli cli;
  EXPECT_EQ(cli.app.get_option("--log-level")->get_envname(), "TRIPLANE_LOG_LEVEL");
  EXPECT_EQ(cli.serve->get_option("--port")->get_envname(), "TRIPLANE_PORT");
  EXPECT_EQ(cli.engine->get_option("--kv-memory")->get_envname(), "TRIPLANE_KV_MEMORY");
  EXPECT_EQ(cli.app.get_option("--config")->get_envname(), "");
  EXPECT_EQ(cli.app.get_help_ptr()->get_envname(), "");
}

// Every combination of the three sources for one option; the highest one present wins.
TEST_F(ConfigTest, FlagBeatsEnvironmentBeatsFileBeatsDefault) {
  for (int mask = 0; mask < 8; ++mask) {
    const bool file = mask & 1, env = mask & 2, flag = mask & 4;
    SCOPED_TRACE(testing::Message() << "file=" << file << " env=" << env << " flag=" << flag);
    TestCli cli;
    if (file) {
      ASSERT_TRUE(ApplyConfigFile(cli.app, WriteFile("[serve]\nport = 1111\n")).ok());
    }
    ScopedEnv port_env("TRIPLANE_PORT", env ? std::optional<std::string>("2222") : std::nullopt);
    std::vector<std::string> args = {"serve"};
    if (flag) args.insert(args.end(), {"--port", "3333"});
    ASSERT_EQ(cli.Parse(args), "");
    const int expected = flag ? 3333 : env ? 2222 : file ? 1111 : 8080;
    EXPECT_EQ(cli.port, expected);
  }
}

TEST_F(ConfigTest, TopLevelKeysSetGlobalOptions) {
  TestCli cli;
  ASSERT_TRUE(ApplyConfigFile(cli.app, WriteFile("log-level = \"debug\"\n")).ok());
  EXPECT_EQ(cli.log_level, "debug");  // set as soon as the file is applied
  ASSERT_EQ(cli.Parse({"serve"}), "");
  EXPECT_EQ(cli.log_level, "debug");
}

TEST_F(ConfigTest, EnvironmentBeatsFileForGlobalOptions) {
  TestCli cli;
  ASSERT_TRUE(ApplyConfigFile(cli.app, WriteFile("log-level = \"debug\"\n")).ok());
  ScopedEnv level("TRIPLANE_LOG_LEVEL", "error");
  ASSERT_EQ(cli.Parse({"serve"}), "");
  EXPECT_EQ(cli.log_level, "error");
}

TEST_F(ConfigTest, SectionsSetSubcommandOptions) {
  TestCli cli;
  const std::string path = WriteFile(
      "# comment\n"
      "log_level = \"warn\"\n"
      "[serve]\n"
      "host = \"0.0.0.0\"\n"
      "ratio = 0.25\n"
      "tag = [\"a\", \"b c\"]\n"
      "verbose = true\n"
      "[engine]\n"
      "kv_memory = \"8GiB\"\n"
      "model = \"/models/x.gguf\"\n");
  ASSERT_TRUE(ApplyConfigFile(cli.app, path).ok());
  ASSERT_EQ(cli.Parse({"serve"}), "");
  EXPECT_EQ(cli.log_level, "warn");
  EXPECT_EQ(cli.host, "0.0.0.0");
  EXPECT_DOUBLE_EQ(cli.ratio, 0.25);
  EXPECT_THAT(cli.tags, ::testing::ElementsAre("a", "b c"));
  EXPECT_TRUE(cli.verbose);
  EXPECT_EQ(cli.kv_memory, "8GiB");
  EXPECT_EQ(cli.model, "/models/x.gguf");
}

TEST_F(ConfigTest, DottedKeysNameTheSubcommand) {
  TestCli cli;
  ASSERT_TRUE(ApplyConfigFile(cli.app, WriteFile("serve.port = 4444\n")).ok());
  ASSERT_EQ(cli.Parse({"serve"}), "");
  EXPECT_EQ(cli.port, 4444);
}

TEST_F(ConfigTest, FileSatisfiesRequiredOption) {
  {
    TestCli cli;
    EXPECT_THAT(cli.Parse({"engine"}), HasSubstr("model"));
  }
  TestCli cli;
  ASSERT_TRUE(ApplyConfigFile(cli.app, WriteFile("[engine]\nmodel = \"m.gguf\"\n")).ok());
  ASSERT_EQ(cli.Parse({"engine"}), "");
  EXPECT_EQ(cli.model, "m.gguf");
}

TEST_F(ConfigTest, FlagOverridesFileFlagValue) {
  TestCli cli;
  ASSERT_TRUE(ApplyConfigFile(cli.app, WriteFile("[serve]\nverbose = false\n")).ok());
  ASSERT_EQ(cli.Parse({"serve", "--verbose"}), "");
  EXPECT_TRUE(cli.verbose);
}

TEST_F(ConfigTest, UnknownKeyNamesFileSectionAndKey) {
  TestCli cli;
  const std::string path = WriteFile("[serve]\nprot = 1\n");
  const absl::Status status = ApplyConfigFile(cli.app, path);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr(path));
  EXPECT_THAT(std::string(status.message()), HasSubstr("[serve] prot"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("unknown key"));
}

TEST_F(ConfigTest, UnknownTopLevelKeyIsRejected) {
  TestCli cli;
  const absl::Status status = ApplyConfigFile(cli.app, WriteFile("port = 1\n"));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("port: unknown key"));
}

TEST_F(ConfigTest, MetaOptionsAreNotKeys) {
  TestCli cli;
  EXPECT_FALSE(ApplyConfigFile(cli.app, WriteFile("config = \"other.toml\"\n")).ok());
  EXPECT_FALSE(ApplyConfigFile(cli.app, WriteFile("help = true\n")).ok());
}

TEST_F(ConfigTest, UnknownSectionIsRejected) {
  TestCli cli;
  const absl::Status status = ApplyConfigFile(cli.app, WriteFile("[servr]\nport = 1\n"));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("unknown section [servr]"));
}

TEST_F(ConfigTest, BadValuesAreRejected) {
  for (const char* text : {"[serve]\nport = \"abc\"\n", "[serve]\nport = 70000\n",
                           "[serve]\nratio = fast\n", "[serve]\nhost = [\"a\", \"b\"]\n"}) {
    SCOPED_TRACE(text);
    TestCli cli;
    const absl::Status status = ApplyConfigFile(cli.app, WriteFile(text));
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(status.message()), HasSubstr("[serve] "));
    EXPECT_EQ(std::string(status.message()).find('\n'), std::string::npos);
  }
}

TEST_F(ConfigTest, MissingFileIsRejected) {
  TestCli cli;
  const absl::Status status = ApplyConfigFile(cli.app, "/nonexistent/triplane.toml");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("/nonexistent/triplane.toml"));
  EXPECT_FALSE(ApplyConfigFile(cli.app, ::testing::TempDir()).ok());  // a directory
}

TEST_F(ConfigTest, BadEnvironmentValueFailsParsing) {
  TestCli cli;
  ScopedEnv port("TRIPLANE_PORT", "not-a-port");
  EXPECT_NE(cli.Parse({"serve"}), "");
}

std::optional<std::string> Find(std::vector<const char*> args) {
  args.insert(args.begin(), "triplane");
  return FindConfigFile(static_cast<int>(args.size()), args.data());
}

TEST_F(ConfigTest, FindConfigFileReadsFlagThenEnvironment) {
  EXPECT_EQ(Find({"serve"}), std::nullopt);
  EXPECT_EQ(Find({"--config", "a.toml", "serve"}), "a.toml");
  EXPECT_EQ(Find({"serve", "--config=b.toml"}), "b.toml");
  EXPECT_EQ(Find({"serve", "--", "--config", "c.toml"}), std::nullopt);
  EXPECT_EQ(Find({"--configure", "x"}), std::nullopt);
  ScopedEnv env("TRIPLANE_CONFIG", "env.toml");
  EXPECT_EQ(Find({"serve"}), "env.toml");
  EXPECT_EQ(Find({"--config", "a.toml"}), "a.toml");
}

}  // namespace
}  // namespace triplane::common
