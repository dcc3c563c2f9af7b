// HttpServer with TLS (HttpServerOptions::tls_cert_file / tls_key_file), on 127.0.0.1,
// with certificates from a throwaway CA made for each test and HttpClient trusting it.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/http_client.h"
#include "common/http_server.h"
#include "common/metrics.h"
#include "common/strings.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "raw_socket.h"
#include "testing/test_pki.h"

namespace triplane::common {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using triplane::testing::RawSocket;

HttpRouter TlsTestRouter(std::vector<std::thread>* producers, std::mutex* mu) {
  HttpRouter router;
  router.Add(HttpMethod::kGet, "/hello", HttpSyncHandler([](const HttpRequest&) {
               return HttpResponse::Text(200, "hello over tls");
             }));
  router.Add(HttpMethod::kPost, "/echo", HttpSyncHandler([](const HttpRequest& request) {
               return HttpResponse::Text(200, request.body);
             }));
  // Five events from another thread, then [DONE].
  router.Add(HttpMethod::kPost, "/stream", HttpHandler([=](std::shared_ptr<Responder> r) {
               r->StartSse();
               std::lock_guard<std::mutex> lock(*mu);
               producers->emplace_back([r] {
                 for (int i = 0; i < 5; ++i) {
                   r->WriteEvent({.event = "token", .data = "event " + std::to_string(i)});
                   std::this_thread::sleep_for(2ms);
                 }
                 r->WriteSseData("[DONE]");
                 r->Finish();
               });
             }));
  return router;
}

class HttpServerTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "triplane-server-tls-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    ca_ = std::make_unique<testing::TestCa>(dir_, "trusted");
    identity_ = ca_->Issue("server", "DNS:localhost,IP:127.0.0.1");
  }

  void TearDown() override {
    if (server_) server_->Shutdown(1s);
    for (auto& thread : producers_) thread.join();
    std::filesystem::remove_all(dir_);
  }

  // Starts a TLS server with `options` plus the test identity; returns Start()'s status.
  absl::Status StartServer(HttpServerOptions options = {}) {
    options.host = "127.0.0.1";
    options.port = 0;
    options.threads = 2;
    options.metrics = &registry_;
    if (options.tls_cert_file.empty()) options.tls_cert_file = identity_.cert_file;
    if (options.tls_key_file.empty()) options.tls_key_file = identity_.key_file;
    server_ = std::make_unique<HttpServer>(options, TlsTestRouter(&producers_, &mu_));
    return server_->Start();
  }

  std::string Url(std::string_view scheme, std::string_view path) const {
    return std::string(scheme) + "://127.0.0.1:" + std::to_string(server_->port()) +
           std::string(path);
  }

  double HandshakeFailures() {
    return registry_
        .AddCounter("triplane_http_tls_handshake_failures_total", "")
        .Get()
        .Value();
  }

  // Connects with OpenSSL directly, offering only TLS versions up to `max_version`;
  // true when the handshake completes.
  bool HandshakeUpTo(int max_version) {
    struct OwnedFd {
      int fd;
      ~OwnedFd() { if (fd >= 0) ::close(fd); }
    } owned{::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)};
    const int fd = owned.fd;
    if (fd < 0) return false;
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(server_->port());
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) return false;
    std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> context(SSL_CTX_new(TLS_client_method()),
                                                              SSL_CTX_free);
    SSL_CTX_set_security_level(context.get(), 0);  // let the client offer old versions
    SSL_CTX_set_min_proto_version(context.get(), TLS1_VERSION);
    SSL_CTX_set_max_proto_version(context.get(), max_version);
    std::unique_ptr<SSL, decltype(&SSL_free)> ssl(SSL_new(context.get()), SSL_free);
    SSL_set_fd(ssl.get(), fd);
    const bool ok = SSL_connect(ssl.get()) == 1;
    ERR_clear_error();
    return ok;
  }

  std::filesystem::path dir_;
  std::unique_ptr<testing::TestCa> ca_;
  testing::TlsIdentity identity_;
  MetricsRegistry registry_;
  std::mutex mu_;
  std::vector<std::thread> producers_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(HttpServerTlsTest, AnswersOverHttpsForAClientTrustingTheCa) {
  ASSERT_TRUE(StartServer().ok());
  HttpClient client({.ca_file = ca_->cert_file()});
  absl::StatusOr<HttpResponse> response = client.Send({.url = Url("https", "/hello")});
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "hello over tls");

  // A body larger than one TLS record and than the socket buffer, both ways, on the
  // same keep-alive connection.
  std::string body(3 << 20, 'x');
  for (size_t i = 0; i < body.size(); i += 4096) body[i] = static_cast<char>('a' + (i / 4096) % 26);
  response = client.Send({.method = HttpMethod::kPost, .url = Url("https", "/echo"), .body = body});
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);
  EXPECT_TRUE(response->body == body) << "echoed " << response->body.size() << " bytes";
  EXPECT_EQ(client.connections_opened(), 1);
  EXPECT_EQ(HandshakeFailures(), 0);
}

