// HTTP/1.1 server: Boost.Asio coroutines for the connection loop, Beast's parser for
// requests, and hand-written response framing (status line, headers, chunked encoding).
//
// Threading: one io_context per I/O thread; each connection lives on one of them, and
// its coroutine is the only code that touches the socket and the read buffer. Handlers
// talk to the connection through an Exchange (mutex-guarded output queue) and wake it
// by posting to its io_context.
//
// TLS: with a certificate, each connection's socket is wrapped in an asio::ssl::stream
// (internal::SocketStream) and the handshake runs before the first request; everything after it
// reads and writes the stream the same way as a bare socket.

#include <utility>  // Boost 1.74's Asio needs it before its own headers.

#include "common/http_server.h"

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <exception>
#include <future>
#include <optional>
#include <set>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include "absl/status/statusor.h"
#include "common/socket_stream.h"
#include "common/strings.h"
#include "fmt/format.h"
#include "absl/synchronization/mutex.h"
#include "common/http_wire.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "common/openai_error.h"
#include "openssl/err.h"
#include "openssl/ssl.h"

namespace triplane::common {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

void Responder::StartSse(HttpHeaders extra_headers) {
  HttpHeaders headers = std::move(extra_headers);
  headers.Set("Content-Type", "text/event-stream; charset=utf-8");
  headers.Set("Cache-Control", "no-cache");
  headers.Set("X-Accel-Buffering", "no");
  StartStream(200, std::move(headers));
}

bool Responder::WriteEvent(const SseEvent& event) { return Write(FormatSseEvent(event)); }

bool Responder::WriteSseData(std::string_view data) { return Write(FormatSseData(data)); }

namespace {

// Server-wide metric handles, registered once per registry.
struct ServerMetrics {
  explicit ServerMetrics(MetricsRegistry& registry)
      : requests(registry.AddCounter("triplane_http_requests_total",
                                     "HTTP requests answered, by route, method and status.",
                                     {"route", "method", "status"})),
        duration(registry.AddHistogram("triplane_http_request_duration_seconds",
                                       "Time from the end of the request to the end of the "
                                       "response (whole stream for streamed responses).",
                                       {"route"}, LatencyBucketsSeconds())),
        in_flight(registry
                      .AddGauge("triplane_http_requests_in_flight",
                                "HTTP requests being handled or streamed.")
                      .Get()),
        connections(registry
                        .AddGauge("triplane_http_connections_open", "Open HTTP connections.")
                        .Get()),
        rejected(registry
                     .AddCounter("triplane_http_connections_rejected_total",
                                 "Connections closed at once because max_connections was reached.")
                     .Get()),
        tls_handshake_failures(
            registry
                .AddCounter("triplane_http_tls_handshake_failures_total",
                            "TLS handshakes that failed or timed out (plain HTTP sent to the "
                            "TLS port included).")
                .Get()) {}

  Family<Counter>& requests;
  Family<Histogram>& duration;
  Gauge& in_flight;
  Gauge& connections;
  Counter& rejected;
  Counter& tls_handshake_failures;
};

// Fails with InvalidArgument naming `path` unless it can be opened for reading.
absl::Status CheckReadableTlsFile(const std::string& path, std::string_view what) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) {
    const int error = errno;
    return absl::InvalidArgumentError(
        fmt::format("cannot read the TLS {} file '{}': {}", what, path, std::strerror(error)));
  }
  std::fclose(file);
  return absl::OkStatus();
}

// The TLS settings of a server: `options`' certificate chain and key, TLS 1.2 or newer,
// no compression. InvalidArgument, naming the file, when they cannot be used.
absl::StatusOr<std::unique_ptr<ssl::context>> MakeServerTlsContext(const HttpServerOptions& options) {
  if (options.tls_cert_file.empty() || options.tls_key_file.empty()) {
    return absl::InvalidArgumentError(
        "TLS needs both a certificate file and a private key file (--tls-cert and --tls-key)");
  }
  if (absl::Status status = CheckReadableTlsFile(options.tls_cert_file, "certificate"); !status.ok()) {
    return status;
  }
  if (absl::Status status = CheckReadableTlsFile(options.tls_key_file, "key"); !status.ok()) {
    return status;
  }
  try {
    auto context = std::make_unique<ssl::context>(ssl::context::tls_server);
    SSL_CTX_set_min_proto_version(context->native_handle(), TLS1_2_VERSION);
    context->set_options(ssl::context::default_workarounds | ssl::context::no_compression |
                         ssl::context::single_dh_use);
    // Renegotiation would make the disconnect watch's read write to the socket, and is a
    // cheap way to make a server work hard: refuse it.
    SSL_CTX_set_options(context->native_handle(), SSL_OP_NO_RENEGOTIATION);
    boost::system::error_code ec;
    context->use_certificate_chain_file(options.tls_cert_file, ec);
    if (ec) {
      ERR_clear_error();
      return absl::InvalidArgumentError(fmt::format("cannot load the TLS certificate file '{}': {}",
                                                    options.tls_cert_file, ec.message()));
    }
    context->use_private_key_file(options.tls_key_file, ssl::context::pem, ec);
    if (ec) {
      ERR_clear_error();
      return absl::InvalidArgumentError(
          fmt::format("cannot use the TLS key file '{}' with the certificate '{}': {}",
                      options.tls_key_file, options.tls_cert_file, ec.message()));
    }
    if (SSL_CTX_check_private_key(context->native_handle()) != 1) {
      ERR_clear_error();
      return absl::InvalidArgumentError(
          fmt::format("the TLS key file '{}' does not match the certificate '{}'",
                      options.tls_key_file, options.tls_cert_file));
    }
    return context;
  } catch (const boost::system::system_error& e) {
    ERR_clear_error();
    return absl::InternalError(fmt::format("cannot set up TLS: {}", e.what()));
  }
}

