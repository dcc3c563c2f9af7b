#pragma once

// A deliberately simple HTTP/1.1 file server on raw sockets for download tests: one
// request per connection, `Range: bytes=N-` support (206 / 416), and faults on demand —
// a connection closed after N body bytes, ranges ignored, an error status.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace triplane::testing {

class FileServer {
 public:
  explicit FileServer(std::string body) : body_(std::move(body)) {
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
  std::string url(const std::string& path = "/model.gguf") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
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

  void Serve(int fd) {
    std::string request;
    char buf[4096];
    while (request.find("\r\n\r\n") == std::string::npos) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 2000) <= 0) break;
      const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) break;
      request.append(buf, static_cast<size_t>(n));
    }
    ++requests_;
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
    if (status_ != 0) {
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
    head += "Content-Length: " + std::to_string(content.size()) + "\r\nConnection: close\r\n\r\n";
    int64_t limit = static_cast<int64_t>(content.size());
    {
      std::lock_guard lock(mu_);
      if (drops_left_ > 0 && status_ == 0) {
        --drops_left_;
        limit = std::min(limit, drop_after_);
      }
    }
    SendAll(fd, head);
    SendAll(fd, content.substr(0, static_cast<size_t>(limit)));
    ::shutdown(fd, SHUT_RDWR);
    ::close(fd);
  }

  static void SendAll(int fd, std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return;
      data.remove_prefix(static_cast<size_t>(n));
    }
  }

  std::string body_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<bool> ignore_ranges_{false};
  std::atomic<int> status_{0};
  std::atomic<int> requests_{0};
  std::mutex mu_;
  int64_t drop_after_ = 0;
  int drops_left_ = 0;
  std::vector<std::string> ranges_;
  std::thread thread_;
};

}  // namespace triplane::testing
