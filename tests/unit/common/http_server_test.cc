#include "common/http_server.h"

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "common/http_client.h"
#include "common/json.h"
#include "common/metrics.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "raw_socket.h"

namespace triplane::common {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using triplane::testing::RawSocket;

// A server on a free loopback port with its own metrics registry.
class ServerFixture {
 public:
  explicit ServerFixture(HttpRouter router, HttpServerOptions options = {}) {
    options.host = "127.0.0.1";
    options.port = 0;
    if (options.threads == 0) options.threads = 2;
    options.metrics = &registry_;
    server_ = std::make_unique<HttpServer>(options, std::move(router));
    status_ = server_->Start();
  }

  std::string Url(std::string_view path) const {
    return "http://127.0.0.1:" + std::to_string(server_->port()) + std::string(path);
  }

  HttpServer& server() { return *server_; }
  MetricsRegistry& registry() { return registry_; }
  const absl::Status& status() const { return status_; }

 private:
  MetricsRegistry registry_;
  std::unique_ptr<HttpServer> server_;
  absl::Status status_;
};

HttpRouter EchoRouter() {
  HttpRouter router;
  router.Add(HttpMethod::kGet, "/hello", HttpSyncHandler([](const HttpRequest&) {
               return HttpResponse::Text(200, "hello");
             }));
  router.Add(HttpMethod::kPost, "/echo", HttpSyncHandler([](const HttpRequest& request) {
               return HttpResponse::Text(200, request.body);
             }));
  router.Add(HttpMethod::kGet, "/models/{name}", HttpSyncHandler([](const HttpRequest& request) {
               return HttpResponse::Json(200, {{"name", request.PathParam("name")},
                                               {"q", request.QueryParam("q").value_or("")},
                                               {"request_id", request.request_id}});
             }));
  return router;
}

TEST(HttpServerTest, AnswersRoutedRequestsWithPathAndQueryParameters) {
  ServerFixture fixture(EchoRouter());
  ASSERT_TRUE(fixture.status().ok()) << fixture.status();
  HttpClient client;
  auto response = client.Send({.url = fixture.Url("/models/llama%2F3?q=a+b")});
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);
  auto body = ParseJson(response->body);
  ASSERT_TRUE(body.ok());
  EXPECT_EQ((*body)["name"], "llama/3");
  EXPECT_EQ((*body)["q"], "a b");
  EXPECT_EQ(response->headers.Get("x-request-id").value_or(""), (*body)["request_id"]);
}

TEST(HttpServerTest, KeepsAValidIncomingRequestId) {
  ServerFixture fixture(EchoRouter());
  HttpClient client;
  HttpClientRequest request{.url = fixture.Url("/models/x")};
  request.headers.Set("X-Request-Id", "trace-123");
  auto response = client.Send(request);
  ASSERT_TRUE(response.ok());
  EXPECT_EQ(response->headers.Get("x-request-id").value_or(""), "trace-123");
}

TEST(HttpServerTest, UnknownPathIs404AndWrongMethodIs405WithOpenAiErrors) {
  ServerFixture fixture(EchoRouter());
  HttpClient client;
  auto missing = client.Send({.url = fixture.Url("/nope")});
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->status, 404);
  auto body = ParseJson(missing->body);
  ASSERT_TRUE(body.ok());
  EXPECT_EQ((*body)["error"]["type"], "not_found_error");

  auto wrong = client.Send({.method = HttpMethod::kPost, .url = fixture.Url("/hello")});
  ASSERT_TRUE(wrong.ok());
  EXPECT_EQ(wrong->status, 405);
  EXPECT_EQ(wrong->headers.Get("Allow").value_or(""), "GET");
}

