#pragma once

// A raw HTTP/1.1 client for tests that send what HttpClient cannot: bad bytes, header
// floods, requests sent a byte at a time. One request per connection, on 127.0.0.1.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "common/strings.h"

namespace triplane::testing {

struct RawResponse {
  int status = 0;  // 0: the connection ended without a (final) response
  std::string head;
  std::string body;
};

inline int ConnectLoopback(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  // A safety net against a server that never answers, not a timing assertion.
  timeval timeout{.tv_sec = 120, .tv_usec = 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// False once the peer stopped reading (it closed the connection).
inline bool SendBytes(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// Decodes a complete chunked body into `out`; false while it is incomplete.
inline bool Dechunk(std::string_view raw, std::string& out) {
  out.clear();
  size_t at = 0;
  while (true) {
    const size_t eol = raw.find("\r\n", at);
    if (eol == std::string_view::npos) return false;
    const size_t size = std::strtoul(std::string(raw.substr(at, eol - at)).c_str(), nullptr, 16);
    if (size == 0) return true;
    if (eol + 2 + size + 2 > raw.size()) return false;
    out.append(raw.substr(eol + 2, size));
    at = eol + 2 + size + 2;
  }
}

// The first final response (1xx skipped) in `raw`, once it is complete; `closed` says
// that nothing more will come (a body without a length ends there).
inline std::optional<RawResponse> ParseResponse(std::string_view raw, bool closed) {
  while (raw.starts_with("HTTP/1.1 1")) {
    const size_t end = raw.find("\r\n\r\n");
    if (end == std::string_view::npos) break;
    raw.remove_prefix(end + 4);
  }
  const size_t end = raw.find("\r\n\r\n");
  if (!raw.starts_with("HTTP/1.") || end == std::string_view::npos || end < 12) {
    if (closed) return RawResponse{};
    return std::nullopt;
  }
  RawResponse response;
  response.status = std::atoi(std::string(raw.substr(9, 3)).c_str());
  response.head = std::string(raw.substr(0, end));
  const std::string_view rest = raw.substr(end + 4);
  const std::string lower_head = common::AsciiToLower(response.head);
  if (const size_t cl = lower_head.find("\r\ncontent-length:"); cl != std::string::npos) {
    const size_t length = std::strtoul(lower_head.c_str() + cl + 17, nullptr, 10);
    if (rest.size() < length && !closed) return std::nullopt;
    response.body = std::string(rest.substr(0, std::min(length, rest.size())));
  } else if (lower_head.find("transfer-encoding: chunked") != std::string::npos) {
    if (!Dechunk(rest, response.body) && !closed) return std::nullopt;
  } else {
    if (!closed) return std::nullopt;
    response.body = std::string(rest);
  }
  return response;
}

// Reads until one complete response came or the peer closed the connection.
inline RawResponse ReadResponse(int fd) {
  std::string raw;
  char buffer[65536];
  while (true) {
    const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
    if (n > 0) raw.append(buffer, static_cast<size_t>(n));
    if (std::optional<RawResponse> response = ParseResponse(raw, n <= 0)) return *response;
  }
}

// Sends `request` on a fresh connection and reads the answer.
inline RawResponse RawExchange(int port, std::string_view request) {
  const int fd = ConnectLoopback(port);
  if (fd < 0) return {};
  SendBytes(fd, request);  // a server that refuses early stops reading; its answer counts
  RawResponse response = ReadResponse(fd);
  ::close(fd);
  return response;
}

// Sends `request` one byte every 50 ms until the server closes the connection (with an
// empty request: waits for that); true when the server closed it before the request was
// complete and without answering.
inline bool ClosedOnSlowClient(int port, std::string_view request) {
  const int fd = ConnectLoopback(port);
  if (fd < 0) return false;
  bool closed_early = false;
  if (request.empty()) {
    pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
    closed_early = ::poll(&p, 1, 120'000) > 0;  // the safety net again, not a timing check
  }
  for (size_t i = 0; i < request.size(); ++i) {
    pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
    if (::poll(&p, 1, 0) > 0) {  // readable: an answer or the end of the connection
      closed_early = true;
      break;
    }
    if (!SendBytes(fd, request.substr(i, 1))) {
      closed_early = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::string answer;
  if (closed_early) {
    char buffer[4096];
    ssize_t n;
    while ((n = ::recv(fd, buffer, sizeof(buffer), 0)) > 0) answer.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return closed_early && !answer.starts_with("HTTP/");
}

}  // namespace triplane::testing
