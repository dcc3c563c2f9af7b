#pragma once

// A real Redis server for tests: `redis-server --port N --bind 127.0.0.1 --save ""
// --appendonly no` on a free port, its working directory and log in a temp dir; stopped
// and removed by the destructor. Stop() and StartAgain() (same port, empty data) let
// tests take Redis away mid-test.
//
// A missing installation is an error with instructions (scripts/setup installs the
// Debian package `redis-server`), never a skip. $TRIPLANE_REDIS_SERVER overrides the
// binary (default /usr/bin/redis-server).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/subprocess.h"
#include "testing/server_process_util.h"
#include "fmt/format.h"

namespace triplane::testing {

class RedisServer {
 public:
  // Starts a server; a non-empty `password` is required of clients (requirepass).
  // FailedPrecondition with instructions when redis-server is missing; Internal with its
  // log when it does not answer within 20 s.
  static absl::StatusOr<std::unique_ptr<RedisServer>> Start(std::string password = "") {
    std::filesystem::path bin = "/usr/bin/redis-server";
    if (const char* env = std::getenv("TRIPLANE_REDIS_SERVER"); env != nullptr && *env != '\0') {
      bin = env;
    }
    if (!std::filesystem::exists(bin)) {
      return absl::FailedPreconditionError(fmt::format(
          "{} not found: run scripts/setup, which installs the Debian package `redis-server`, "
          "or set TRIPLANE_REDIS_SERVER",
          bin.string()));
    }
    std::string pattern =
        (std::filesystem::temp_directory_path() / "triplane-redis-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) return absl::InternalError("mkdtemp failed");
    std::unique_ptr<RedisServer> server(new RedisServer(bin, pattern, std::move(password)));
    absl::Status last;
    for (int attempt = 0; attempt < 5; ++attempt) {  // a free port may be taken meanwhile
      const int port = FreeLoopbackPort();
      if (port <= 0) return absl::InternalError("no free port");
      last = server->StartOnPort(port);
      if (last.ok()) return server;
    }
    return last;
  }

  // One server per test process, started on first use and stopped at exit. Tests that
  // stop it must use their own (Start()).
  static absl::StatusOr<RedisServer*> Shared() {
    static absl::StatusOr<std::unique_ptr<RedisServer>> shared = Start();
    if (!shared.ok()) return shared.status();
    return shared->get();
  }

  ~RedisServer() {
    Stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  int port() const { return port_; }
  // redis://127.0.0.1:PORT
  std::string Url() const { return fmt::format("redis://127.0.0.1:{}", port_); }

  // SIGTERM, SIGKILL after 10 s; connected clients see the connection close.
  void Stop() {
    if (process_ != nullptr) process_->Terminate(std::chrono::seconds(10));
    process_.reset();
  }

  // Starts again on the same port, with no data (nothing is saved).
  absl::Status StartAgain() { return StartOnPort(port_); }

 private:
  RedisServer(std::filesystem::path bin, std::filesystem::path dir, std::string password)
      : bin_(std::move(bin)), dir_(std::move(dir)), password_(std::move(password)) {}

  absl::Status StartOnPort(int port) {
    Stop();
    port_ = port;
    const std::string log = (dir_ / "server.log").string();
    std::vector<std::string> argv = {bin_.string(),
                                     "--port",
                                     std::to_string(port),
                                     "--bind",
                                     "127.0.0.1",
                                     "--save",
                                     "",
                                     "--appendonly",
                                     "no",
                                     "--dir",
                                     dir_.string(),
                                     "--daemonize",
                                     "no"};
    if (!password_.empty()) argv.insert(argv.end(), {"--requirepass", password_});
    auto process =
        common::Subprocess::Spawn({.argv = argv, .stdout_path = log, .stderr_path = log});
    if (!process.ok()) return process.status();
    process_ = *std::move(process);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      if (Ping()) return absl::OkStatus();
      if (process_->Poll().has_value()) break;  // exited: the port was taken, most likely
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    Stop();
    return absl::InternalError(
        fmt::format("redis-server on port {} did not start; log:\n{}", port, FileTail(log)));
  }

  // True when the server answers PING (+PONG, or -NOAUTH when it wants a password).
  bool Ping() const {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return false;
    timeval timeout{.tv_sec = 1, .tv_usec = 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port_));
    bool ok = false;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
        ::write(fd, "PING\r\n", 6) == 6) {
      char reply[16] = {};
      ok = ::read(fd, reply, sizeof(reply) - 1) >= 5 &&
           (std::string_view(reply).starts_with("+PONG") ||
            std::string_view(reply).starts_with("-NOAUTH"));
    }
    ::close(fd);
    return ok;
  }

  const std::filesystem::path bin_;
  const std::filesystem::path dir_;
  const std::string password_;
  std::unique_ptr<common::Subprocess> process_;
  int port_ = 0;
};

}  // namespace triplane::testing
