#include "gateway/web_assets.h"

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "common/http_router.h"
#include "common/sha256.h"
#include "gtest/gtest.h"

namespace triplane::gateway {
namespace {

TEST(WebAssetsTest, EmbedsEveryFileOfWebWithItsBytesAndDigest) {
  const std::filesystem::path web = std::filesystem::path(TRIPLANE_SOURCE_DIR) / "web";
  std::set<std::string> on_disk;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(web)) {
    if (entry.is_regular_file()) on_disk.insert("/" + entry.path().lexically_relative(web).generic_string());
  }
  std::set<std::string> embedded;
  for (const common::StaticFile& file : WebAssets()) {
    embedded.insert(std::string(file.path));
    std::ifstream in(web / std::string(file.path.substr(1)), std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    // Digests rather than bytes: a failure names the file without printing it.
    EXPECT_EQ(common::Sha256Hex(file.bytes()), common::Sha256Hex(bytes.str())) << file.path << " differs from web/";
    EXPECT_EQ(file.sha256, common::Sha256Hex(file.bytes())) << file.path;
    EXPECT_FALSE(file.content_type.empty());
  }
  EXPECT_EQ(embedded, on_disk);
  EXPECT_TRUE(embedded.contains("/index.html"));
  EXPECT_TRUE(embedded.contains("/admin.html"));
}

TEST(WebAssetsTest, ServesTheChatAtTheRootAndTheConsoleAtAdmin) {
  common::HttpRouter router;
  AddWebRoutes(router);
  for (std::string_view path : {"/", "/admin", "/index.html", "/admin.html"}) {
    EXPECT_NE(router.Find(common::HttpMethod::kGet, path).handler, nullptr) << path;
  }
  EXPECT_EQ(router.Find(common::HttpMethod::kGet, "/nope.html").handler, nullptr);
}

}  // namespace
}  // namespace triplane::gateway
