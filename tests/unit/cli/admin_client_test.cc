// Formatting helpers of the admin CLI.
#include "cli/admin_client.h"

#include <gtest/gtest.h>

namespace triplane::cli {
namespace {

TEST(AdminClientTest, TablePadsColumnsToTheWidestCellInTerminalColumns) {
  const std::string table = FormatTable({"NAME", "SIZE"}, {{"demo", "1.0 MiB"}, {"模型", "2 B"}});
  EXPECT_EQ(table,
            "NAME  SIZE\n"
            "demo  1.0 MiB\n"
            "模型  2 B\n");  // two wide characters fill four columns
}

TEST(AdminClientTest, HumanUnits) {
  EXPECT_EQ(HumanBytes(12), "12 B");
  EXPECT_EQ(HumanBytes(1536), "1.5 KiB");
  EXPECT_EQ(HumanBytes(int64_t{3} << 30), "3.0 GiB");
  EXPECT_EQ(HumanCount(812), "812");
  EXPECT_EQ(HumanCount(15'300'000), "15.3M");
  EXPECT_EQ(HumanCount(1'200'000'000), "1.2B");
  EXPECT_EQ(HumanAge("not a time"), "-");
  EXPECT_EQ(HumanAge(nullptr), "-");
}

TEST(AdminClientTest, ModelReferencesAndPathSegments) {
  EXPECT_EQ(SplitModelVersion("llama3"), (std::pair<std::string, std::string>{"llama3", ""}));
  EXPECT_EQ(SplitModelVersion("org/llama3:v2"),
            (std::pair<std::string, std::string>{"org/llama3", "v2"}));
  EXPECT_EQ(PathSegment("org/llama3"), "org%2Fllama3");
  EXPECT_EQ(Cell(nullptr), "-");
  EXPECT_EQ(Cell(""), "-");
  EXPECT_EQ(Cell("x"), "x");
  EXPECT_EQ(Cell(3), "3");
}

TEST(AdminClientTest, MissingKeySaysWhereToFindOne) {
  AdminFlags flags{.admin_key = "", .data_dir = "/nonexistent-triplane-dir"};
  absl::StatusOr<std::string> key = AdminClient(flags).Key();
  ASSERT_FALSE(key.ok());
  EXPECT_NE(key.status().message().find("TRIPLANE_ADMIN_KEY"), std::string::npos);
}

}  // namespace
}  // namespace triplane::cli