TEST_F(HttpServerTlsTest, AClientThatDoesNotTrustTheCaIsRefused) {
  ASSERT_TRUE(StartServer().ok());
  testing::TestCa other(dir_, "other");
  HttpClient client({.ca_file = other.cert_file()});
  absl::StatusOr<HttpResponse> response = client.Send({.url = Url("https", "/hello")});
  EXPECT_FALSE(response.ok());
  // The server counts the handshake the client gave up on, and still serves others.
  HttpClient trusting({.ca_file = ca_->cert_file()});
  response = trusting.Send({.url = Url("https", "/hello")});
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);
  for (int i = 0; i < 500 && HandshakeFailures() < 1; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(HandshakeFailures(), 1);
}

TEST_F(HttpServerTlsTest, StreamsServerSentEventsOverTls) {
  ASSERT_TRUE(StartServer().ok());
  HttpClient client({.ca_file = ca_->cert_file()});
  std::vector<SseEvent> events;
  absl::Status status = client.ReadSse(
      {.method = HttpMethod::kPost, .url = Url("https", "/stream"), .body = "{}"},
      [&](const SseEvent& event) {
        events.push_back(event);
        return true;
      });
  ASSERT_TRUE(status.ok()) << status;
  ASSERT_EQ(events.size(), 6u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(events[i].event, "token");
    EXPECT_EQ(events[i].data, "event " + std::to_string(i));
  }
  EXPECT_EQ(events[5].data, "[DONE]");
}

TEST_F(HttpServerTlsTest, ClientGoingAwayMidStreamCancelsTheHandlerOverTls) {
  // The disconnect watch reads through TLS while the stream writes through it.
  std::promise<void> cancelled;
  std::atomic<bool> stop{false};
  HttpRouter router;
  router.Add(HttpMethod::kGet, "/endless", HttpHandler([&](std::shared_ptr<Responder> r) {
               r->OnCancel([&cancelled] { cancelled.set_value(); });
               r->StartSse();
               std::lock_guard<std::mutex> lock(mu_);
               producers_.emplace_back([r, &stop] {
                 while (!stop.load() && r->WriteSseData("{\"token\":\"x\"}")) {
                   std::this_thread::sleep_for(5ms);
                 }
               });
             }));
  server_ = std::make_unique<HttpServer>(
      HttpServerOptions{.port = 0,
                        .threads = 2,
                        .metrics = &registry_,
                        .tls_cert_file = identity_.cert_file,
                        .tls_key_file = identity_.key_file},
      std::move(router));
  ASSERT_TRUE(server_->Start().ok());
  HttpClient client({.ca_file = ca_->cert_file()});
  std::promise<void> first_data;
  std::atomic<bool> got_data{false};
  std::promise<absl::Status> done;
  auto handle = client.Stream({.url = Url("https", "/endless")},
                              {.on_data =
                                   [&](std::string_view) {
                                     if (!got_data.exchange(true)) first_data.set_value();
                                     return true;
                                   },
                               .on_done = [&](absl::Status s) { done.set_value(s); }});
  ASSERT_EQ(first_data.get_future().wait_for(10s), std::future_status::ready);
  handle->Cancel();
  EXPECT_EQ(done.get_future().wait_for(10s), std::future_status::ready);
  EXPECT_EQ(cancelled.get_future().wait_for(10s), std::future_status::ready);
  stop.store(true);
}