TEST(HttpServerTest, ServesAThousandRequestsOverKeepAliveConnections) {
  ServerFixture fixture(EchoRouter());
  HttpClient client;
  constexpr int kThreads = 4;
  constexpr int kPerThread = 250;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        std::string body = "t" + std::to_string(t) + "-" + std::to_string(i);
        auto response =
            client.Send({.method = HttpMethod::kPost, .url = fixture.Url("/echo"), .body = body});
        if (response.ok() && response->status == 200 && response->body == body) ++ok;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(ok.load(), kThreads * kPerThread);
  // Connections are reused: at most one per concurrent caller.
  EXPECT_LE(client.connections_opened(), kThreads);
  auto& requests = fixture.registry().AddCounter("triplane_http_requests_total", "",
                                                 {"route", "method", "status"});
  // The server counts a request once its response is written, which can be just after
  // the client has read it: give the last one a moment.
  Counter& echoed = requests.WithLabels({"/echo", "POST", "200"});
  for (int i = 0; i < 500 && echoed.Value() < kThreads * kPerThread; ++i) std::this_thread::sleep_for(2ms);
  EXPECT_EQ(echoed.Value(), kThreads * kPerThread);
}

TEST(HttpServerTest, OversizedBodyGets413) {
  ServerFixture fixture(EchoRouter(), {.max_body_bytes = 1024});
  HttpClient client;
  auto response = client.Send(
      {.method = HttpMethod::kPost, .url = fixture.Url("/echo"), .body = std::string(4096, 'x')});
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 413);
  auto body = ParseJson(response->body);
  ASSERT_TRUE(body.ok());
  EXPECT_THAT((*body)["error"]["message"].get<std::string>(), HasSubstr("1024"));

  // A chunked body has no Content-Length up front; it is cut off while reading.
  RawSocket socket(fixture.server().port());
  ASSERT_TRUE(socket.Send("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                          "800\r\n" + std::string(2048, 'y') + "\r\n0\r\n\r\n"));
  EXPECT_THAT(socket.ReadUntilClosed(5s), StartsWith("HTTP/1.1 413"));
}

TEST(HttpServerTest, MalformedRequestGets400) {
  ServerFixture fixture(EchoRouter());
  {
    RawSocket socket(fixture.server().port());
    ASSERT_TRUE(socket.Send("THIS IS NOT HTTP\r\n\r\n"));
    std::string reply = socket.ReadUntilClosed(5s);
    EXPECT_THAT(reply, StartsWith("HTTP/1.1 400"));
    EXPECT_THAT(reply, HasSubstr("invalid_request_error"));
  }
  {
    RawSocket socket(fixture.server().port());
    ASSERT_TRUE(socket.Send("GET /hello HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"));
    EXPECT_THAT(socket.ReadUntilClosed(5s), StartsWith("HTTP/1.1 400"));
  }
  {
    RawSocket socket(fixture.server().port());
    ASSERT_TRUE(socket.Send("GET /a/../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n"));
    EXPECT_THAT(socket.ReadUntil("\r\n\r\n", 5s), StartsWith("HTTP/1.1 400"));
  }
}

TEST(HttpServerTest, OversizedHeadersGet431) {
  ServerFixture fixture(EchoRouter(), {.max_header_bytes = 1024});
  RawSocket socket(fixture.server().port());
  ASSERT_TRUE(socket.Send("GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(4096, 'a') +
                          "\r\n\r\n"));
  EXPECT_THAT(socket.ReadUntilClosed(5s), StartsWith("HTTP/1.1 431"));
}

TEST(HttpServerTest, SlowClientHitsTheHeaderTimeout) {
  ServerFixture fixture(EchoRouter(), {.header_timeout = 200ms});
  RawSocket socket(fixture.server().port());
  ASSERT_TRUE(socket.Send("GET /hello HTTP/1.1\r\nHost: x\r\n"));  // never finishes the header
  auto start = std::chrono::steady_clock::now();
  bool closed = false;
  socket.ReadUntilClosed(10s, &closed);
  EXPECT_TRUE(closed);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST(HttpServerTest, SlowBodyHitsTheBodyTimeout) {
  ServerFixture fixture(EchoRouter(), {.body_timeout = 200ms});
  RawSocket socket(fixture.server().port());
  ASSERT_TRUE(socket.Send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc"));
  bool closed = false;
  socket.ReadUntilClosed(10s, &closed);
  EXPECT_TRUE(closed);
}

TEST(HttpServerTest, IdleKeepAliveConnectionIsClosedAfterIdleTimeout) {
  ServerFixture fixture(EchoRouter(), {.idle_timeout = 200ms});
  RawSocket socket(fixture.server().port());
  ASSERT_TRUE(socket.Send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_THAT(socket.ReadUntil("hello", 5s), StartsWith("HTTP/1.1 200"));
  bool closed = false;
  socket.ReadUntilClosed(10s, &closed);
  EXPECT_TRUE(closed);
}

TEST(HttpServerTest, AnswersPipelinedRequestsInOrder) {
  ServerFixture fixture(EchoRouter());
  RawSocket socket(fixture.server().port());
  ASSERT_TRUE(socket.Send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\none"
                          "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\ntwo"
                          "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  std::string reply = socket.ReadUntilClosed(5s);
  size_t one = reply.find("\r\n\r\none");
  size_t two = reply.find("\r\n\r\ntwo");
  size_t hello = reply.find("\r\n\r\nhello");
  ASSERT_NE(one, std::string::npos) << reply;
  ASSERT_NE(two, std::string::npos) << reply;
  ASSERT_NE(hello, std::string::npos) << reply;
  EXPECT_LT(one, two);
  EXPECT_LT(two, hello);
}

TEST(HttpServerTest, SendsContinueForExpect100) {
  ServerFixture fixture(EchoRouter());
  RawSocket socket(fixture.server().port());
  ASSERT_TRUE(socket.Send(
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"));
  EXPECT_THAT(socket.ReadUntil("\r\n\r\n", 5s), StartsWith("HTTP/1.1 100 Continue"));
  ASSERT_TRUE(socket.Send("body"));
  EXPECT_THAT(socket.ReadUntil("body", 5s), StartsWith("HTTP/1.1 200"));
}

TEST(HttpServerTest, HeadGetsHeadersWithoutBody) {
  HttpRouter router;
  router.Add(HttpMethod::kHead, "/file", HttpSyncHandler([](const HttpRequest&) {
               return HttpResponse::Text(200, "0123456789");
             }));
  ServerFixture fixture(std::move(router));
  HttpClient client;
  auto response = client.Send({.method = HttpMethod::kHead, .url = fixture.Url("/file")});
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->headers.Get("Content-Length").value_or(""), "10");
  EXPECT_EQ(response->body, "");
}

TEST(HttpServerTest, DroppedResponderBecomes500AndThrowingHandlerToo) {
  HttpRouter router;
  router.Add(HttpMethod::kGet, "/drop", HttpHandler([](std::shared_ptr<Responder>) {}));
  router.Add(HttpMethod::kGet, "/throw", HttpHandler([](std::shared_ptr<Responder>) {
               throw std::runtime_error("boom");
             }));
  ServerFixture fixture(std::move(router));
  HttpClient client;
  for (const char* path : {"/drop", "/throw"}) {
    auto response = client.Send({.url = fixture.Url(path)});
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->status, 500) << path;
    EXPECT_THAT(response->body, HasSubstr("server_error"));
    EXPECT_THAT(response->body, ::testing::Not(HasSubstr("boom")));  // no internals leak
  }
}

// Streams `count` events from a producer thread, `interval` apart.
HttpHandler StreamingHandler(int count, std::chrono::milliseconds interval,
                             std::vector<std::thread>* producers, std::mutex* mu) {
  return [=](std::shared_ptr<Responder> responder) {
    responder->StartSse();
    std::lock_guard<std::mutex> lock(*mu);
    producers->emplace_back([responder, count, interval] {
      for (int i = 0; i < count; ++i) {
        if (!responder->WriteSseData("{\"i\":" + std::to_string(i) + "}")) return;
        std::this_thread::sleep_for(interval);
      }
      responder->WriteSseData("[DONE]");
      responder->Finish();
    });
  };
}

TEST(HttpServerTest, StreamsServerSentEventsEndToEndOneFlushPerEvent) {
  // The producer writes event i+1 only after the client has received event i: this
  // only completes if each event is flushed to the socket on its own.
  std::mutex mu;
  std::vector<std::thread> producers;
  std::vector<std::promise<void>> seen(5);
  HttpRouter router;
  router.Add(HttpMethod::kPost, "/v1/stream", HttpHandler([&](std::shared_ptr<Responder> r) {
               r->StartSse();
               std::lock_guard<std::mutex> lock(mu);
               producers.emplace_back([r, &seen] {
                 for (int i = 0; i < 5; ++i) {
                   r->WriteEvent({.event = "token", .data = "line " + std::to_string(i) + "\nsecond"});
                   if (seen[i].get_future().wait_for(5s) != std::future_status::ready) return;
                 }
                 r->WriteSseData("[DONE]");
                 r->Finish();
               });
             }));
  ServerFixture fixture(std::move(router));
  HttpClient client;
  std::vector<SseEvent> events;
  absl::Status status = client.ReadSse(
      {.method = HttpMethod::kPost, .url = fixture.Url("/v1/stream"), .body = "{}"},
      [&](const SseEvent& event) {
        events.push_back(event);
        if (events.size() <= 5) seen[events.size() - 1].set_value();
        return true;
      });
  for (auto& thread : producers) thread.join();
  ASSERT_TRUE(status.ok()) << status;
  ASSERT_EQ(events.size(), 6u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(events[i].event, "token");
    EXPECT_EQ(events[i].data, "line " + std::to_string(i) + "\nsecond");
  }
  EXPECT_EQ(events[5].data, "[DONE]");
}

TEST(HttpServerTest, ClientDisconnectCancelsTheHandler) {
  std::promise<void> cancelled;
  std::shared_ptr<Responder> held;  // the handler never answers: it waits for work
  std::mutex mu;
  HttpRouter router;
  router.Add(HttpMethod::kPost, "/slow", HttpHandler([&](std::shared_ptr<Responder> r) {
               r->OnCancel([&cancelled] { cancelled.set_value(); });
               std::lock_guard<std::mutex> lock(mu);
               held = std::move(r);
             }));
  ServerFixture fixture(std::move(router));
  {
    RawSocket socket(fixture.server().port());
    ASSERT_TRUE(socket.Send("POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"));
    for (int i = 0; i < 500 && fixture.server().active_exchanges() == 0; ++i) {
      std::this_thread::sleep_for(2ms);
    }
    socket.Reset();
  }
  ASSERT_EQ(cancelled.get_future().wait_for(5s), std::future_status::ready);
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_TRUE(held->IsCancelled());
  EXPECT_FALSE(held->Write("late"));
}

TEST(HttpServerTest, CancelledClientStreamCancelsTheServerStream) {
  std::promise<void> cancelled;
  std::mutex mu;
  std::vector<std::thread> producers;
  HttpRouter router;
  router.Add(HttpMethod::kGet, "/stream", HttpHandler([&](std::shared_ptr<Responder> r) {
               r->OnCancel([&cancelled] { cancelled.set_value(); });
               StreamingHandler(1000, 10ms, &producers, &mu)(r);
             }));
  ServerFixture fixture(std::move(router));
  HttpClient client;
  std::promise<void> first_data;
  std::atomic<bool> got_data{false};
  std::promise<absl::Status> done;
  auto handle = client.Stream({.url = fixture.Url("/stream")},
                              {.on_data =
                                   [&](std::string_view) {
                                     if (!got_data.exchange(true)) first_data.set_value();
                                     return true;
                                   },
                               .on_done = [&](absl::Status s) { done.set_value(s); }});
  ASSERT_EQ(first_data.get_future().wait_for(5s), std::future_status::ready);
  handle->Cancel();
  auto done_future = done.get_future();
  ASSERT_EQ(done_future.wait_for(5s), std::future_status::ready);
  EXPECT_TRUE(absl::IsCancelled(done_future.get()));
  EXPECT_EQ(cancelled.get_future().wait_for(5s), std::future_status::ready);
  for (auto& thread : producers) thread.join();
}

TEST(HttpServerTest, GracefulShutdownCompletesAnInFlightStream) {
  std::mutex mu;
  std::vector<std::thread> producers;
  HttpRouter router;
  router.Add(HttpMethod::kGet, "/stream", StreamingHandler(10, 30ms, &producers, &mu));
  ServerFixture fixture(std::move(router));
  HttpClient client;
  std::thread shutdown;
  int events = 0;
  absl::Status status = client.ReadSse({.url = fixture.Url("/stream")}, [&](const SseEvent&) {
    if (++events == 1) {
      shutdown = std::thread([&] { fixture.server().Shutdown(10s); });
    }
    return true;
  });
  shutdown.join();
  for (auto& thread : producers) thread.join();
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(events, 11);  // ten events and [DONE]
  // Nothing listens any more.
  RawSocket late(fixture.server().port());
  EXPECT_FALSE(late.connected());
}

TEST(HttpServerTest, ShutdownCancelsStreamsThatOutliveTheGracePeriod) {
  std::promise<void> cancelled;
  std::mutex mu;
  std::vector<std::thread> producers;
  HttpRouter router;
  router.Add(HttpMethod::kGet, "/forever", HttpHandler([&](std::shared_ptr<Responder> r) {
               r->OnCancel([&cancelled] { cancelled.set_value(); });
               StreamingHandler(1'000'000, 5ms, &producers, &mu)(r);
             }));
  ServerFixture fixture(std::move(router));
  HttpClient client;
  std::promise<void> started;
  std::promise<absl::Status> done;
  bool first = true;
  auto handle = client.Stream({.url = fixture.Url("/forever")},
                              {.on_data =
                                   [&](std::string_view) {
                                     if (std::exchange(first, false)) started.set_value();
                                     return true;
                                   },
                               .on_done = [&](absl::Status s) { done.set_value(s); }});
  ASSERT_EQ(started.get_future().wait_for(5s), std::future_status::ready);
  auto begin = std::chrono::steady_clock::now();
  fixture.server().Shutdown(200ms);
  EXPECT_LT(std::chrono::steady_clock::now() - begin, 5s);
  EXPECT_EQ(cancelled.get_future().wait_for(5s), std::future_status::ready);
  auto done_future = done.get_future();
  ASSERT_EQ(done_future.wait_for(5s), std::future_status::ready);
  EXPECT_FALSE(done_future.get().ok());  // the stream was cut, not completed
  for (auto& thread : producers) thread.join();
}

TEST(HttpServerTest, ReaderThatFallsTooFarBehindIsCancelled) {
  std::promise<void> cancelled;
  std::promise<std::shared_ptr<Responder>> handed;
  HttpRouter router;
  router.Add(HttpMethod::kGet, "/flood", HttpHandler([&](std::shared_ptr<Responder> r) {
               r->OnCancel([&cancelled] { cancelled.set_value(); });
               r->StartStream(200, {});
               handed.set_value(r);
             }));
  ServerFixture fixture(std::move(router), {.max_buffered_bytes = 64 << 10});
  RawSocket socket(fixture.server().port());  // never reads
  ASSERT_TRUE(socket.Send("GET /flood HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto handed_future = handed.get_future();
  ASSERT_EQ(handed_future.wait_for(5s), std::future_status::ready);
  std::shared_ptr<Responder> held = handed_future.get();
  bool accepted = true;
  std::string block(16 << 10, 'z');
  for (int i = 0; i < 10'000 && accepted; ++i) accepted = held->Write(block);
  EXPECT_FALSE(accepted);
  EXPECT_EQ(cancelled.get_future().wait_for(5s), std::future_status::ready);
}

}  // namespace
}  // namespace triplane::common
