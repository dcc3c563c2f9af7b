#pragma once

// An HTTP/1.1 client on Boost.Asio coroutines with a keep-alive connection pool and
// streaming responses (Beast and OpenSSL stay in the .cc), for http:// and https://.
//
// https:// verifies the server's certificate chain against the system CA store (OpenSSL's
// default paths, which honour SSL_CERT_FILE / SSL_CERT_DIR) plus `ca_file`, and the
// certificate's names against the URL's host (SNI is sent for host names); TLS 1.2 or
// newer. The client does not follow redirects: a 3xx is returned like any other status
// (PullFile follows them for downloads).
//
// Thread-safe: one client is meant to be shared by a whole process component. Work
// runs on the client's own I/O threads; callbacks are invoked there and must not block.

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/http_types.h"
#include "common/sse.h"

namespace triplane::common {

struct HttpClientOptions {
  std::chrono::milliseconds connect_timeout{5'000};
  // Whole exchange for Send(); longest silence between reads for Stream().
  std::chrono::milliseconds request_timeout{60'000};
  int max_idle_per_host = 32;                 // pooled keep-alive connections per scheme+host:port
  std::chrono::milliseconds idle_ttl{30'000}; // pooled connections older than this are closed
  size_t max_response_bytes = 64u << 20;      // Send() fails beyond this
  int threads = 1;                            // I/O threads
  // PEM file of extra trusted CA certificates for https:// (private CAs, tests), used on
  // top of the system store. Empty: the system store only. An unreadable file fails
  // every https:// request with FailedPrecondition (http:// still works).
  std::string ca_file;
  // false skips certificate and host name checks: for code that knowingly talks to a
  // self-signed peer; never set from configuration.
  bool verify_peer = true;
  // When set, asked after every new connection with the address it reached (an IP
  // literal, IPv4-mapped IPv6 as IPv4) and port; true closes it and fails the request
  // with PermissionDenied before anything is sent. It judges where a host name really
  // led, so there is no window between a checked resolution and the one connected to.
  std::function<bool(std::string_view address, int port)> refuse_peer;
};

struct HttpClientRequest {
  HttpMethod method = HttpMethod::kGet;
  std::string url;  // "http://127.0.0.1:8080/v1/models" or "https://host/path"
  HttpHeaders headers;
  std::string body;
  std::optional<std::chrono::milliseconds> timeout;  // overrides request_timeout
};

// Callbacks for a streamed response, all invoked on a client I/O thread, in order:
// on_head once, on_data for each piece of the body, then on_done exactly once (also
// after a failure before any response, or after Cancel()).
struct HttpStreamCallbacks {
  std::function<void(int status, const HttpHeaders& headers)> on_head;
  std::function<bool(std::string_view data)> on_data;  // return false to stop reading
  std::function<void(absl::Status status)> on_done;    // OK when the body was complete
};

// A response being streamed. Cancel() closes the connection; on_done then reports
// Cancelled (unless the stream already ended). Thread-safe.
class HttpStreamHandle {
 public:
  virtual ~HttpStreamHandle() = default;
  virtual void Cancel() = 0;
};

class HttpClient {
 public:
  explicit HttpClient(HttpClientOptions options = {});
  ~HttpClient();  // Cancels outstanding requests and joins the I/O threads.

  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends `request` and waits for the whole response. Any HTTP status is a successful
  // result; transport failures and timeouts are errors (Unavailable, also for a failed
  // TLS handshake such as an untrusted certificate; DeadlineExceeded; InvalidArgument for
  // a bad URL). REQUIRES: not called from a client callback.
  [[nodiscard]] absl::StatusOr<HttpResponse> Send(HttpClientRequest request);

  // Like Send() but asynchronous: `done` runs on a client I/O thread.
  void SendAsync(HttpClientRequest request,
                 std::function<void(absl::StatusOr<HttpResponse>)> done);

  // Starts a request whose response body is delivered piece by piece.
  std::shared_ptr<HttpStreamHandle> Stream(HttpClientRequest request,
                                           HttpStreamCallbacks callbacks);

  // Blocking convenience for Server-Sent Events: calls `on_event` for each event until
  // the stream ends or `on_event` returns false. A non-2xx response is returned as an
  // error carrying the status and body. REQUIRES: not called from a client callback.
  [[nodiscard]] absl::Status ReadSse(HttpClientRequest request,
                                     const std::function<bool(const SseEvent&)>& on_event);

  // Connections opened so far (pool reuse shows as fewer connections than requests).
  int64_t connections_opened() const;

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace triplane::common
