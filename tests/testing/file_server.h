#pragma once

// A deliberately simple HTTP/1.1 file server on raw sockets for download tests, over
// plain TCP or TLS (OpenSSL, with a certificate from test_pki.h): one request per
// connection unless keep-alive is on, `Range: bytes=N-` support (206 / 416), redirects
// per path, and faults on demand — a connection closed after N body bytes (without a TLS
// close_notify), ranges ignored, an error status. One connection at a time.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <csignal>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "testing/test_pki.h"

namespace triplane::testing {

class FileServer {
 public:
  // Serves `body` for every path over plain HTTP, or over HTTPS with `tls`.
  explicit FileServer(std::string body, std::optional<TlsIdentity> tls = std::nullopt)
      : body_(std::move(body)) {
    if (tls) {
      // OpenSSL writes with write(2): a client hanging up must not kill the test.
      std::signal(SIGPIPE, SIG_IGN);
      tls_.reset(SSL_CTX_new(TLS_server_method()));
      if (SSL_CTX_use_certificate_chain_file(tls_.get(), tls->cert_file.c_str()) != 1 ||
          SSL_CTX_use_PrivateKey_file(tls_.get(), tls->key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
        throw std::runtime_error("FileServer: cannot load " + tls->cert_file);
      }
    }
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    ::listen(listen_fd_, 16);
    socklen_t len = sizeof(addr);
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Loop(); });
  }
  ~FileServer() {
    stop_ = true;
    thread_.join();
    ::close(listen_fd_);
  }

  uint16_t port() const { return port_; }
  std::string url(const std::string& path = "/model.gguf", const std::string& host = "127.0.0.1") const {
    return (tls_ ? "https://" : "http://") + host + ":" + std::to_string(port_) + path;
  }

  // Requests for `path` are answered with `status` and `Location: location`.
  void Redirect(const std::string& path, int status, const std::string& location) {
    std::lock_guard lock(mu_);
    redirects_[path] = {status, location};
  }
  // Serves several requests per connection (HTTP/1.1 keep-alive) instead of one.
  void KeepAlive(bool keep_alive) { keep_alive_ = keep_alive; }
  int connections() const { return connections_; }
  // The request targets in arrival order ("/model.gguf").
  std::vector<std::string> paths() {
    std::lock_guard lock(mu_);
    return paths_;
  }

  // The next `times` responses end (connection closed) after `bytes` body bytes.
  void DropAfter(int64_t bytes, int times) {
    std::lock_guard lock(mu_);
    drop_after_ = bytes;
    drops_left_ = times;
  }
  void IgnoreRanges(bool ignore) { ignore_ranges_ = ignore; }
  void SetStatus(int status) { status_ = status; }  // 0: serve the file
  int requests() const { return requests_; }
  std::vector<std::string> ranges() {
    std::lock_guard lock(mu_);
    return ranges_;
  }

 private:
  void Loop() {
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd >= 0) Serve(fd);
    }
  }

  struct SslDeleter {
    void operator()(SSL_CTX* p) const { SSL_CTX_free(p); }
    void operator()(SSL* p) const { SSL_free(p); }
  };

  void Serve(int fd) {
    ++connections_;
    timeval timeout{.tv_sec = 2, .tv_usec = 0};  // a silent client must not stall the server
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    std::unique_ptr<SSL, SslDeleter> ssl;
    if (tls_) {
      ssl.reset(SSL_new(tls_.get()));
      SSL_set_fd(ssl.get(), fd);
      if (SSL_accept(ssl.get()) != 1) {  // e.g. the client rejected the certificate
        ::close(fd);
        return;
      }
    }
    bool clean = true;
    do {
      clean = ServeRequest(fd, ssl.get());
    } while (clean && keep_alive_ && !stop_);
    if (clean && ssl) SSL_shutdown(ssl.get());  // close_notify: a clean end
    ::shutdown(fd, SHUT_RDWR);
    ::close(fd);
  }

  // Answers one request; false when the connection is to be closed without close_notify.
  bool ServeRequest(int fd, SSL* ssl) {
    std::string request;
    char buf[4096];
    while (request.find("\r\n\r\n") == std::string::npos) {
      const ssize_t n = ssl ? SSL_read(ssl, buf, sizeof(buf)) : ::recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) return false;
      request.append(buf, static_cast<size_t>(n));
    }
    ++requests_;
    const size_t path_start = request.find(' ') + 1;
    const std::string path = request.substr(path_start, request.find(' ', path_start) - path_start);
    std::pair<int, std::string> redirect;
    {
      std::lock_guard lock(mu_);
      paths_.push_back(path);
      if (auto it = redirects_.find(path); it != redirects_.end()) redirect = it->second;
    }
    int64_t start = -1;
    if (const size_t r = request.find("Range: bytes="); r != std::string::npos) {
      const char* begin = request.data() + r + 13;
      std::from_chars(begin, request.data() + request.size(), start);
      std::lock_guard lock(mu_);
      ranges_.push_back(request.substr(r + 13, request.find("\r\n", r) - r - 13));
    }
    const auto size = static_cast<int64_t>(body_.size());
    std::string head;
    std::string_view content = body_;
    if (redirect.first != 0) {
      content = "moved";
      head = "HTTP/1.1 " + std::to_string(redirect.first) + " Moved\r\nLocation: " + redirect.second + "\r\n";
    } else if (status_ != 0) {
      content = "error page";
      head = "HTTP/1.1 " + std::to_string(status_.load()) + " Error\r\n";
    } else if (start >= 0 && !ignore_ranges_) {
      if (start >= size) {
        content = "";
        head = "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */" + std::to_string(size) + "\r\n";
      } else {
        content = std::string_view(body_).substr(static_cast<size_t>(start));
        head = "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes " + std::to_string(start) + "-" +
               std::to_string(size - 1) + "/" + std::to_string(size) + "\r\n";
      }
    } else {
      head = "HTTP/1.1 200 OK\r\n";
    }
    head += "Content-Length: " + std::to_string(content.size()) +
            (keep_alive_ ? "\r\n\r\n" : "\r\nConnection: close\r\n\r\n");
    int64_t limit = static_cast<int64_t>(content.size());
    {
      std::lock_guard lock(mu_);
      if (drops_left_ > 0 && status_ == 0 && redirect.first == 0) {
        --drops_left_;
        limit = std::min(limit, drop_after_);
      }
    }
    const bool whole = limit == static_cast<int64_t>(content.size());
    return SendAll(fd, ssl, head) && SendAll(fd, ssl, content.substr(0, static_cast<size_t>(limit))) && whole;
  }

  static bool SendAll(int fd, SSL* ssl, std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = ssl ? SSL_write(ssl, data.data(), static_cast<int>(data.size()))
                            : ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  std::string body_;
  std::unique_ptr<SSL_CTX, SslDeleter> tls_;  // null: plain HTTP
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<bool> ignore_ranges_{false};
  std::atomic<int> status_{0};
  std::atomic<int> requests_{0};
  std::atomic<int> connections_{0};
  std::atomic<bool> keep_alive_{false};
  std::mutex mu_;
  int64_t drop_after_ = 0;
  int drops_left_ = 0;
  std::vector<std::string> ranges_;
  std::vector<std::string> paths_;
  std::map<std::string, std::pair<int, std::string>> redirects_;
  std::thread thread_;
};

}  // namespace triplane::testing