// True when a TLS handshake failed because the client spoke plain HTTP.
bool IsPlainHttpOnTlsPort(const boost::system::error_code& ec) {
  if (ec.category() != asio::error::get_ssl_category()) return false;
  const auto code = static_cast<unsigned long>(static_cast<unsigned int>(ec.value()));
  return ERR_GET_LIB(code) == ERR_LIB_SSL &&
         (ERR_GET_REASON(code) == SSL_R_HTTP_REQUEST || ERR_GET_REASON(code) == SSL_R_HTTPS_PROXY_REQUEST);
}

}  // namespace

absl::Status CheckTlsFiles(const HttpServerOptions& options) {
  if (!options.tls()) return absl::OkStatus();
  return MakeServerTlsContext(options).status();
}

class Connection;

// State shared by one request's handler (through ResponderImpl) and its connection.
class Exchange {
 public:
  // What the connection coroutine should do next, taken atomically.
  struct Output {
    std::optional<HttpResponse> full;  // a complete response
    bool head = false;                 // start of a stream: status + headers
    int status = 0;
    HttpHeaders headers;
    std::string chunks;                // framed chunks, ready to write
    bool finished = false;             // stream finished (terminating chunk due)
    bool abandoned = false;            // responder released without completing
    bool cancelled = false;
  };

  Exchange(HttpRequest request, std::weak_ptr<Connection> conn, size_t max_buffered)
      : request_(std::move(request)),
        conn_(std::move(conn)),
        max_buffered_(max_buffered) {}

  const HttpRequest& request() const { return request_; }

  void Send(HttpResponse response) {
    {
      absl::MutexLock lock(&mu_);
      if (responded_ || cancelled_) return;
      responded_ = true;
      full_ = std::move(response);
    }
    Notify();
  }

  void StartStream(int status, HttpHeaders headers) {
    {
      absl::MutexLock lock(&mu_);
      if (responded_ || cancelled_) return;
      responded_ = true;
      streaming_ = true;
      head_pending_ = true;
      stream_status_ = status;
      stream_headers_ = std::move(headers);
    }
    Notify();
  }

  bool Write(std::string data) {
    bool overflow = false;
    {
      absl::MutexLock lock(&mu_);
      if (cancelled_ || !streaming_ || finished_) return false;
      if (data.empty()) return true;  // an empty chunk would end the stream
      if (buffered_ + data.size() > max_buffered_) {
        overflow = true;
      } else {
        buffered_ += data.size();
        AppendChunk(chunks_, data);
      }
    }
    if (overflow) {
      Cancel();  // the reader is too slow: give up on it rather than grow without bound
      return false;
    }
    Notify();
    return true;
  }

  void Finish() {
    {
      absl::MutexLock lock(&mu_);
      if (!streaming_ || finished_) return;
      finished_ = true;
    }
    Notify();
  }

  void Release() {
    {
      absl::MutexLock lock(&mu_);
      released_ = true;
    }
    Notify();
  }

  bool IsCancelled() const {
    absl::MutexLock lock(&mu_);
    return cancelled_;
  }

  void OnCancel(std::function<void()> callback) {
    {
      absl::MutexLock lock(&mu_);
      if (completed_) return;
      if (!cancelled_) {
        cancel_callbacks_.push_back(std::move(callback));
        return;
      }
    }
    callback();
  }

  // Cancels the exchange unless it already completed; runs callbacks on the connection's thread.
  void Cancel() {
    std::vector<std::function<void()>> callbacks;
    {
      absl::MutexLock lock(&mu_);
      if (cancelled_ || completed_) return;
      cancelled_ = true;
      callbacks.swap(cancel_callbacks_);
    }
    if (!callbacks.empty()) RunOnConnection(std::move(callbacks));
    Notify();
  }

  // Marks the exchange done: later cancellations are no-ops and callbacks are dropped.
  void Complete() {
    absl::MutexLock lock(&mu_);
    completed_ = true;
    cancel_callbacks_.clear();
  }

