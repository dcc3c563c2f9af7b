#pragma once

// Small helpers for the fixtures that run real servers in tests (postgres_server.h,
// redis_server.h, engine_process.h): a free loopback port, a whole file, and the end of a
// log file for failure messages.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace triplane::testing {

// A TCP port free on 127.0.0.1 right now (the kernel's choice), or -1.
inline int FreeLoopbackPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  int port = -1;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

// The whole file at `path` ("" when it cannot be read).
inline std::string ReadWholeFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The last 4,000 bytes of the file at `path` ("" when it cannot be read).
inline std::string FileTail(const std::string& path) {
  std::string text = ReadWholeFile(path);
  return text.size() > 4000 ? text.substr(text.size() - 4000) : text;
}

}  // namespace triplane::testing
