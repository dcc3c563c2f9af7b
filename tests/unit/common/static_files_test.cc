#include "common/static_files.h"

#include <memory>

#include "common/http_client.h"
#include "common/http_router.h"
#include "common/http_server.h"
#include "common/metrics.h"
#include "gtest/gtest.h"

namespace triplane::common {
namespace {

constexpr unsigned char kPage[] = {'<', 'p', '>', 'h', 'i', '<', '/', 'p', '>'};
// Any 64 hex digits: the ETag is the first 32.
constexpr StaticFile kFiles[] = {
    {"/index.html", "text/html; charset=utf-8",
     "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", kPage, sizeof(kPage)},
    {"/app.js", "text/javascript; charset=utf-8",
     "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210", kPage, 0},
};

class StaticFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    HttpRouter router;
    AddStaticFileRoutes(router, kFiles, {.aliases = {{"/", "/index.html"}}});
    server_ = std::make_unique<HttpServer>(
        HttpServerOptions{.host = "127.0.0.1", .port = 0, .threads = 1, .metrics = &registry_},
        std::move(router));
    ASSERT_TRUE(server_->Start().ok());
  }

  HttpResponse Get(std::string_view path, std::string_view if_none_match = {},
                   HttpMethod method = HttpMethod::kGet) {
    HttpClientRequest request{.method = method,
                              .url = "http://127.0.0.1:" + std::to_string(server_->port()) + std::string(path)};
    if (!if_none_match.empty()) request.headers.Set("if-none-match", if_none_match);
    auto response = client_.Send(request);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? *response : HttpResponse{.status = 0};
  }

  MetricsRegistry registry_;
  std::unique_ptr<HttpServer> server_;
  HttpClient client_;
};

TEST_F(StaticFilesTest, ServesFilesAndAliasesWithTypeAndSecurityHeaders) {
  for (std::string_view path : {"/", "/index.html"}) {
    HttpResponse page = Get(path);
    EXPECT_EQ(page.status, 200);
    EXPECT_EQ(page.body, "<p>hi</p>");
    EXPECT_EQ(page.headers.Get("content-type"), "text/html; charset=utf-8");
    EXPECT_EQ(page.headers.Get("etag"), "\"0123456789abcdef0123456789abcdef\"");
    EXPECT_EQ(page.headers.Get("cache-control"), "no-cache");
    EXPECT_EQ(page.headers.Get("x-content-type-options"), "nosniff");
    const std::string csp(page.headers.Get("content-security-policy").value_or(""));
    EXPECT_NE(csp.find("script-src 'self'"), std::string::npos) << csp;
    EXPECT_EQ(csp.find("unsafe-inline"), std::string::npos) << csp;
    EXPECT_EQ(csp.find("unsafe-eval"), std::string::npos) << csp;
  }
  HttpResponse empty = Get("/app.js");
  EXPECT_EQ(empty.status, 200);
  EXPECT_EQ(empty.body, "");
  EXPECT_EQ(empty.headers.Get("content-type"), "text/javascript; charset=utf-8");
}

TEST_F(StaticFilesTest, AnswersNotModifiedToAMatchingETag) {
  const std::string etag = "\"0123456789abcdef0123456789abcdef\"";
  for (std::string header : {etag, "W/" + etag, "\"other\", " + etag, std::string("*")}) {
    HttpResponse cached = Get("/index.html", header);
    EXPECT_EQ(cached.status, 304) << header;
    EXPECT_EQ(cached.body, "");
    EXPECT_EQ(cached.headers.Get("etag"), etag);
  }
  EXPECT_EQ(Get("/index.html", "\"other\"").status, 200);
}

TEST_F(StaticFilesTest, AnswersHeadWithoutABody) {
  HttpResponse head = Get("/index.html", {}, HttpMethod::kHead);
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.body, "");
  EXPECT_EQ(head.headers.Get("etag"), "\"0123456789abcdef0123456789abcdef\"");
}

TEST_F(StaticFilesTest, ServesNothingOutsideTheSet) {
  for (std::string_view path : {"/index.htm", "/index.html/", "/x/index.html", "/%2e%2e/index.html",
                                "/../etc/passwd", "/index.html%00"}) {
    const int status = Get(path).status;
    EXPECT_TRUE(status == 404 || status == 400) << path << ": " << status;
  }
  EXPECT_EQ(Get("/index.html", {}, HttpMethod::kPost).status, 405);
}

}  // namespace
}  // namespace triplane::common