  // Moves pending output into `out`; returns false when there is nothing to do yet,
  // and then the next producer call wakes the connection.
  bool Take(Output& out) {
    absl::MutexLock lock(&mu_);
    out = Output();
    out.cancelled = cancelled_;
    if (full_) {
      out.full = std::move(full_);
      full_.reset();
    }
    if (head_pending_) {
      out.head = true;
      out.status = stream_status_;
      out.headers = std::move(stream_headers_);
      head_pending_ = false;
    }
    out.chunks.swap(chunks_);
    buffered_ = 0;
    if (finished_ && !finish_taken_) {
      out.finished = true;
      finish_taken_ = true;
    }
    out.abandoned = released_ && (!responded_ || (streaming_ && !finished_));
    bool any = out.full || out.head || !out.chunks.empty() || out.finished || out.abandoned ||
               out.cancelled;
    waiting_ = !any;
    return any;
  }

 private:
  void Notify();
  // Runs `callbacks` on the connection's thread, or here if the connection is gone.
  void RunOnConnection(std::vector<std::function<void()>> callbacks);

  // No executor is held here: a handler may keep its Responder after the server and
  // its io_context are gone, so everything goes through the (weak) connection.
  const HttpRequest request_;
  const std::weak_ptr<Connection> conn_;
  const size_t max_buffered_;

  mutable absl::Mutex mu_;
  bool responded_ ABSL_GUARDED_BY(mu_) = false;
  bool streaming_ ABSL_GUARDED_BY(mu_) = false;
  bool head_pending_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool finish_taken_ ABSL_GUARDED_BY(mu_) = false;
  bool released_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool completed_ ABSL_GUARDED_BY(mu_) = false;
  bool waiting_ ABSL_GUARDED_BY(mu_) = false;  // the connection sleeps until woken
  std::optional<HttpResponse> full_ ABSL_GUARDED_BY(mu_);
  int stream_status_ ABSL_GUARDED_BY(mu_) = 0;
  HttpHeaders stream_headers_ ABSL_GUARDED_BY(mu_);
  std::string chunks_ ABSL_GUARDED_BY(mu_);
  size_t buffered_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::function<void()>> cancel_callbacks_ ABSL_GUARDED_BY(mu_);
};

namespace {

class ResponderImpl final : public Responder {
 public:
  explicit ResponderImpl(std::shared_ptr<Exchange> exchange) : exchange_(std::move(exchange)) {}
  ~ResponderImpl() override { exchange_->Release(); }

  const HttpRequest& request() const override { return exchange_->request(); }
  void Send(HttpResponse response) override { exchange_->Send(std::move(response)); }
  void StartStream(int status, HttpHeaders headers) override {
    exchange_->StartStream(status, std::move(headers));
  }
  bool Write(std::string data) override { return exchange_->Write(std::move(data)); }
  void Finish() override { exchange_->Finish(); }
  bool IsCancelled() const override { return exchange_->IsCancelled(); }
  void OnCancel(std::function<void()> callback) override {
    exchange_->OnCancel(std::move(callback));
  }

 private:
  std::shared_ptr<Exchange> exchange_;
};

}  // namespace

class HttpServer::Impl {
 public:
  Impl(HttpServerOptions options, HttpRouter router)
      : options_(std::move(options)),
        router_(std::move(router)),
        metrics_(options_.metrics ? *options_.metrics : MetricsRegistry::Default()) {
    if (options_.threads <= 0) {
      options_.threads = static_cast<int>(std::min(4u, std::max(1u, std::thread::hardware_concurrency())));
    }
    // One io_context per thread, like nginx's workers: a connection stays on the thread
    // that accepted it, so its work never bounces between threads.
    for (int i = 0; i < options_.threads; ++i) {
      iocs_.push_back(std::make_unique<asio::io_context>(1));
    }
    acceptor_ = std::make_unique<tcp::acceptor>(*iocs_[0]);
  }

  // The io_context for the next connection, round-robin.
  asio::io_context& NextContext() {
    return *iocs_[next_context_.fetch_add(1, std::memory_order_relaxed) % iocs_.size()];
  }

  absl::Status Start();
  void Shutdown(std::chrono::milliseconds grace);
  void Wait() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(&stopped_));
  }

  void AddConnection(const std::shared_ptr<Connection>& conn) {
    absl::MutexLock lock(&mu_);
    connections_.insert(conn);
  }
  void RemoveConnection(const std::shared_ptr<Connection>& conn) {
    absl::MutexLock lock(&mu_);
    connections_.erase(conn);
  }

  asio::awaitable<void> AcceptLoop();

  HttpServerOptions options_;
  HttpRouter router_;
  ServerMetrics metrics_;
  std::vector<std::unique_ptr<asio::io_context>> iocs_;
  std::atomic<size_t> next_context_{0};
  std::unique_ptr<tcp::acceptor> acceptor_;  // on iocs_[0]
  std::unique_ptr<ssl::context> tls_context_;  // set by Start() when TLS is on
  std::vector<std::thread> threads_;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  uint16_t port_ = 0;
  std::atomic<int> open_connections_{0};
  std::atomic<int> active_exchanges_{0};
  std::atomic<bool> shutting_down_{false};

  absl::Mutex mu_;
  std::set<std::shared_ptr<Connection>> connections_ ABSL_GUARDED_BY(mu_);
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  bool shutdown_called_ ABSL_GUARDED_BY(mu_) = false;
};

