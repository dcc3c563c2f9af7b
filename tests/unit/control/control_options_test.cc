#include "control/control_options.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace triplane::control {
namespace {

using ::testing::HasSubstr;

TEST(ControlOptionsTest, DefaultsAreValid) {
  const ControlOptions options;
  EXPECT_TRUE(options.Validate().ok());
  EXPECT_EQ(options.data_dir, "./triplane-data");
  EXPECT_EQ(options.store, "sqlite");
  EXPECT_EQ(options.port, 8090);
}

TEST(ControlOptionsTest, RejectsUnknownStore) {
  const ControlOptions options{.store = "mongodb"};
  const absl::Status status = options.Validate();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("mongodb"));
}

TEST(ControlOptionsTest, AcceptsSqlitePathsAndPostgresUrls) {
  for (const char* store : {"sqlite", "sqlite:/tmp/x.db", "postgres://u:p@127.0.0.1:5432/db"}) {
    EXPECT_TRUE(ControlOptions{.store = store}.Validate().ok()) << store;
  }
}

TEST(ControlOptionsTest, RejectsEmptyDataDirAndHost) {
  EXPECT_THAT(std::string(ControlOptions{.data_dir = ""}.Validate().message()),
              HasSubstr("data-dir"));
  EXPECT_THAT(std::string(ControlOptions{.host = ""}.Validate().message()), HasSubstr("host"));
}

}  // namespace
}  // namespace triplane::control
