#include "common/http_client.h"

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <thread>

#include "common/http_server.h"
#include "common/metrics.h"
#include "common/openai_error.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "raw_socket.h"

namespace triplane::common {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

class HttpClientTest : public ::testing::Test {
 protected:
  void StartServer(HttpServerOptions options = {}) {
    HttpRouter router;
    router.Add(HttpMethod::kGet, "/hello", HttpSyncHandler([this](const HttpRequest&) {
                 ++hellos_;
                 return HttpResponse::Text(200, "hello");
               }));
    router.Add(HttpMethod::kGet, "/big", HttpSyncHandler([](const HttpRequest&) {
                 return HttpResponse::Text(200, std::string(1 << 20, 'b'));
               }));
    router.Add(HttpMethod::kGet, "/never", HttpHandler([this](std::shared_ptr<Responder> r) {
                 std::lock_guard<std::mutex> lock(mu_);
                 parked_.push_back(std::move(r));
               }));
    router.Add(HttpMethod::kGet, "/limited", HttpSyncHandler([](const HttpRequest&) {
                 return OpenAiErrorResponse(429, "slow down");
               }));
    options.host = "127.0.0.1";
    options.port = 0;
    options.metrics = &registry_;
    server_ = std::make_unique<HttpServer>(options, std::move(router));
    ASSERT_TRUE(server_->Start().ok());
  }

  void TearDown() override {
    if (server_) server_->Shutdown(0ms);
    std::lock_guard<std::mutex> lock(mu_);
    parked_.clear();
  }

  std::string Url(std::string_view path) const {
    return "http://127.0.0.1:" + std::to_string(server_->port()) + std::string(path);
  }

  MetricsRegistry registry_;
  std::unique_ptr<HttpServer> server_;
  std::mutex mu_;
  std::vector<std::shared_ptr<Responder>> parked_;
  std::atomic<int> hellos_{0};
};

TEST_F(HttpClientTest, RefusedConnectionIsUnavailable) {
  uint16_t port;
  {
    StartServer();
    port = server_->port();
    server_->Shutdown(0ms);
  }
  HttpClient client;
  auto response = client.Send({.url = "http://127.0.0.1:" + std::to_string(port) + "/"});
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(HttpClientTest, ARefusedPeerIsJudgedByTheAddressReachedAndGetsNoRequest) {
  StartServer();
  std::vector<std::pair<std::string, int>> asked;
  HttpClient client({.refuse_peer = [&](std::string_view address, int port) {
    asked.emplace_back(address, port);
    return address == "127.0.0.1" && port == server_->port();
  }});
  // "localhost" names no refused address; the connection it makes reaches one.
  const std::string url = "http://localhost:" + std::to_string(server_->port()) + "/hello";
  auto response = client.Send({.url = url});
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(hellos_.load(), 0);
  ASSERT_EQ(asked.size(), 1u);
  EXPECT_EQ(asked[0], std::make_pair(std::string("127.0.0.1"), static_cast<int>(server_->port())));
  // A peer the check lets through is served as usual.
  HttpClient allowing({.refuse_peer = [](std::string_view, int) { return false; }});
  auto ok = allowing.Send({.url = url});
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(hellos_.load(), 1);
}

// A caller may keep the stream's handle in what its callbacks capture (the gateway's proxy
// does): once on_done has run, the client lets go of the callbacks, so no cycle remains,
// even when on_done ran before the caller stored the handle.
TEST_F(HttpClientTest, ACompletedStreamReleasesWhatItsCallbacksCaptured) {
  StartServer();
  HttpClient client;
  for (const std::string path : {"/hello", "/missing-port"}) {
    struct Holder {
      std::shared_ptr<HttpStreamHandle> handle;
    };
    auto holder = std::make_shared<Holder>();
    std::weak_ptr<Holder> weak = holder;
    std::promise<void> done;
    HttpStreamCallbacks callbacks;
    callbacks.on_data = [holder](std::string_view) { return true; };
    callbacks.on_done = [holder, &done](absl::Status) { done.set_value(); };
    // A refused connection ends at once, often before Stream() has returned.
    const std::string url = path == "/hello" ? Url(path) : "http://127.0.0.1:1/";
    holder->handle = client.Stream({.url = url}, std::move(callbacks));
    ASSERT_EQ(done.get_future().wait_for(10s), std::future_status::ready) << path;
    holder.reset();  // what remains: the handle, held by the holder itself
    for (int i = 0; i < 200 && !weak.expired(); ++i) std::this_thread::sleep_for(5ms);
    EXPECT_TRUE(weak.expired()) << path << ": the stream still holds its callbacks";
  }
}

TEST_F(HttpClientTest, BadUrlsAreInvalidArguments) {
  HttpClient client;
  for (const char* url : {"", "ftp://127.0.0.1/", "http://127.0.0.1:0/"}) {
    auto response = client.Send({.url = url});
    ASSERT_FALSE(response.ok()) << url;
    EXPECT_EQ(response.status().code(), absl::StatusCode::kInvalidArgument) << url;
  }
}

TEST_F(HttpClientTest, SilentServerHitsTheRequestTimeout) {
  StartServer();
  HttpClient client;
  auto start = std::chrono::steady_clock::now();
  auto response = client.Send({.url = Url("/never"), .timeout = 200ms});
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST_F(HttpClientTest, RetriesOnceWhenAPooledConnectionWasClosedByTheServer) {
  StartServer({.idle_timeout = 100ms});
  HttpClient client;
  ASSERT_TRUE(client.Send({.url = Url("/hello")}).ok());
  std::this_thread::sleep_for(400ms);  // the server closes the idle connection meanwhile
  auto response = client.Send({.url = Url("/hello")});
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->body, "hello");
  EXPECT_EQ(client.connections_opened(), 2);
}

TEST_F(HttpClientTest, RefusesResponsesLargerThanTheLimit) {
  StartServer();
  HttpClient client({.max_response_bytes = 1000});
  auto response = client.Send({.url = Url("/big")});
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().code(), absl::StatusCode::kResourceExhausted);
  HttpClient roomy;
  auto ok = roomy.Send({.url = Url("/big")});
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->body.size(), 1u << 20);
}

TEST_F(HttpClientTest, ReadSseTurnsAnErrorStatusIntoAStatusWithTheBody) {
  StartServer();
  HttpClient client;
  absl::Status status = client.ReadSse({.url = Url("/limited")}, [](const SseEvent&) { return true; });
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(status.message()), HasSubstr("slow down"));
}

TEST_F(HttpClientTest, AsyncSendDeliversOnAClientThread) {
  StartServer();
  HttpClient client;
  std::promise<absl::StatusOr<HttpResponse>> promise;
  client.SendAsync({.url = Url("/hello")},
                   [&](absl::StatusOr<HttpResponse> r) { promise.set_value(std::move(r)); });
  auto future = promise.get_future();
  ASSERT_EQ(future.wait_for(5s), std::future_status::ready);
  auto response = future.get();
  ASSERT_TRUE(response.ok());
  EXPECT_EQ(response->body, "hello");
}

}  // namespace
}  // namespace triplane::common