// One client connection: reads requests, dispatches them, writes responses.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(HttpServer::Impl& server, tcp::socket socket)
      : server_(server),
        stream_(std::move(socket), server.tls_context_.get()),
        socket_(stream_.socket()),
        executor_(socket_.get_executor()),
        signal_(executor_),
        deadline_(executor_) {
    boost::system::error_code ec;
    auto remote = socket_.remote_endpoint(ec);
    if (!ec) remote_ = fmt::format("{}:{}", remote.address().to_string(), remote.port());
    socket_.set_option(tcp::no_delay(true), ec);
    socket_.non_blocking(true, ec);  // WriteAll's first attempt must not block
  }

  asio::awaitable<void> Run();

  // Called from any thread: finish the current exchange (if any), then close.
  void BeginShutdown() {
    asio::post(executor_, [self = shared_from_this()] {
      self->closing_ = true;
      if (self->idle_) self->CloseSocket();
    });
  }

  // Called from any thread: cancel the exchange and close now.
  void ForceClose() {
    asio::post(executor_, [self = shared_from_this()] {
      self->closing_ = true;
      if (self->exchange_) self->exchange_->Cancel();
      self->CloseSocket();
      self->signal_.cancel();
    });
  }

  void Wake() {
    asio::post(executor_, [self = shared_from_this()] { self->signal_.cancel(); });
  }

  void Post(std::function<void()> fn) { asio::post(executor_, std::move(fn)); }

 private:
  // Sets the time by which the current read or write must finish; when it passes, the
  // socket is closed and the pending operation fails. The timer is re-armed lazily:
  // moving a deadline later (the common case) costs no system call.
  void ArmDeadline(std::chrono::milliseconds timeout) {
    deadline_at_ = Clock::now() + timeout;
    if (timer_armed_ && armed_at_ <= deadline_at_) return;
    StartTimer(deadline_at_);
  }
  void DisarmDeadline() { deadline_at_ = Clock::time_point::max(); }

  void StartTimer(Clock::time_point at) {
    timer_armed_ = true;
    armed_at_ = at;
    deadline_.expires_at(at);
    deadline_.async_wait([self = shared_from_this(), gen = ++deadline_gen_](
                             boost::system::error_code ec) {
      if (ec || gen != self->deadline_gen_) return;
      self->timer_armed_ = false;
      if (self->deadline_at_ == Clock::time_point::max()) return;
      if (Clock::now() < self->deadline_at_) {
        self->StartTimer(self->deadline_at_);
        return;
      }
      self->timed_out_ = true;
      self->CloseSocket();
    });
  }

  void CloseSocket() {
    boost::system::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_both, ec);
    socket_.close(ec);
    if (exchange_) exchange_->Cancel();
  }

  asio::awaitable<bool> Handshake();
  asio::awaitable<void> AnswerPlainHttp();
  asio::awaitable<void> ServeRequests();
  asio::awaitable<bool> WriteAll(std::string data);
  asio::awaitable<bool> WaitForFirstByte(std::chrono::milliseconds timeout);
  asio::awaitable<void> HandleRequest(bhttp::request_parser<bhttp::string_body>& parser);
  asio::awaitable<bool> StreamOutput(const std::shared_ptr<Exchange>& exchange, bool head_only,
                                     bool& keep_alive, int& status);
  void StartWatch();
  asio::awaitable<void> StopWatch();
  asio::awaitable<void> SendError(int status, std::string_view message);

  HttpServer::Impl& server_;
  internal::SocketStream stream_;  // all reads and writes go through it (TLS or not)
  tcp::socket& socket_;  // stream_'s socket: options, cancel, close
  asio::any_io_executor executor_;  // the socket's: its io_context, run by one thread
  asio::steady_timer signal_;    // cancelled to wake the coroutine
  asio::steady_timer deadline_;  // read/write timeouts
  uint64_t deadline_gen_ = 0;
  Clock::time_point deadline_at_ = Clock::time_point::max();
  Clock::time_point armed_at_;
  bool timer_armed_ = false;
  beast::flat_buffer buffer_;
  std::string remote_;
  std::shared_ptr<Exchange> exchange_;
  bool idle_ = true;
  bool closing_ = false;
  bool timed_out_ = false;
  bool watching_ = false;
  bool stop_watch_requested_ = false;
  bool peer_gone_ = false;
  std::string request_id_;
};

void Exchange::Notify() {
  // Only a connection that found nothing to do is asleep; waking it costs a post to
  // its thread, which a handler answering at once never needs.
  {
    absl::MutexLock lock(&mu_);
    if (!waiting_) return;
    waiting_ = false;
  }
  if (auto conn = conn_.lock()) conn->Wake();
}

