// HTTP/1.1 client: each request is a coroutine on its own strand; connections (plain TCP
// or TLS over it) are pooled per scheme+host:port and reused while the server keeps them
// alive.

#include <utility>  // Boost 1.74's Asio needs it before its own headers.

#include "common/http_client.h"

#include <atomic>
#include <deque>
#include <future>
#include <limits>
#include <map>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
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
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>

#include "common/strings.h"
#include "fmt/format.h"
#include "absl/synchronization/mutex.h"
#include "common/http_wire.h"
#include "common/socket_stream.h"
#include "openssl/ssl.h"
#include "openssl/x509v3.h"

namespace triplane::common {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

// One client connection: a TCP socket, with TLS over it for https://. Strand only, like
// the rest of a request's state.
class Connection {
 public:
  Connection(asio::io_context& ioc, std::shared_ptr<ssl::context> tls_context)
      : tls_context_(std::move(tls_context)), stream_(ioc) {}

  tcp::socket& socket() { return stream_.socket(); }
  // What Beast reads and writes: the socket, or TLS over it once StartTls() ran.
  internal::SocketStream& stream() { return stream_; }
  bool is_open() { return stream_.socket().is_open(); }

  // Layers TLS over the connected socket; the caller configures and runs the handshake.
  ssl::stream<tcp::socket&>& StartTls() { return stream_.StartTls(*tls_context_); }

  // Closes the socket, which aborts pending reads, writes and handshakes.
  void Close() {
    boost::system::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.socket().close(ec);
  }

 private:
  std::shared_ptr<ssl::context> tls_context_;  // declared before stream_: outlives its TLS layer
  internal::SocketStream stream_;
};

// A keep-alive connection waiting in the pool.
struct PooledConnection {
  std::unique_ptr<Connection> connection;
  Clock::time_point idle_since;
};

// The TLS settings shared by all https:// connections of one client: peer verification
// against the system store plus `options.ca_file`, TLS 1.2 or newer.
absl::StatusOr<std::shared_ptr<ssl::context>> MakeTlsContext(const HttpClientOptions& options) {
  try {
    auto context = std::make_shared<ssl::context>(ssl::context::tls_client);
    SSL_CTX_set_min_proto_version(context->native_handle(), TLS1_2_VERSION);
    context->set_options(ssl::context::default_workarounds | ssl::context::no_compression);
    if (!options.verify_peer) {
      context->set_verify_mode(ssl::verify_none);
      return context;
    }
    context->set_verify_mode(ssl::verify_peer);
    boost::system::error_code ec;
    context->set_default_verify_paths(ec);  // no system store: only ca_file is trusted
    if (!options.ca_file.empty()) {
      context->load_verify_file(options.ca_file, ec);
      if (ec) {
        return absl::FailedPreconditionError(
            fmt::format("cannot load CA file {}: {}", options.ca_file, ec.message()));
      }
    }
    return context;
  } catch (const boost::system::system_error& e) {
    return absl::InternalError(fmt::format("cannot set up TLS: {}", e.what()));
  }
}

// The Host header: the port only when it is not the scheme's default.
std::string HostHeader(const HttpUrl& url) {
  const std::string host = url.host.find(':') == std::string::npos ? url.host : "[" + url.host + "]";
  const bool default_port =
      (url.scheme == "http" && url.port == 80) || (url.scheme == "https" && url.port == 443);
  return default_port ? host : fmt::format("{}:{}", host, url.port);
}

// Maps a failed HTTP status to the nearest absl code, for ReadSse().
absl::Status StatusFromHttp(int status, std::string_view body) {
  std::string message = fmt::format("HTTP {}: {}", status, body.substr(0, 2048));
  switch (status) {
    case 400: return absl::InvalidArgumentError(message);
    case 401: return absl::UnauthenticatedError(message);
    case 403: return absl::PermissionDeniedError(message);
    case 404: return absl::NotFoundError(message);
    case 409: return absl::AlreadyExistsError(message);
    case 429: return absl::ResourceExhaustedError(message);
    case 503: return absl::UnavailableError(message);
    case 504: return absl::DeadlineExceededError(message);
    default: return absl::UnknownError(message);
  }
}

}  // namespace

class StreamState final : public HttpStreamHandle {
 public:
  StreamState(HttpClientRequest request, HttpStreamCallbacks callbacks,
              asio::any_io_executor strand, bool total_deadline)
      : request(std::move(request)),
        callbacks(std::move(callbacks)),
        strand(std::move(strand)),
        deadline(this->strand),
        total_deadline(total_deadline) {}