TEST_F(HttpServerTlsTest, PlainHttpToTheTlsPortGetsA400AndTheServerKeepsServing) {
  ASSERT_TRUE(StartServer().ok());
  HttpClient plain;
  absl::StatusOr<HttpResponse> response = plain.Send({.url = Url("http", "/hello")});
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 400);
  nlohmann::json error = nlohmann::json::parse(response->body, nullptr, false);
  ASSERT_TRUE(error.is_object()) << response->body;
  EXPECT_THAT(error["error"]["message"].get<std::string>(), HasSubstr("HTTPS"));
  EXPECT_EQ(error["error"]["type"], "invalid_request_error");

  // Bytes that are neither HTTP nor TLS: the connection is closed, nothing else.
  {
    RawSocket socket(server_->port());
    ASSERT_TRUE(socket.connected());
    ASSERT_TRUE(socket.Send(std::string("\x16\x03\x01\x00\x05garbage-not-a-handshake", 28)));
    bool closed = false;
    socket.ReadUntilClosed(10s, &closed);
    EXPECT_TRUE(closed);
  }

  HttpClient client({.ca_file = ca_->cert_file()});
  response = client.Send({.url = Url("https", "/hello")});
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "hello over tls");
  EXPECT_EQ(HandshakeFailures(), 2);
}

TEST_F(HttpServerTlsTest, AClientThatNeverHandshakesIsClosedAfterTheHeaderTimeout) {
  ASSERT_TRUE(StartServer({.header_timeout = 100ms}).ok());
  RawSocket socket(server_->port());
  ASSERT_TRUE(socket.connected());
  bool closed = false;
  socket.ReadUntilClosed(30s, &closed);
  EXPECT_TRUE(closed);
  for (int i = 0; i < 500 && server_->open_connections() > 0; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(server_->open_connections(), 0);
}

TEST_F(HttpServerTlsTest, OnlyTls12AndNewerAreAccepted) {
  ASSERT_TRUE(StartServer().ok());
  EXPECT_TRUE(HandshakeUpTo(TLS1_2_VERSION));
  EXPECT_TRUE(HandshakeUpTo(TLS1_3_VERSION));
  EXPECT_FALSE(HandshakeUpTo(TLS1_1_VERSION));
  EXPECT_FALSE(HandshakeUpTo(TLS1_VERSION));
}

TEST_F(HttpServerTlsTest, UnusableCertificateOrKeyFailsStartWithAClearStatus) {
  const std::string missing = (dir_ / "missing.key").string();
  absl::Status status = StartServer({.tls_key_file = missing});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(std::string(ToStd(status.message())), HasSubstr(missing));
  EXPECT_THAT(std::string(ToStd(status.message())), HasSubstr("No such file or directory"));
  EXPECT_EQ(CheckTlsFiles({.tls_cert_file = identity_.cert_file, .tls_key_file = missing}), status);

  const std::string missing_cert = (dir_ / "missing.pem").string();
  status = StartServer({.tls_cert_file = missing_cert});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(std::string(ToStd(status.message())), HasSubstr(missing_cert));

  // A readable file that is not PEM.
  status = StartServer({.tls_cert_file = ca_->cert_file(), .tls_key_file = ca_->cert_file()});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;

  // A certificate with another certificate's key.
  testing::TlsIdentity other = ca_->Issue("other", "DNS:localhost");
  status = StartServer({.tls_key_file = other.key_file});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(std::string(ToStd(status.message())), HasSubstr(other.key_file));
  EXPECT_EQ(CheckTlsFiles({.tls_cert_file = identity_.cert_file, .tls_key_file = other.key_file}), status);

  // A certificate without a key.
  server_ = std::make_unique<HttpServer>(
      HttpServerOptions{.port = 0, .metrics = &registry_, .tls_cert_file = identity_.cert_file},
      HttpRouter());
  status = server_->Start();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(std::string(ToStd(status.message())), HasSubstr("--tls-key"));

  EXPECT_TRUE(CheckTlsFiles({}).ok());
  EXPECT_TRUE(CheckTlsFiles({.tls_cert_file = identity_.cert_file, .tls_key_file = identity_.key_file}).ok());
}

}  // namespace
}  // namespace triplane::common