void Exchange::RunOnConnection(std::vector<std::function<void()>> callbacks) {
  auto run = [callbacks = std::move(callbacks)] {
    for (const auto& callback : callbacks) callback();
  };
  if (auto conn = conn_.lock()) {
    conn->Post(std::move(run));
  } else {
    run();
  }
}

namespace {

constexpr size_t kMaxPipelinedBytes = 64 << 10;

bool IsTimeout(const boost::system::error_code& ec, bool timed_out) {
  return timed_out || ec == asio::error::timed_out;
}

}  // namespace

asio::awaitable<bool> Connection::WriteAll(std::string data) {
  boost::system::error_code ec;
  size_t written = 0;
  // Most responses fit in the socket buffer: write at once, without a timer. Not over
  // TLS, where a synchronous write that would block can leave a record half-sent.
  if (stream_.tls() == nullptr) {
    written = socket_.write_some(asio::buffer(data), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      ec = {};
      written = 0;
    }
    if (ec) co_return false;
    if (written == data.size()) co_return true;
  }
  ArmDeadline(server_.options_.write_timeout);
  co_await asio::async_write(stream_, asio::buffer(data.data() + written, data.size() - written),
                             asio::redirect_error(asio::use_awaitable, ec));
  DisarmDeadline();
  co_return !ec;
}

asio::awaitable<bool> Connection::WaitForFirstByte(std::chrono::milliseconds timeout) {
  if (buffer_.size() > 0) co_return true;
  boost::system::error_code ec;
  ArmDeadline(timeout);
  size_t n = co_await stream_.async_read_some(buffer_.prepare(4096),
                                              asio::redirect_error(asio::use_awaitable, ec));
  DisarmDeadline();
  if (ec) co_return false;
  buffer_.commit(n);
  co_return true;
}

asio::awaitable<void> Connection::SendError(int status, std::string_view message) {
  HttpResponse response = OpenAiErrorResponse(status, message);
  response.headers.Set("Connection", "close");
  co_await WriteAll(SerializeResponseHead(status, response.headers, response.body.size()) +
                    response.body);
}

void Connection::StartWatch() {
  if (buffer_.size() >= kMaxPipelinedBytes || !socket_.is_open()) return;
  watching_ = true;
  stop_watch_requested_ = false;
  stream_.async_read_some(
      buffer_.prepare(4096), asio::bind_executor(executor_, [self = shared_from_this()](
                                                              boost::system::error_code ec, size_t n) {
        self->watching_ = false;
        if (ec) {
          if (ec != asio::error::operation_aborted) {
            self->peer_gone_ = true;
            if (self->exchange_) self->exchange_->Cancel();
          }
        } else {
          self->buffer_.commit(n);
          if (!self->stop_watch_requested_) self->StartWatch();
        }
        self->signal_.cancel();
      }));
}