  void Cancel() override {
    if (cancelled.exchange(true)) return;
    if (auto self = shared_from_this_state()) {
      asio::post(strand, [self] { self->CloseSocket(); });
    }
  }

  // Runs on the strand.
  void CloseSocket() {
    if (connection) connection->Close();
  }

  // Runs on the strand. Drops the connection first: it must not outlive the client's
  // io_context through a handle the caller keeps. The callbacks go after on_done: a
  // caller that keeps the handle in what its callbacks capture (the gateway's proxy
  // does) would otherwise hold a cycle whenever on_done ran before it stored the handle.
  void Done(absl::Status status) {
    if (done_called) return;
    done_called = true;
    CloseSocket();
    connection.reset();
    HttpStreamCallbacks finished = std::move(callbacks);
    callbacks = {};
    if (finished.on_done) finished.on_done(std::move(status));
  }

  // The error for a failed transport step, telling cancellation and timeouts apart.
  absl::Status Failure(std::string timeout_message, std::string error_message) const {
    if (cancelled) return absl::CancelledError("request cancelled");
    if (timed_out) return absl::DeadlineExceededError(std::move(timeout_message));
    return absl::UnavailableError(std::move(error_message));
  }

  std::shared_ptr<StreamState> shared_from_this_state() { return self_weak.lock(); }

  HttpClientRequest request;
  HttpStreamCallbacks callbacks;
  asio::any_io_executor strand;
  asio::steady_timer deadline;
  const bool total_deadline;  // one deadline for the whole exchange, else per operation
  std::weak_ptr<StreamState> self_weak;
  std::atomic<bool> cancelled{false};
  std::atomic<bool> timed_out{false};
  std::unique_ptr<Connection> connection;  // strand only
  bool done_called = false;                // strand only
};

class HttpClient::Impl {
 public:
  explicit Impl(HttpClientOptions options)
      : options_(std::move(options)), tls_context_(MakeTlsContext(options_)) {
    work_.emplace(ioc_.get_executor());
    for (int i = 0; i < std::max(1, options_.threads); ++i) {
      threads_.emplace_back([this] { ioc_.run(); });
    }
  }

