#pragma once

// An HTTP/1.1 server on Boost.Asio with C++20 coroutines (Beast stays in the .cc).
//
// `threads` I/O threads each run their own io_context; a connection is assigned to one
// of them (round-robin) and runs there as a coroutine, never hopping threads. A request is handed to the router's handler together with a
// Responder, which may be completed from any thread: all output is queued and written
// by the connection coroutine, so a scheduler thread can stream tokens straight into
// a response. While a handler runs, the connection watches the socket: if the client
// goes away, the exchange is cancelled and the handler's OnCancel callbacks run.
//
// With a certificate and key (HttpServerOptions::tls_cert_file / tls_key_file) every
// connection speaks TLS 1.2 or newer (OpenSSL): the handshake runs under the header
// timeout before the first request is read. A plain-HTTP request on a TLS port gets a
// plain-text 400 and the connection is closed; other failed handshakes just close it.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "common/http_router.h"
#include "common/http_types.h"
#include "common/sse.h"

namespace triplane::common {

class MetricsRegistry;

struct HttpServerOptions {
  std::string host = "127.0.0.1";  // never listen beyond loopback unless asked
  uint16_t port = 8080;            // 0 picks a free port; see HttpServer::port()
  int threads = 0;                 // I/O threads; 0 = min(4, hardware threads)
  size_t max_body_bytes = 16u << 20;    // larger bodies get 413
  size_t max_header_bytes = 64u << 10;  // larger headers get 431
  std::chrono::milliseconds header_timeout{10'000};  // first byte to end of headers
  std::chrono::milliseconds body_timeout{30'000};    // end of headers to end of body
  std::chrono::milliseconds idle_timeout{75'000};    // keep-alive wait for the next request
  std::chrono::milliseconds write_timeout{30'000};   // one write to a slow reader
  size_t max_buffered_bytes = 8u << 20;  // queued, unsent output per exchange
  int max_connections = 10'000;          // beyond this, new connections are closed at once
  MetricsRegistry* metrics = nullptr;    // null = MetricsRegistry::Default()
  // TLS: PEM files of the certificate chain (leaf first) and its private key. Both empty:
  // plain HTTP. Both set: HTTPS only. One without the other is an error at Start().
  std::string tls_cert_file;
  std::string tls_key_file;

  bool tls() const { return !tls_cert_file.empty() || !tls_key_file.empty(); }
};

// Loads `options`' TLS certificate and key the way Start() does, without listening: OK
// when TLS is off or the files are readable PEM and the key matches the certificate;
// otherwise InvalidArgument naming the file and the reason. For commands that want to
// fail before doing anything slow. Thread-safe.
[[nodiscard]] absl::Status CheckTlsFiles(const HttpServerOptions& options);

// One request/response exchange, handed to a handler. Every method is thread-safe.
// The handler keeps the shared_ptr while it works; when the last reference is dropped
// without a response, the server answers 500 (or ends an unfinished stream).
class Responder {
 public:
  virtual ~Responder() = default;

  virtual const HttpRequest& request() const = 0;

  // Sends a complete response. Call once, instead of StartStream().
  virtual void Send(HttpResponse response) = 0;

  // Starts a chunked response; the status line and headers are written at once.
  virtual void StartStream(int status, HttpHeaders headers) = 0;
  // Queues `data` as one chunk, written as soon as the socket allows. Returns false
  // (and drops the data) once the exchange is cancelled.
  virtual bool Write(std::string data) = 0;
  // Ends the stream (the terminating zero chunk). Further writes are ignored.
  virtual void Finish() = 0;

  // Starts a `text/event-stream` response (no caching, no proxy buffering).
  void StartSse(HttpHeaders extra_headers = {});
  // Writes one event; each event is flushed to the socket on its own.
  bool WriteEvent(const SseEvent& event);
  bool WriteSseData(std::string_view data);

  // True once the client disconnected, the output backlog exceeded
  // max_buffered_bytes, or a shutdown deadline passed.
  virtual bool IsCancelled() const = 0;
  // Runs `callback` once when the exchange is cancelled (at once if it already is).
  // Callbacks run on an I/O thread and must not block. Not run when the exchange
  // completes normally.
  virtual void OnCancel(std::function<void()> callback) = 0;
};

class HttpServer {
 public:
  HttpServer(HttpServerOptions options, HttpRouter router);
  ~HttpServer();  // Shuts down with no grace period if still running.

  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds, listens and starts the I/O threads. Fails with a clear status when the
  // address is invalid or in use, or when the TLS files cannot be used (see CheckTlsFiles).
  [[nodiscard]] absl::Status Start();

  // The bound port (useful with port 0). Valid after a successful Start().
  uint16_t port() const;
  const HttpServerOptions& options() const;

  // Graceful shutdown: stops accepting, closes idle keep-alive connections, lets
  // in-flight exchanges finish (including streams) for up to `grace`, then cancels the
  // rest and joins the I/O threads. Idempotent; safe from any thread but the server's own.
  void Shutdown(std::chrono::milliseconds grace);

  // Blocks until Shutdown() has completed (e.g. from a signal handler thread).
  void Wait();

  // Connections currently open and exchanges in flight (for tests and metrics).
  int open_connections() const;
  int active_exchanges() const;

 private:
  friend class Connection;  // the per-connection coroutine in http_server.cc
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// Adds GET /metrics rendering `registry` in the Prometheus text format.
void AddMetricsRoute(HttpRouter& router, MetricsRegistry& registry);

}  // namespace triplane::common