asio::awaitable<void> Connection::StopWatch() {
  if (!watching_) co_return;
  stop_watch_requested_ = true;
  boost::system::error_code ec;
  socket_.cancel(ec);
  while (watching_) {
    signal_.expires_at(asio::steady_timer::time_point::max());
    co_await signal_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}


asio::awaitable<bool> Connection::Handshake() {
  ssl::stream<tcp::socket&>* tls = stream_.tls();
  if (tls == nullptr) co_return true;
  boost::system::error_code ec;
  ArmDeadline(server_.options_.header_timeout);
  co_await tls->async_handshake(ssl::stream_base::server, asio::redirect_error(asio::use_awaitable, ec));
  DisarmDeadline();
  if (!ec) co_return true;
  server_.metrics_.tls_handshake_failures.Inc();
  if (timed_out_) {
    spdlog::debug("http: {} TLS handshake timeout, closing", remote_);
  } else if (IsPlainHttpOnTlsPort(ec)) {
    spdlog::debug("http: {} sent plain HTTP to the TLS port", remote_);
    co_await AnswerPlainHttp();
  } else {
    spdlog::debug("http: {} TLS handshake failed: {}", remote_, ec.message());
  }
  ERR_clear_error();
  co_return false;
}

asio::awaitable<void> Connection::AnswerPlainHttp() {
  // Like nginx: tell a plain-HTTP client what went wrong, in plain text, rather than
  // leave it with a reset. OpenSSL sends no alert in this case, so the socket is clean.
  HttpResponse response = OpenAiErrorResponse(
      400, "this port speaks HTTPS: a plain HTTP request was sent to it");
  response.headers.Set("Connection", "close");
  const std::string wire =
      SerializeResponseHead(400, response.headers, response.body.size()) + response.body;
  boost::system::error_code ec;
  ArmDeadline(server_.options_.write_timeout);
  co_await asio::async_write(socket_, asio::buffer(wire), asio::redirect_error(asio::use_awaitable, ec));
  DisarmDeadline();
  if (ec) co_return;
  // Closing with the rest of the request unread would reset the connection and could
  // discard the answer before the client reads it: half-close, then read until the
  // client closes (bounded by the header timeout).
  socket_.shutdown(tcp::socket::shutdown_send, ec);
  std::array<char, 4096> scratch;
  ArmDeadline(server_.options_.header_timeout);
  while (!ec) {
    co_await socket_.async_read_some(asio::buffer(scratch), asio::redirect_error(asio::use_awaitable, ec));
  }
  DisarmDeadline();
}

asio::awaitable<void> Connection::Run() {
  auto self = shared_from_this();
  if (co_await Handshake()) co_await ServeRequests();
  boost::system::error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  deadline_.cancel();
  server_.open_connections_.fetch_sub(1);
  server_.metrics_.connections.Dec();
  server_.RemoveConnection(self);
}

asio::awaitable<void> Connection::ServeRequests() {
  const HttpServerOptions& options = server_.options_;
  bool first = true;
  while (!closing_ && socket_.is_open()) {
    idle_ = true;
    if (!co_await WaitForFirstByte(first ? options.header_timeout : options.idle_timeout)) break;
    first = false;
    idle_ = false;
    if (closing_) break;
    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(static_cast<uint32_t>(std::min<size_t>(options.max_header_bytes, UINT32_MAX)));
    parser.body_limit(options.max_body_bytes);
    boost::system::error_code ec;
    std::string_view buffered(static_cast<const char*>(buffer_.data().data()), buffer_.size());
    const bool header_buffered = buffered.find("\r\n\r\n") != std::string_view::npos;
    if (!header_buffered) ArmDeadline(options.header_timeout);
    co_await bhttp::async_read_header(stream_, buffer_, parser,
                                      asio::redirect_error(asio::use_awaitable, ec));
    DisarmDeadline();
    if (ec) {
      if (IsTimeout(ec, timed_out_)) {
        spdlog::debug("http: {} header timeout, closing", remote_);
      } else if (ec == bhttp::error::header_limit) {
        co_await SendError(431, "request header fields too large");
      } else if (ec == bhttp::error::body_limit) {
        co_await SendError(413, fmt::format("request body exceeds the limit of {} bytes", options.max_body_bytes));
      } else if (ec != bhttp::error::end_of_stream && ec != asio::error::eof &&
                 ec != asio::error::connection_reset && ec != asio::error::operation_aborted &&
                 ec != asio::error::bad_descriptor && ec != ssl::error::stream_truncated) {
        co_await SendError(400, fmt::format("malformed HTTP request: {}", ec.message()));
      }
      break;
    }
    co_await HandleRequest(parser);
  }
}

asio::awaitable<void> Connection::HandleRequest(bhttp::request_parser<bhttp::string_body>& parser) {
  const HttpServerOptions& options = server_.options_;
  boost::system::error_code ec;
  if (!parser.is_done()) {
    auto expect = parser.get()[bhttp::field::expect];
    if (EqualsIgnoreCase(std::string_view(expect.data(), expect.size()), "100-continue")) {
      if (!co_await WriteAll("HTTP/1.1 100 Continue\r\n\r\n")) {
        closing_ = true;
        co_return;
      }
    }
    ArmDeadline(options.body_timeout);
    co_await bhttp::async_read(stream_, buffer_, parser, asio::redirect_error(asio::use_awaitable, ec));
    DisarmDeadline();
    if (ec) {
      closing_ = true;
      if (ec == bhttp::error::body_limit) {
        co_await SendError(413, fmt::format("request body exceeds the limit of {} bytes", options.max_body_bytes));
      } else if (!IsTimeout(ec, timed_out_) && ec != asio::error::eof &&
                 ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message &&
                 ec != asio::error::connection_reset && ec != asio::error::operation_aborted &&
                 ec != ssl::error::stream_truncated) {
        co_await SendError(400, fmt::format("malformed HTTP request body: {}", ec.message()));
      }
      co_return;
    }
  }

  auto& message = parser.get();
  HttpRequest request;
  request.method_name = std::string(message.method_string());
  request.method = ParseHttpMethod(request.method_name);
  request.target = std::string(message.target());
  for (const auto& field : message) {
    request.headers.Add(std::string_view(field.name_string().data(), field.name_string().size()),
                        std::string_view(field.value().data(), field.value().size()));
  }
  request.body = std::move(message.body());
  request.remote_address = remote_;
  bool keep_alive = message.keep_alive();
  const bool head_only = request.method == HttpMethod::kHead;

  std::string_view target = request.target;
  size_t question = target.find('?');
  std::string_view raw_path = target.substr(0, question);
  if (question != std::string_view::npos) request.query = std::string(target.substr(question + 1));
  request.path = PercentDecode(raw_path);
  if (auto id = request.headers.Get("x-request-id"); id && IsValidRequestId(*id)) {
    request.request_id = std::string(*id);
  } else {
    request.request_id = NewRequestId();
  }

  // Refuse targets that are not origin-form or that try to climb the path.
  std::string bad_target;
  if (raw_path.empty() || raw_path.front() != '/') {
    bad_target = "request target must be an absolute path";
  } else if (request.path.find('\0') != std::string::npos ||
             (request.path + "/").find("/../") != std::string::npos ||
             (request.path + "/").find("/./") != std::string::npos) {
    bad_target = "request path must not contain '.', '..' segments or NUL bytes";
  }

  HttpRouter::Match match;
  if (bad_target.empty()) match = server_.router_.Find(request.method, raw_path);
  request.route = match.handler ? match.route : "unmatched";
  request.path_params = std::move(match.params);
  const std::string route = request.route;
  const std::string method_name = request.method_name;
  const std::string path = request.path;
  const RequestLog log(request.request_id);

  const auto start = Clock::now();
  server_.active_exchanges_.fetch_add(1);
  server_.metrics_.in_flight.Inc();
  exchange_ = std::make_shared<Exchange>(std::move(request), weak_from_this(),
                                         options.max_buffered_bytes);
  if (!bad_target.empty()) {
    exchange_->Send(OpenAiErrorResponse(400, bad_target));
  } else if (!match.handler) {
    if (match.allowed.empty()) {
      exchange_->Send(OpenAiErrorResponse(404, fmt::format("no route for {} {}", method_name, path)));
    } else {
      std::string allow;
      for (HttpMethod m : match.allowed) {
        if (!allow.empty()) allow += ", ";
        allow += HttpMethodName(m);
      }
      HttpResponse response = OpenAiErrorResponse(
          405, fmt::format("method {} not allowed for {}", method_name, path));
      response.headers.Set("Allow", allow);
      exchange_->Send(std::move(response));
    }
  } else {
    auto responder = std::make_shared<ResponderImpl>(exchange_);
    try {
      (*match.handler)(responder);
    } catch (const std::exception& e) {
      log.Error("handler for {} threw: {}", route, e.what());
      responder->Send(OpenAiErrorResponse(500, "internal error"));
    } catch (...) {
      log.Error("handler for {} threw a non-standard exception", route);
      responder->Send(OpenAiErrorResponse(500, "internal error"));
    }
  }
  int status = 0;
  bool ok = co_await StreamOutput(exchange_, head_only, keep_alive, status);
  exchange_->Complete();
  co_await StopWatch();

  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  server_.metrics_.requests.WithLabels({route, method_name, std::to_string(status)}).Inc();
  server_.metrics_.duration.WithLabels({route}).Observe(seconds);
  server_.metrics_.in_flight.Dec();
  server_.active_exchanges_.fetch_sub(1);
  log.Info("{} {} {} {:.2f}ms{}", method_name, path, status, seconds * 1e3,
           ok ? "" : (peer_gone_ ? " (client gone)" : " (aborted)"));
  exchange_.reset();
  if (!ok || !keep_alive || peer_gone_) closing_ = true;
}

asio::awaitable<bool> Connection::StreamOutput(const std::shared_ptr<Exchange>& exchange,
                                               bool head_only, bool& keep_alive, int& status) {
  Exchange::Output out;
  bool head_sent = false;
  auto finish_headers = [&](HttpHeaders& headers) {
    headers.Set("x-request-id", exchange->request().request_id);
    if (closing_) keep_alive = false;
    if (!keep_alive) headers.Set("Connection", "close");
  };
  while (true) {
    if (!exchange->Take(out)) {
      // The handler is still working: watch the socket so that a client who goes away
      // cancels it (started only now, so that immediate answers cost no extra read).
      if (!watching_ && !peer_gone_) StartWatch();
      boost::system::error_code ec;
      signal_.expires_at(asio::steady_timer::time_point::max());
      co_await signal_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    if (out.cancelled) {
      if (!head_sent) status = 499;  // nginx's "client closed request"
      co_return false;
    }
    if (out.full) {
      status = out.full->status;
      finish_headers(out.full->headers);
      std::string wire = SerializeResponseHead(status, out.full->headers, out.full->body.size());
      if (!head_only) wire += out.full->body;
      co_return co_await WriteAll(std::move(wire));
    }
    std::string wire;
    if (out.head) {
      status = out.status;
      finish_headers(out.headers);
      wire = SerializeResponseHead(status, out.headers, std::nullopt);
      head_sent = true;
    }
    if (!head_only) wire += out.chunks;
    if (out.finished && !head_only) wire += kLastChunk;
    if (out.abandoned && !out.finished) {
      if (!head_sent) {
        status = 500;
        HttpResponse error = OpenAiErrorResponse(500, "the handler did not produce a response");
        finish_headers(error.headers);
        co_return co_await WriteAll(
            SerializeResponseHead(500, error.headers, error.body.size()) + error.body);
      }
      // A stream left unfinished: send what there is, then close without the final
      // chunk so that the client sees a truncated body rather than a complete one.
      if (!wire.empty()) co_await WriteAll(std::move(wire));
      co_return false;
    }
    if (!wire.empty() && !co_await WriteAll(std::move(wire))) {
      exchange->Cancel();
      if (!head_sent) status = 499;
      co_return false;
    }
    if (out.finished) co_return true;
  }
}

asio::awaitable<void> HttpServer::Impl::AcceptLoop() {
  while (true) {
    boost::system::error_code ec;
    asio::io_context& context = NextContext();
    auto socket = co_await acceptor_->async_accept(context,
                                                   asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (shutting_down_.load() || !acceptor_->is_open()) co_return;
      spdlog::warn("http: accept failed: {}", ec.message());
      // Out of file descriptors and the like: back off instead of spinning.
      asio::steady_timer pause(*iocs_[0], std::chrono::milliseconds(50));
      co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    if (open_connections_.load() >= options_.max_connections) {
      metrics_.rejected.Inc();
      socket.close(ec);
      continue;
    }
    open_connections_.fetch_add(1);
    metrics_.connections.Inc();
    auto conn = std::make_shared<Connection>(*this, tcp::socket(std::move(socket)));
    AddConnection(conn);
    asio::co_spawn(context, conn->Run(), asio::detached);
  }
}

absl::Status HttpServer::Impl::Start() {
  {
    absl::MutexLock lock(&mu_);
    if (started_) return absl::FailedPreconditionError("server already started");
  }
  if (options_.tls()) {
    absl::StatusOr<std::unique_ptr<ssl::context>> tls_context = MakeServerTlsContext(options_);
    if (!tls_context.ok()) return tls_context.status();
    tls_context_ = *std::move(tls_context);
  }
  boost::system::error_code ec;
  std::string host = options_.host == "localhost" ? "127.0.0.1" : options_.host;
  auto address = asio::ip::make_address(host, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        fmt::format("invalid listen address '{}': use an IP address", options_.host));
  }
  tcp::endpoint endpoint(address, options_.port);
  acceptor_->open(endpoint.protocol(), ec);
  if (!ec) acceptor_->set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_->bind(endpoint, ec);
  if (!ec) acceptor_->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    acceptor_->close(ec);
    return absl::UnavailableError(fmt::format("cannot listen on {}:{}: {}", options_.host, options_.port, ec.message()));
  }
  port_ = acceptor_->local_endpoint().port();
  for (auto& context : iocs_) work_.push_back(asio::make_work_guard(*context));
  asio::co_spawn(*iocs_[0], AcceptLoop(), asio::detached);
  for (auto& context : iocs_) {
    threads_.emplace_back([&context] { context->run(); });
  }
  absl::MutexLock lock(&mu_);
  started_ = true;
  return absl::OkStatus();
}

void HttpServer::Impl::Shutdown(std::chrono::milliseconds grace) {
  {
    absl::MutexLock lock(&mu_);
    if (shutdown_called_) {
      mu_.Await(absl::Condition(&stopped_));
      return;
    }
    shutdown_called_ = true;
    if (!started_) {
      stopped_ = true;
      return;
    }
  }
  shutting_down_.store(true);
  // Stop listening before anything else, and wait for it: a listening socket left open
  // would queue new connections that nobody answers.
  std::promise<void> closed;
  asio::post(*iocs_[0], [this, &closed] {
    boost::system::error_code ec;
    acceptor_->close(ec);
    closed.set_value();
  });
  closed.get_future().wait();
  auto no_connections = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return connections_.empty(); };
  std::vector<std::shared_ptr<Connection>> snapshot;
  {
    absl::MutexLock lock(&mu_);
    snapshot.assign(connections_.begin(), connections_.end());
  }
  for (auto& conn : snapshot) conn->BeginShutdown();
  snapshot.clear();
  {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&no_connections), absl::FromChrono(grace));
    snapshot.assign(connections_.begin(), connections_.end());
  }
  if (!snapshot.empty()) {
    spdlog::warn("http: shutdown grace period over; cancelling {} connection(s)", snapshot.size());
  }
  for (auto& conn : snapshot) conn->ForceClose();
  snapshot.clear();
  {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&no_connections), absl::Seconds(5));
  }
  work_.clear();
  for (auto& context : iocs_) context->stop();
  for (auto& thread : threads_) thread.join();
  threads_.clear();
  absl::MutexLock lock(&mu_);
  connections_.clear();
  stopped_ = true;
}

HttpServer::HttpServer(HttpServerOptions options, HttpRouter router)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(router))) {}

HttpServer::~HttpServer() { impl_->Shutdown(std::chrono::milliseconds(0)); }

absl::Status HttpServer::Start() { return impl_->Start(); }
uint16_t HttpServer::port() const { return impl_->port_; }
const HttpServerOptions& HttpServer::options() const { return impl_->options_; }
void HttpServer::Shutdown(std::chrono::milliseconds grace) { impl_->Shutdown(grace); }
void HttpServer::Wait() { impl_->Wait(); }
int HttpServer::open_connections() const { return impl_->open_connections_.load(); }
int HttpServer::active_exchanges() const { return impl_->active_exchanges_.load(); }

void AddMetricsRoute(HttpRouter& router, MetricsRegistry& registry) {
  router.Add(HttpMethod::kGet, "/metrics", HttpSyncHandler([&registry](const HttpRequest&) {
               return HttpResponse::Text(200, registry.RenderText(),
                                         "text/plain; version=0.0.4; charset=utf-8");
             }));
}

}  // namespace triplane::common