  ~Impl() {
    {
      absl::MutexLock lock(&mu_);
      pool_.clear();
      for (auto& weak : active_) {
        if (auto st = weak.lock()) st->Cancel();
      }
    }
    work_.reset();
    // Let cancelled requests report on_done before the threads go.
    for (int i = 0; i < 200; ++i) {
      {
        absl::MutexLock lock(&mu_);
        std::erase_if(active_, [](const auto& w) { return w.expired(); });
        if (active_.empty()) break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    ioc_.stop();
    for (auto& t : threads_) t.join();
  }

  std::shared_ptr<HttpStreamHandle> Start(HttpClientRequest request, HttpStreamCallbacks callbacks,
                                          bool total_deadline) {
    auto strand = asio::make_strand(ioc_);
    auto st = std::make_shared<StreamState>(std::move(request), std::move(callbacks),
                                            asio::any_io_executor(strand), total_deadline);
    st->self_weak = st;
    {
      absl::MutexLock lock(&mu_);
      std::erase_if(active_, [](const auto& w) { return w.expired(); });
      active_.push_back(st);
    }
    asio::co_spawn(strand, Run(st), asio::detached);
    return st;
  }

  int64_t connections_opened() const { return connections_opened_.load(); }
  const HttpClientOptions& options() const { return options_; }

 private:
  asio::awaitable<void> Run(std::shared_ptr<StreamState> st);
  asio::awaitable<absl::Status> Connect(StreamState& st, const HttpUrl& url);
  asio::awaitable<absl::Status> Handshake(StreamState& st, const HttpUrl& url,
                                          const std::string& where);

  void ArmDeadline(StreamState& st, std::chrono::milliseconds timeout) {
    st.deadline.expires_after(timeout);
    st.deadline.async_wait([weak = st.self_weak](boost::system::error_code ec) {
      if (ec) return;
      if (auto s = weak.lock()) {
        s->timed_out = true;
        s->CloseSocket();
      }
    });
  }

  std::unique_ptr<Connection> TakePooled(const std::string& key) {
    absl::MutexLock lock(&mu_);
    auto it = pool_.find(key);
    if (it == pool_.end()) return nullptr;
    auto now = Clock::now();
    while (!it->second.empty()) {
      PooledConnection conn = std::move(it->second.back());
      it->second.pop_back();
      if (now - conn.idle_since < options_.idle_ttl && conn.connection->is_open()) {
        return std::move(conn.connection);
      }
    }
    return nullptr;
  }

  void ReturnToPool(const std::string& key, std::unique_ptr<Connection> connection) {
    absl::MutexLock lock(&mu_);
    auto& idle = pool_[key];
    if (static_cast<int>(idle.size()) < options_.max_idle_per_host) {
      idle.push_back({std::move(connection), Clock::now()});
    }
  }

  const HttpClientOptions options_;
  // Shared with the TLS connections, which may outlive the client in a caller's handle.
  const absl::StatusOr<std::shared_ptr<ssl::context>> tls_context_;
  asio::io_context ioc_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::vector<std::thread> threads_;
  std::atomic<int64_t> connections_opened_{0};
  absl::Mutex mu_;
  std::map<std::string, std::vector<PooledConnection>> pool_ ABSL_GUARDED_BY(mu_);
  std::vector<std::weak_ptr<StreamState>> active_ ABSL_GUARDED_BY(mu_);
};

asio::awaitable<absl::Status> HttpClient::Impl::Connect(StreamState& st, const HttpUrl& url) {
  boost::system::error_code ec;
  st.connection = std::make_unique<Connection>(
      ioc_, url.scheme == "https" ? *tls_context_ : std::shared_ptr<ssl::context>());
  tcp::socket& socket = st.connection->socket();
  ArmDeadline(st, options_.connect_timeout);
  std::string host = url.host == "localhost" ? "127.0.0.1" : url.host;
  auto address = asio::ip::make_address(host, ec);
  if (!ec) {
    co_await socket.async_connect(tcp::endpoint(address, url.port),
                                  asio::redirect_error(asio::use_awaitable, ec));
  } else {
    tcp::resolver resolver(st.strand);
    auto endpoints = co_await resolver.async_resolve(
        host, std::to_string(url.port), asio::redirect_error(asio::use_awaitable, ec));
    if (!ec) {
      co_await asio::async_connect(socket, endpoints,
                                   asio::redirect_error(asio::use_awaitable, ec));
    }
  }
  const std::string where = fmt::format("{}:{}", url.host, url.port);
  if (ec || st.cancelled || st.timed_out) {
    st.deadline.cancel();
    co_return st.Failure(fmt::format("connect to {} timed out", where),
                         fmt::format("cannot connect to {}: {}", where, ec.message()));
  }
  if (options_.refuse_peer) {
    const tcp::endpoint peer = socket.remote_endpoint(ec);
    asio::ip::address reached = peer.address();
    if (reached.is_v6() && reached.to_v6().is_v4_mapped()) {
      reached = asio::ip::make_address_v4(asio::ip::v4_mapped, reached.to_v6());
    }
    if (ec || options_.refuse_peer(reached.to_string(), peer.port())) {
      st.deadline.cancel();
      socket.close(ec);
      co_return absl::PermissionDeniedError(
          fmt::format("refusing to talk to {}: it connected to {} port {}, a refused address", where,
                      reached.to_string(), peer.port()));
    }
  }
  socket.set_option(tcp::no_delay(true), ec);
  if (url.scheme == "https") {
    // Under the same connect deadline: a peer that never answers the handshake times out.
    absl::Status handshake = co_await Handshake(st, url, where);
    if (!handshake.ok()) {
      st.deadline.cancel();
      co_return handshake;
    }
  }
  st.deadline.cancel();
  connections_opened_.fetch_add(1);
  co_return absl::OkStatus();
}

asio::awaitable<absl::Status> HttpClient::Impl::Handshake(StreamState& st, const HttpUrl& url,
                                                         const std::string& where) {
  ssl::stream<tcp::socket&>& tls = st.connection->StartTls();
  SSL* handle = tls.native_handle();
  boost::system::error_code ec;
  asio::ip::make_address(url.host, ec);
  const bool is_address = !ec;
  if (!is_address) SSL_set_tlsext_host_name(handle, url.host.c_str());  // SNI: names only
  if (options_.verify_peer) {
    // OpenSSL checks the name while verifying the chain, so a mismatch shows in the
    // verify result like any other certificate problem.
    X509_VERIFY_PARAM* param = SSL_get0_param(handle);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    const int set = is_address ? X509_VERIFY_PARAM_set1_ip_asc(param, url.host.c_str())
                               : X509_VERIFY_PARAM_set1_host(param, url.host.c_str(), 0);
    if (set != 1) co_return absl::InternalError(fmt::format("cannot check TLS peer name {}", url.host));
  }
  ec = {};
  co_await tls.async_handshake(ssl::stream_base::client, asio::redirect_error(asio::use_awaitable, ec));
  if (!ec && !st.cancelled && !st.timed_out) co_return absl::OkStatus();
  std::string detail;
  if (const long verify = SSL_get_verify_result(handle); verify != X509_V_OK) {
    detail = fmt::format(" ({})", X509_verify_cert_error_string(verify));
  }
  co_return st.Failure(fmt::format("TLS handshake with {} timed out", where),
                       fmt::format("TLS handshake with {} failed: {}{}", where, ec.message(), detail));
}

asio::awaitable<void> HttpClient::Impl::Run(std::shared_ptr<StreamState> st) {
  std::string url_error;
  std::optional<HttpUrl> url = ParseHttpUrl(st->request.url, &url_error);
  if (!url) {
    st->Done(absl::InvalidArgumentError(fmt::format("bad URL '{}': {}", st->request.url, url_error)));
    co_return;
  }
  if (url->scheme == "https" && !tls_context_.ok()) {
    st->Done(tls_context_.status());
    co_return;
  }
  const std::string where = fmt::format("{}:{}", url->host, url->port);  // for messages
  const std::string key = fmt::format("{}://{}", url->scheme, where);    // for the pool
  const auto timeout = st->request.timeout.value_or(options_.request_timeout);
  const std::string_view method = HttpMethodName(st->request.method);
  std::string head = SerializeRequestHead(method, url->target, HostHeader(*url),
                                          st->request.headers, st->request.body.size());
  if (st->total_deadline) ArmDeadline(*st, timeout);

  for (int attempt = 0; attempt < 2; ++attempt) {
    if (st->cancelled) {
      st->Done(absl::CancelledError("request cancelled"));
      co_return;
    }
    boost::system::error_code ec;
    st->connection = TakePooled(key);
    const bool reused = st->connection != nullptr;
    if (!reused) {
      absl::Status connected = co_await Connect(*st, *url);
      if (!connected.ok()) {
        st->Done(std::move(connected));
        co_return;
      }
      if (st->total_deadline) ArmDeadline(*st, timeout);
    }

    if (!st->total_deadline) ArmDeadline(*st, timeout);
    std::array<asio::const_buffer, 2> buffers = {asio::buffer(head), asio::buffer(st->request.body)};
    co_await asio::async_write(st->connection->stream(), buffers, asio::redirect_error(asio::use_awaitable, ec));

    beast::flat_buffer buffer;
    bhttp::response_parser<bhttp::buffer_body> parser;
    // Not boost::none: Boost 1.74 compares the length against an empty optional as "over".
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    if (st->request.method == HttpMethod::kHead) parser.skip(true);
    if (!ec) {
      if (!st->total_deadline) ArmDeadline(*st, timeout);
      co_await bhttp::async_read_header(st->connection->stream(), buffer, parser,
                                        asio::redirect_error(asio::use_awaitable, ec));
    }
    if (ec) {
      // A pooled connection the server closed meanwhile: try once on a fresh one.
      bool stale = reused && !st->cancelled && !st->timed_out &&
                   (ec == asio::error::eof || ec == bhttp::error::end_of_stream ||
                    ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
                    ec == ssl::error::stream_truncated);
      st->CloseSocket();
      if (stale) continue;
      st->deadline.cancel();
      st->Done(st->Failure(fmt::format("request to {} timed out", where),
                           fmt::format("request to {} failed: {}", where, ec.message())));
      co_return;
    }

    const auto& message = parser.get();
    if (st->callbacks.on_head) {
      HttpHeaders headers;
      for (const auto& field : message) {
        headers.Add(std::string_view(field.name_string().data(), field.name_string().size()),
                    std::string_view(field.value().data(), field.value().size()));
      }
      st->callbacks.on_head(static_cast<int>(message.result_int()), headers);
    }

    char chunk[16 * 1024];
    bool stopped = false;
    while (!parser.is_done()) {
      parser.get().body().data = chunk;
      parser.get().body().size = sizeof(chunk);
      if (!st->total_deadline) ArmDeadline(*st, timeout);
      // read_some, not read: deliver each piece as it arrives (SSE events must not wait
      // for the buffer to fill).
      co_await bhttp::async_read_some(st->connection->stream(), buffer, parser,
                                      asio::redirect_error(asio::use_awaitable, ec));
      if (ec == bhttp::error::need_buffer) ec = {};
      // A TLS peer that closes without close_notify (common, e.g. `openssl s_server
      // -WWW`): the end of a body delimited by the connection's end, else a broken body.
      if (ec == ssl::error::stream_truncated) parser.put_eof(ec);
      size_t n = sizeof(chunk) - parser.get().body().size;
      if (ec) break;
      if (n > 0 && st->callbacks.on_data &&
          !st->callbacks.on_data(std::string_view(chunk, n))) {
        stopped = true;
        break;
      }
    }
    st->deadline.cancel();
    if (ec || stopped) {
      st->Done(stopped ? absl::OkStatus()
                       : st->Failure(fmt::format("response from {} timed out", where),
                                     fmt::format("response from {} broke off: {}", where, ec.message())));
      co_return;
    }
    if (parser.keep_alive() && buffer.size() == 0 && !st->cancelled) {
      ReturnToPool(key, std::move(st->connection));
    }
    st->Done(absl::OkStatus());
    co_return;
  }
  st->Done(absl::UnavailableError(fmt::format("request to {} failed: connection closed", where)));
}

HttpClient::HttpClient(HttpClientOptions options) : impl_(std::make_shared<Impl>(std::move(options))) {}

HttpClient::~HttpClient() = default;

std::shared_ptr<HttpStreamHandle> HttpClient::Stream(HttpClientRequest request,
                                                     HttpStreamCallbacks callbacks) {
  return impl_->Start(std::move(request), std::move(callbacks), /*total_deadline=*/false);
}

void HttpClient::SendAsync(HttpClientRequest request,
                           std::function<void(absl::StatusOr<HttpResponse>)> done) {
  struct Collector {
    HttpResponse response;
    bool too_big = false;
  };
  auto collector = std::make_shared<Collector>();
  const size_t limit = impl_->options().max_response_bytes;
  HttpStreamCallbacks callbacks{
      .on_head =
          [collector](int status, const HttpHeaders& headers) {
            collector->response.status = status;
            collector->response.headers = headers;
          },
      .on_data =
          [collector, limit](std::string_view data) {
            if (collector->response.body.size() + data.size() > limit) {
              collector->too_big = true;
              return false;
            }
            collector->response.body.append(data);
            return true;
          },
      .on_done =
          [collector, limit, done = std::move(done)](absl::Status status) {
            if (collector->too_big) {
              done(absl::ResourceExhaustedError(
                  fmt::format("response body exceeds {} bytes", limit)));
            } else if (!status.ok()) {
              done(std::move(status));
            } else {
              done(std::move(collector->response));
            }
          },
  };
  impl_->Start(std::move(request), std::move(callbacks), /*total_deadline=*/true);
}

absl::StatusOr<HttpResponse> HttpClient::Send(HttpClientRequest request) {
  std::promise<absl::StatusOr<HttpResponse>> promise;
  auto future = promise.get_future();
  SendAsync(std::move(request),
            [&promise](absl::StatusOr<HttpResponse> result) { promise.set_value(std::move(result)); });
  return future.get();
}

absl::Status HttpClient::ReadSse(HttpClientRequest request,
                                 const std::function<bool(const SseEvent&)>& on_event) {
  int status = 0;
  std::string error_body;
  SseParser parser;
  absl::Status parse_status;
  std::promise<absl::Status> promise;
  auto future = promise.get_future();
  HttpStreamCallbacks callbacks{
      .on_head = [&](int s, const HttpHeaders&) { status = s; },
      .on_data =
          [&](std::string_view data) {
            if (status < 200 || status >= 300) {
              error_body.append(data.substr(0, 4096));
              return true;
            }
            bool keep_going = true;
            parse_status = parser.Feed(data, [&](SseEvent&& event) {
              if (keep_going && !on_event(event)) keep_going = false;
            });
            return keep_going && parse_status.ok();
          },
      .on_done = [&](absl::Status s) { promise.set_value(std::move(s)); },
  };
  impl_->Start(std::move(request), std::move(callbacks), /*total_deadline=*/false);
  absl::Status transport = future.get();
  if (!parse_status.ok()) return parse_status;
  if (!transport.ok()) return transport;
  if (status < 200 || status >= 300) return StatusFromHttp(status, error_body);
  return absl::OkStatus();
}

int64_t HttpClient::connections_opened() const { return impl_->connections_opened(); }

}  // namespace triplane::common
