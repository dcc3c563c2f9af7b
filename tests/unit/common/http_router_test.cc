#include "common/http_router.h"

#include "gtest/gtest.h"

namespace triplane::common {
namespace {

HttpHandler Named(int* hit, int id) {
  return [hit, id](std::shared_ptr<Responder>) { *hit = id; };
}

TEST(HttpRouterTest, MatchesLiteralAndParameterSegments) {
  HttpRouter router;
  int hit = 0;
  router.Add(HttpMethod::kGet, "/admin/v1/models/{model}/versions/{version}", Named(&hit, 1));
  auto match = router.Find(HttpMethod::kGet, "/admin/v1/models/llama/versions/3");
  ASSERT_NE(match.handler, nullptr);
  EXPECT_EQ(match.route, "/admin/v1/models/{model}/versions/{version}");
  ASSERT_EQ(match.params.size(), 2u);
  EXPECT_EQ(match.params[0], (std::pair<std::string, std::string>{"model", "llama"}));
  EXPECT_EQ(match.params[1], (std::pair<std::string, std::string>{"version", "3"}));
}

TEST(HttpRouterTest, LiteralSegmentsWinOverParameters) {
  HttpRouter router;
  int hit = 0;
  router.Add(HttpMethod::kGet, "/v1/models/{id}", Named(&hit, 1));
  router.Add(HttpMethod::kGet, "/v1/models/default", Named(&hit, 2));
  auto match = router.Find(HttpMethod::kGet, "/v1/models/default");
  ASSERT_NE(match.handler, nullptr);
  (*match.handler)(nullptr);
  EXPECT_EQ(hit, 2);
  match = router.Find(HttpMethod::kGet, "/v1/models/other");
  ASSERT_NE(match.handler, nullptr);
  (*match.handler)(nullptr);
  EXPECT_EQ(hit, 1);
}

TEST(HttpRouterTest, RestParameterTakesTheRemainingPath) {
  HttpRouter router;
  int hit = 0;
  router.Add(HttpMethod::kGet, "/static/{path...}", Named(&hit, 1));
  auto match = router.Find(HttpMethod::kGet, "/static/css/app.css");
  ASSERT_NE(match.handler, nullptr);
  EXPECT_EQ(match.params[0].second, "css/app.css");
  EXPECT_EQ(router.Find(HttpMethod::kGet, "/static").handler, nullptr);
}

TEST(HttpRouterTest, DecodesParametersAfterSplitting) {
  HttpRouter router;
  int hit = 0;
  router.Add(HttpMethod::kGet, "/models/{name}", Named(&hit, 1));
  auto match = router.Find(HttpMethod::kGet, "/models/org%2Fname");
  ASSERT_NE(match.handler, nullptr);
  EXPECT_EQ(match.params[0].second, "org/name");
}

TEST(HttpRouterTest, ReportsAllowedMethodsWhenOnlyTheMethodDiffers) {
  HttpRouter router;
  int hit = 0;
  router.Add(HttpMethod::kGet, "/things", Named(&hit, 1));
  router.Add(HttpMethod::kPost, "/things", Named(&hit, 2));
  auto match = router.Find(HttpMethod::kDelete, "/things");
  EXPECT_EQ(match.handler, nullptr);
  EXPECT_EQ(match.allowed, (std::vector<HttpMethod>{HttpMethod::kGet, HttpMethod::kPost}));
  auto none = router.Find(HttpMethod::kGet, "/other");
  EXPECT_EQ(none.handler, nullptr);
  EXPECT_TRUE(none.allowed.empty());
}

TEST(HttpRouterTest, DistinguishesTrailingSlashAndEmptySegments) {
  HttpRouter router;
  int hit = 0;
  router.Add(HttpMethod::kGet, "/a/{x}", Named(&hit, 1));
  EXPECT_EQ(router.Find(HttpMethod::kGet, "/a/").handler, nullptr);
  EXPECT_EQ(router.Find(HttpMethod::kGet, "/a/b/").handler, nullptr);
  EXPECT_NE(router.Find(HttpMethod::kGet, "/a/b").handler, nullptr);
  router.Add(HttpMethod::kGet, "/", Named(&hit, 2));
  EXPECT_NE(router.Find(HttpMethod::kGet, "/").handler, nullptr);
}

TEST(HttpRouterDeathTest, RejectsMalformedAndDuplicateRoutes) {
  HttpRouter router;
  int hit = 0;
  EXPECT_DEATH(router.Add(HttpMethod::kGet, "no-slash", Named(&hit, 1)), "must start with");
  EXPECT_DEATH(router.Add(HttpMethod::kGet, "/a/{rest...}/b", Named(&hit, 1)), "last segment");
  router.Add(HttpMethod::kGet, "/dup", Named(&hit, 1));
  EXPECT_DEATH(router.Add(HttpMethod::kGet, "/dup", Named(&hit, 1)), "twice");
}

}  // namespace
}  // namespace triplane::common
