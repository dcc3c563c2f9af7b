#include "gateway/gateway_options.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace triplane::gateway {
namespace {

using ::testing::HasSubstr;

TEST(GatewayOptionsTest, DefaultsAreValid) {
  const GatewayOptions options;
  EXPECT_TRUE(options.Validate().ok());
  EXPECT_EQ(options.port, 8080);
  EXPECT_EQ(options.control_url, "http://127.0.0.1:8090");
}

TEST(GatewayOptionsTest, AcceptsHttpAndHttpsControlUrls) {
  for (const char* url :
       {"http://control:8090", "https://control.example.com", "http://10.0.0.7:1/prefix",
        "http://[::1]:8090", "https://[fd00::1]/admin", "http://localhost"}) {
    SCOPED_TRACE(url);
    const GatewayOptions options{.control_url = url};
    EXPECT_TRUE(options.Validate().ok()) << options.Validate();
  }
}

TEST(GatewayOptionsTest, RejectsMalformedControlUrls) {
  for (const char* url :
       {"", "control:8090", "ftp://control", "http://", "http://:8090",
        "http://host:", "http://host:0", "http://host:65536", "http://host:80x", "http://host:+80",
        "http://[::1", "http://[::1]x", "http://user@host", "http://ho st"}) {
    SCOPED_TRACE(url);
    const GatewayOptions options{.control_url = url};
    const absl::Status status = options.Validate();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(status.message()), HasSubstr("control-url"));
  }
}

TEST(GatewayOptionsTest, RejectsEmptyHost) {
  const GatewayOptions options{.host = ""};
  EXPECT_THAT(std::string(options.Validate().message()), HasSubstr("host"));
}

}  // namespace
}  // namespace triplane::gateway
