// HttpClient over https://, against real TLS servers on 127.0.0.1 with certificates from
// a throwaway CA made for each test.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <memory>
#include <string>

#include "common/http_client.h"
#include "common/strings.h"
#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/file_server.h"
#include "testing/test_pki.h"

namespace triplane::common {
namespace {

using namespace std::chrono_literals;
using ::testing::AllOf;
using ::testing::HasSubstr;

class HttpClientTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "triplane-tls-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    ca_ = std::make_unique<testing::TestCa>(dir_, "trusted");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // A TLS file server with a certificate from the trusted CA for `names`.
  std::unique_ptr<testing::FileServer> Serve(const std::string& names = "DNS:localhost,IP:127.0.0.1") {
    return std::make_unique<testing::FileServer>(body_, ca_->Issue("server", names));
  }
  static std::string Message(const absl::Status& status) { return std::string(ToStd(status.message())); }

  std::filesystem::path dir_;
  std::unique_ptr<testing::TestCa> ca_;
  std::string body_ = std::string(100'000, 'x') + "end";
};

TEST_F(HttpClientTlsTest, SendsOverHttpsTrustingTheGivenCa) {
  auto server = Serve();
  HttpClient client({.ca_file = ca_->cert_file()});
  absl::StatusOr<HttpResponse> response = client.Send({.url = server->url()});
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, body_);
  EXPECT_EQ(server->requests(), 1);
}

TEST_F(HttpClientTlsTest, VerifiesTheHostNameLocalhost) {
  auto server = Serve();
  HttpClient client({.ca_file = ca_->cert_file()});
  absl::StatusOr<HttpResponse> response = client.Send({.url = server->url("/x", "localhost")});
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->body, body_);
}

TEST_F(HttpClientTlsTest, StreamsOverHttps) {
  auto server = Serve();
  HttpClient client({.ca_file = ca_->cert_file()});
  std::string body;
  int status = 0;
  std::promise<absl::Status> done;
  client.Stream({.url = server->url()},
                {.on_head = [&](int s, const HttpHeaders&) { status = s; },
                 .on_data =
                     [&](std::string_view data) {
                       body.append(data);
                       return true;
                     },
                 .on_done = [&](absl::Status s) { done.set_value(std::move(s)); }});
  const absl::Status result = done.get_future().get();
  EXPECT_TRUE(result.ok()) << result;
  EXPECT_EQ(status, 200);
  EXPECT_EQ(body, body_);
}

TEST_F(HttpClientTlsTest, ReusesAPooledTlsConnection) {
  auto server = Serve();
  server->KeepAlive(true);
  HttpClient client({.ca_file = ca_->cert_file()});
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<HttpResponse> response = client.Send({.url = server->url()});
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->body, body_);
  }
  EXPECT_EQ(client.connections_opened(), 1);
  EXPECT_EQ(server->connections(), 1);
}

TEST_F(HttpClientTlsTest, AnUntrustedCertificateIsAClearError) {
  auto server = Serve();
  testing::TestCa other(dir_, "other");
  for (const std::string& ca_file : {std::string(), other.cert_file()}) {
    HttpClient client({.ca_file = ca_file});
    absl::StatusOr<HttpResponse> response = client.Send({.url = server->url()});
    ASSERT_FALSE(response.ok()) << ca_file;
    EXPECT_EQ(response.status().code(), absl::StatusCode::kUnavailable);
    EXPECT_THAT(Message(response.status()),
                AllOf(HasSubstr(fmt::format("TLS handshake with 127.0.0.1:{} failed", server->port())),
                      HasSubstr("certificate verify failed"), HasSubstr("unable to get local issuer")));
  }
}

TEST_F(HttpClientTlsTest, ACertificateForAnotherNameIsRefused) {
  auto server = Serve("DNS:other.example");
  HttpClient client({.ca_file = ca_->cert_file()});
  absl::StatusOr<HttpResponse> by_address = client.Send({.url = server->url()});
  EXPECT_EQ(by_address.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(Message(by_address.status()), HasSubstr("IP address mismatch"));
  absl::StatusOr<HttpResponse> by_name = client.Send({.url = server->url("/x", "localhost")});
  EXPECT_EQ(by_name.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(Message(by_name.status()), HasSubstr("hostname mismatch"));
}

TEST_F(HttpClientTlsTest, VerificationCanBeTurnedOffInCode) {
  auto server = Serve("DNS:other.example");
  HttpClient client({.verify_peer = false});
  absl::StatusOr<HttpResponse> response = client.Send({.url = server->url()});
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->body, body_);
}

TEST_F(HttpClientTlsTest, AnUnreadableCaFileFailsHttpsRequests) {
  auto server = Serve();
  HttpClient client({.ca_file = (dir_ / "missing.pem").string()});
  absl::StatusOr<HttpResponse> response = client.Send({.url = server->url()});
  EXPECT_EQ(response.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Message(response.status()), HasSubstr("missing.pem"));
}

TEST_F(HttpClientTlsTest, APeerThatNeverHandshakesTimesOut) {
  // Listening but never accepting: the kernel completes TCP, nobody answers TLS.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(fd, 4), 0);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  HttpClient client({.connect_timeout = 200ms, .ca_file = ca_->cert_file()});
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<HttpResponse> response =
      client.Send({.url = fmt::format("https://127.0.0.1:{}/", ntohs(addr.sin_port))});
  EXPECT_EQ(response.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(Message(response.status()), HasSubstr("TLS handshake"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  ::close(fd);
}

TEST_F(HttpClientTlsTest, CancellingAStreamClosesTheTlsConnection) {
  body_.assign(16u << 20, 'y');  // far more than the socket buffers hold
  auto server = Serve();
  HttpClient client({.ca_file = ca_->cert_file()});
  std::promise<void> first_data;
  std::promise<void> cancelled;
  std::shared_future<void> cancelled_future = cancelled.get_future().share();
  std::promise<absl::Status> done;
  bool first = true;
  auto handle = client.Stream({.url = server->url()},
                              {.on_data =
                                   [&](std::string_view) {
                                     if (first) {
                                       first = false;
                                       first_data.set_value();
                                       cancelled_future.wait();  // hold the stream until Cancel()
                                     }
                                     return true;
                                   },
                               .on_done = [&](absl::Status s) { done.set_value(std::move(s)); }});
  first_data.get_future().wait();
  handle->Cancel();
  cancelled.set_value();
  EXPECT_EQ(done.get_future().get().code(), absl::StatusCode::kCancelled);
}

}  // namespace
}  // namespace triplane::common
