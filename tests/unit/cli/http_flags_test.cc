// src/cli is compiled only into the triplane binary, so this test compiles the one
// source file it covers itself.
#include "cli/http_flags.h"

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "common/config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace triplane::cli {
namespace {

using std::chrono::milliseconds;
using ::testing::HasSubstr;

// Parses `args` into `options`; returns CLI11's error text, or "" on success.
std::string Parse(common::HttpServerOptions& options, std::vector<std::string> args) {
  CLI::App app("test", "test");
  AddHttpServerFlags(app, options);
  args.insert(args.begin(), "test");
  std::vector<const char*> argv;
  for (const std::string& arg : args) argv.push_back(arg.c_str());
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::ParseError& e) {
    return e.what();
  }
  return "";
}

TEST(HttpFlagsTest, NoFlagsKeepsDefaults) {
  common::HttpServerOptions options;
  ASSERT_EQ(Parse(options, {}), "");
  const common::HttpServerOptions defaults;
  EXPECT_EQ(options.host, defaults.host);
  EXPECT_EQ(options.port, defaults.port);
  EXPECT_EQ(options.header_timeout, defaults.header_timeout);
  EXPECT_EQ(options.idle_timeout, defaults.idle_timeout);
}

TEST(HttpFlagsTest, SetsEveryField) {
  common::HttpServerOptions options;
  ASSERT_EQ(Parse(options, {"--host", "0.0.0.0", "--port", "0", "--http-threads", "3",
                            "--max-body-bytes", "1024", "--header-timeout", "1.5", "--body-timeout",
                            "2", "--idle-timeout", "0.25", "--write-timeout", "0.0001"}),
            "");
  EXPECT_EQ(options.host, "0.0.0.0");
  EXPECT_EQ(options.port, 0);
  EXPECT_EQ(options.threads, 3);
  EXPECT_EQ(options.max_body_bytes, 1024u);
  EXPECT_EQ(options.header_timeout, milliseconds(1500));
  EXPECT_EQ(options.body_timeout, milliseconds(2000));
  EXPECT_EQ(options.idle_timeout, milliseconds(250));
  EXPECT_EQ(options.write_timeout, milliseconds(1));  // never rounds down to zero
}

TEST(HttpFlagsTest, RejectsOutOfRangeValues) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"--port", "65536"},
           {"--port", "-1"},
           {"--port", "http"},
           {"--http-threads", "-1"},
           {"--max-body-bytes", "0"},
           {"--header-timeout", "0"},
           {"--body-timeout", "-2"},
           {"--idle-timeout", "inf"},
           {"--write-timeout", "nan"},
           {"--write-timeout", "soon"},
       }) {
    SCOPED_TRACE(args[0] + " " + args[1]);
    common::HttpServerOptions options;
    EXPECT_THAT(Parse(options, args), HasSubstr(args[0]));
  }
}

TEST(HttpFlagsTest, HelpShowsDefaultsInSeconds) {
  common::HttpServerOptions options;
  CLI::App app("test", "test");
  AddHttpServerFlags(app, options);
  const std::string help = app.help();
  EXPECT_THAT(help, HasSubstr("--idle-timeout"));
  EXPECT_THAT(help, HasSubstr("75"));
}

TEST(HttpFlagsTest, ConfigFileSetsTimeoutsAndEnvironmentOverridesIt) {
  const std::string path =
      ::testing::TempDir() + "/http_flags_test_" + std::to_string(getpid()) + ".toml";
  std::ofstream(path) << "header-timeout = 2.5\nidle_timeout = 4\nport = 0\n";
  setenv("TRIPLANE_IDLE_TIMEOUT", "7", 1);

  common::HttpServerOptions options;
  CLI::App app("test", "test");
  AddHttpServerFlags(app, options);
  common::BindEnvironment(app);
  const absl::Status status = common::ApplyConfigFile(app, path);
  std::remove(path.c_str());
  ASSERT_TRUE(status.ok()) << status;
  const char* argv[] = {"test"};
  app.parse(1, argv);
  unsetenv("TRIPLANE_IDLE_TIMEOUT");

  EXPECT_EQ(options.header_timeout, milliseconds(2500));  // from the file
  EXPECT_EQ(options.idle_timeout, milliseconds(7000));    // the environment wins
  EXPECT_EQ(options.port, 0);
}

TEST(HttpFlagsTest, ConfigFileRejectsBadTimeout) {
  const std::string path =
      ::testing::TempDir() + "/http_flags_bad_" + std::to_string(getpid()) + ".toml";
  std::ofstream(path) << "write-timeout = -1\n";
  common::HttpServerOptions options;
  CLI::App app("test", "test");
  AddHttpServerFlags(app, options);
  const absl::Status status = common::ApplyConfigFile(app, path);
  std::remove(path.c_str());
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("write-timeout"));
}

}  // namespace
}  // namespace triplane::cli
