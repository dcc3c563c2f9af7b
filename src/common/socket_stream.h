#pragma once

// A TCP socket with an optional TLS layer over it: the byte stream of the HTTP server's
// and the HTTP client's connections. Models Asio's AsyncReadStream and AsyncWriteStream
// so that Beast and asio::async_write use either kind the same way. Not movable: the TLS
// layer refers to the socket. Used by one connection's coroutine or strand only.
// Internal to http_server.cc and http_client.cc (it brings in Asio and OpenSSL).

#include <cstddef>
#include <memory>
#include <utility>

#include <boost/asio/async_result.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>

namespace triplane::common::internal {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;

class SocketStream {
 public:
  using executor_type = tcp::socket::executor_type;

  // `tls_context` null: plain TCP. Otherwise it must outlive the handshake (OpenSSL
  // keeps its own reference for the session after that).
  // A socket to connect later (a client's).
  explicit SocketStream(asio::io_context& ioc) : socket_(ioc) {}
  explicit SocketStream(tcp::socket socket, ssl::context* tls_context = nullptr)
      : socket_(std::move(socket)) {
    if (tls_context != nullptr) StartTls(*tls_context);
  }
  SocketStream(const SocketStream&) = delete;
  SocketStream& operator=(const SocketStream&) = delete;

  tcp::socket& socket() { return socket_; }
  executor_type get_executor() { return socket_.get_executor(); }
  // The TLS layer; null for plain TCP.
  ssl::stream<tcp::socket&>* tls() { return tls_.get(); }
  // Layers TLS over the (connected) socket; the caller configures and runs the handshake.
  ssl::stream<tcp::socket&>& StartTls(ssl::context& context) {
    tls_ = std::make_unique<ssl::stream<tcp::socket&>>(socket_, context);
    return *tls_;
  }

  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    return Initiate(buffers, std::forward<Token>(token), [](auto& stream, const auto& b, auto handler) {
      stream.async_read_some(b, std::move(handler));
    });
  }

  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    return Initiate(buffers, std::forward<Token>(token), [](auto& stream, const auto& b, auto handler) {
      stream.async_write_some(b, std::move(handler));
    });
  }

 private:
  // Starts `operation(stream, buffers, handler)` on the TLS stream or the bare socket.
  template <class Buffers, class Token, class Operation>
  auto Initiate(const Buffers& buffers, Token&& token, Operation operation) {
    return asio::async_initiate<Token, void(boost::system::error_code, size_t)>(
        [this, operation](auto handler, const Buffers& b) {
          if (tls_) {
            operation(*tls_, b, std::move(handler));
          } else {
            operation(socket_, b, std::move(handler));
          }
        },
        token, buffers);
  }

  tcp::socket socket_;
  std::unique_ptr<ssl::stream<tcp::socket&>> tls_;  // over socket_
};

}  // namespace triplane::common::internal
