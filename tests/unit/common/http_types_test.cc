#include "common/http_types.h"

#include "common/http_wire.h"
#include "common/json.h"
#include "common/openai_error.h"
#include "gtest/gtest.h"

namespace triplane::common {
namespace {

TEST(HttpTypesTest, HeadersAreCaseInsensitiveAndOrdered) {
  HttpHeaders headers;
  headers.Add("Set-Cookie", "a");
  headers.Add("set-cookie", "b");
  headers.Set("Content-Type", "text/plain");
  EXPECT_EQ(headers.Get("SET-COOKIE").value_or(""), "a");
  headers.Set("content-type", "application/json");
  EXPECT_EQ(headers.Get("Content-Type").value_or(""), "application/json");
  EXPECT_EQ(headers.fields().size(), 3u);
  headers.Remove("Set-Cookie");
  EXPECT_FALSE(headers.Has("set-cookie"));
}

TEST(HttpTypesTest, PercentCodingRoundTripsAndToleratesBadEscapes) {
  EXPECT_EQ(PercentDecode("a%20b%2Fc"), "a b/c");
  EXPECT_EQ(PercentDecode("a+b", /*plus_as_space=*/true), "a b");
  EXPECT_EQ(PercentDecode("100%"), "100%");
  EXPECT_EQ(PercentDecode("%zz%4"), "%zz%4");
  std::string raw = "中文 ✓/?&=";
  EXPECT_EQ(PercentDecode(PercentEncode(raw)), raw);
}

TEST(HttpTypesTest, QueryParametersAreDecoded) {
  HttpRequest request;
  request.query = "since=12&name=a%20b&flag&name=second";
  EXPECT_EQ(request.QueryParam("since").value_or(""), "12");
  EXPECT_EQ(request.QueryParam("name").value_or(""), "a b");
  EXPECT_EQ(request.QueryParam("flag").value_or("missing"), "");
  EXPECT_FALSE(request.QueryParam("absent").has_value());
}

TEST(HttpTypesTest, ParsesHttpUrlsAndRejectsOthers) {
  auto url = ParseHttpUrl("http://127.0.0.1:8081/v1/models?x=1#frag");
  ASSERT_TRUE(url);
  EXPECT_EQ(url->host, "127.0.0.1");
  EXPECT_EQ(url->port, 8081);
  EXPECT_EQ(url->target, "/v1/models?x=1");
  url = ParseHttpUrl("HTTPS://example.org");
  ASSERT_TRUE(url);
  EXPECT_EQ(url->scheme, "https");
  EXPECT_EQ(url->port, 443);
  EXPECT_EQ(url->target, "/");
  url = ParseHttpUrl("http://[::1]:9000/x");
  ASSERT_TRUE(url);
  EXPECT_EQ(url->host, "::1");
  EXPECT_EQ(url->port, 9000);
  std::string error;
  for (const char* bad : {"ftp://x/", "file:///etc/passwd", "http://", "http://h:0/",
                          "http://h:99999/", "http://user:pw@h/", "http://h/a b", "nohost"}) {
    EXPECT_FALSE(ParseHttpUrl(bad, &error)) << bad;
    EXPECT_FALSE(error.empty()) << bad;
  }
}

TEST(HttpWireTest, DropsHeadersThatCouldSplitTheResponse) {
  HttpHeaders headers;
  headers.Set("X-Ok", "fine");
  headers.Set("X-Evil", "a\r\nSet-Cookie: stolen=1");
  headers.Set("Bad Name", "x");
  headers.Set("Content-Length", "999");
  std::string head = SerializeResponseHead(200, headers, 5);
  EXPECT_EQ(head, "HTTP/1.1 200 OK\r\nX-Ok: fine\r\nContent-Length: 5\r\n\r\n");
  EXPECT_EQ(SerializeResponseHead(201, {}, std::nullopt),
            "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n");
  std::string chunks;
  AppendChunk(chunks, std::string(26, 'a'));
  EXPECT_EQ(chunks, "1a\r\n" + std::string(26, 'a') + "\r\n");
}

TEST(JsonTest, ParsesValidJsonAndExplainsInvalidJson) {
  auto value = ParseJson(R"({"a":[1,2,{"b":null}]})");
  ASSERT_TRUE(value.ok());
  EXPECT_EQ((*value)["a"][1], 2);
  auto bad = ParseJson("{\"a\":");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(ParseJson("").ok());
  EXPECT_FALSE(ParseJson("{} trailing").ok());
}

TEST(HttpTypesTest, PresentedApiKeyFromBearerOrXApiKey) {
  HttpRequest request;
  EXPECT_EQ(PresentedApiKey(request), "");
  request.headers.Set("x-api-key", "tp-second");
  EXPECT_EQ(PresentedApiKey(request), "tp-second");
  request.headers.Set("Authorization", "BEARER   tp-first");
  EXPECT_EQ(PresentedApiKey(request), "tp-first");
  request.headers.Set("Authorization", "Basic dXNlcjpwYXNz");  // not a bearer token
  EXPECT_EQ(PresentedApiKey(request), "tp-second");
}

TEST(HttpTypesTest, PresentsApiKeyMatchesExactlyTheWholeKey) {
  HttpRequest request;
  EXPECT_FALSE(PresentsApiKey(request, "sk-1"));
  request.headers.Set("authorization", "Bearer sk-1");
  EXPECT_TRUE(PresentsApiKey(request, "sk-1"));
  EXPECT_FALSE(PresentsApiKey(request, "sk-12"));
  EXPECT_FALSE(PresentsApiKey(request, "sk-"));
  EXPECT_FALSE(PresentsApiKey(request, "sk-2"));
}

TEST(JsonTest, RejectsNestingBeyondTheLimitWithoutCrashing) {
  std::string deep(100000, '[');
  auto result = ParseJson(deep + std::string(100000, ']'));
  ASSERT_FALSE(result.ok());
  EXPECT_NE(std::string(result.status().message()).find("deeper"), std::string::npos);
  EXPECT_TRUE(ParseJson(std::string(10, '[') + std::string(10, ']')).ok());
}

TEST(JsonTest, CountsOnlyBracketsOutsideStringsAgainstTheDepthLimit) {
  // Exactly the limit parses; one level more does not, closed or not.
  EXPECT_TRUE(ParseJson(std::string(64, '[') + std::string(64, ']')).ok());
  EXPECT_FALSE(ParseJson(std::string(65, '[') + std::string(65, ']')).ok());
  EXPECT_FALSE(ParseJson(std::string(10'000'000, '[')).ok());
  EXPECT_FALSE(ParseJson(R"({"a":)" + std::string(64, '[') + std::string(64, ']') + "}").ok());
  // Brackets and escaped quotes inside strings are text.
  auto text = ParseJson(R"({"a": "[[[[\"{{{{", "b": [1]})", 2);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ((*text)["a"], "[[[[\"{{{{");
}

TEST(OpenAiErrorTest, MapsStatusesToHttpAndOpenAiTypes) {
  HttpResponse response = OpenAiErrorResponse(absl::NotFoundError("model 'x' not found"));
  EXPECT_EQ(response.status, 404);
  auto body = ParseJson(response.body);
  ASSERT_TRUE(body.ok());
  EXPECT_EQ((*body)["error"]["message"], "model 'x' not found");
  EXPECT_EQ((*body)["error"]["type"], "not_found_error");
  EXPECT_TRUE((*body)["error"]["code"].is_null());
  EXPECT_EQ(HttpStatusFromStatus(absl::ResourceExhaustedError("")), 429);
  EXPECT_EQ(HttpStatusFromStatus(absl::UnauthenticatedError("")), 401);
  EXPECT_EQ(HttpStatusFromStatus(absl::InternalError("")), 500);
  EXPECT_EQ(OpenAiErrorType(429), "rate_limit_error");
}

}  // namespace
}  // namespace triplane::common
