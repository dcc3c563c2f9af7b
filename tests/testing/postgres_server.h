#pragma once

// A real PostgreSQL server for tests: initdb in a temp dir (copied from a cached template
// after the first time), started with pg_ctl on a free 127.0.0.1 port, password auth over
// TCP, stopped (pg_ctl stop -m fast) and removed by the destructor. PostgreSQL refuses to
// run as root, so as root every command runs as the `postgres` system user that Debian's
// package creates (runuser), with the temp dir owned by it.
//
// A missing installation is an error with instructions (scripts/setup installs the
// Debian package `postgresql`), never a skip. $TRIPLANE_POSTGRES_BIN overrides the
// binaries' directory (default: the newest /usr/lib/postgresql/*/bin).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
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
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/strings.h"
#include "common/subprocess.h"
#include "testing/server_process_util.h"
#include "fmt/format.h"

namespace triplane::testing {

class PostgresServer {
 public:
  static constexpr std::string_view kUser = "postgres";
  static constexpr std::string_view kPassword = "triplane-test-password";

  // Initialises and starts a server. FailedPrecondition with instructions when PostgreSQL
  // is not installed; Internal with the server's log when it does not start.
  static absl::StatusOr<std::unique_ptr<PostgresServer>> Start() {
    auto bin = FindBinDir();
    if (!bin.ok()) return bin.status();
    std::unique_ptr<PostgresServer> server(new PostgresServer(*bin));
    if (absl::Status s = server->Init(); !s.ok()) return s;
    if (absl::Status s = server->StartServer(); !s.ok()) return s;
    return server;
  }

  // One server per test process, started on first use and stopped at exit; tests share it
  // through separate databases (CreateDatabase).
  static absl::StatusOr<PostgresServer*> Shared() {
    // Destroyed (so stopped) when the process exits normally.
    static absl::StatusOr<std::unique_ptr<PostgresServer>> shared = Start();
    if (!shared.ok()) return shared.status();
    return shared->get();
  }

  ~PostgresServer() {
    if (running_) (void)Stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  int port() const { return port_; }

  // postgres://postgres:PASSWORD@127.0.0.1:PORT/DATABASE
  std::string Url(std::string_view database) const {
    return fmt::format("postgres://{}:{}@127.0.0.1:{}/{}", kUser, kPassword, port_, database);
  }

  // Creates `name` (letters, digits, '_') and returns its URL.
  absl::StatusOr<std::string> CreateDatabase(std::string_view name) {
    absl::Status s = Run({(bin_ / "createdb").string(), "-h", dir_.string(), "-p",
                          std::to_string(port_), "-U", std::string(kUser), std::string(name)},
                         std::chrono::seconds(30));
    if (!s.ok()) return s;
    return Url(name);
  }

  // Fast shutdown: connected clients are disconnected.
  absl::Status Stop() {
    running_ = false;
    return Run({(bin_ / "pg_ctl").string(), "-D", data_dir().string(), "-m", "fast", "-w", "-t",
                "60", "stop"},
               std::chrono::seconds(90));
  }

  // Starts again on the same port with the same data.
  absl::Status StartAgain() { return StartOnPort(port_); }

  absl::Status Restart() {
    if (absl::Status s = Stop(); !s.ok()) return s;
    return StartAgain();
  }

 private:
  explicit PostgresServer(std::filesystem::path bin) : bin_(std::move(bin)) {}

  std::filesystem::path data_dir() const { return dir_ / "data"; }

  static absl::StatusOr<std::filesystem::path> FindBinDir() {
    if (const char* env = std::getenv("TRIPLANE_POSTGRES_BIN"); env != nullptr && *env != '\0') {
      if (std::filesystem::exists(std::filesystem::path(env) / "initdb"))
        return std::filesystem::path(env);
      return absl::FailedPreconditionError(
          fmt::format("TRIPLANE_POSTGRES_BIN={} has no initdb", env));
    }
    std::filesystem::path best;
    int best_version = -1;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
      const int version = std::atoi(entry.path().filename().c_str());
      if (version > best_version && std::filesystem::exists(entry.path() / "bin" / "initdb")) {
        best_version = version;
        best = entry.path() / "bin";
      }
    }
    if (best_version < 0) {
      return absl::FailedPreconditionError(
          "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): run scripts/setup, "
          "which installs the Debian package `postgresql`, or set TRIPLANE_POSTGRES_BIN");
    }
    return best;
  }

  // Runs `argv` (as the postgres user when root) and waits; the output goes to the log.
  absl::Status Run(std::vector<std::string> argv, std::chrono::seconds timeout) {
    if (::geteuid() == 0) {
      const char* runuser =
          std::filesystem::exists("/usr/sbin/runuser") ? "/usr/sbin/runuser" : "/sbin/runuser";
      argv.insert(argv.begin(), {runuser, "-u", std::string(kUser), "--"});
    }
    const std::string log = (dir_ / "commands.log").string();
    auto process =
        common::Subprocess::Spawn({.argv = argv, .stdout_path = log, .stderr_path = log});
    if (!process.ok()) return process.status();
    const auto status = (*process)->Wait(timeout);
    if (!status.has_value()) {
      (*process)->Terminate(std::chrono::seconds(5));
      return absl::DeadlineExceededError(
          fmt::format("{} timed out; log: {}", argv.back(), FileTail(log)));
    }
    if (!status->ok()) {
      return absl::InternalError(
          fmt::format("`{}` failed ({}); log:\n{}", Join(argv), status->ToString(), FileTail(log)));
    }
    return absl::OkStatus();
  }

  absl::Status Init() {
    std::string pattern = (std::filesystem::temp_directory_path() / "triplane-pg-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) return absl::InternalError("mkdtemp failed");
    dir_ = pattern;
    if (::geteuid() == 0) {
      const passwd* pw = ::getpwnam(std::string(kUser).c_str());
      if (pw == nullptr) {
        return absl::FailedPreconditionError(
            "PostgreSQL refuses to run as root and there is no `postgres` user: install the Debian "
            "package "
            "`postgresql` (scripts/setup)");
      }
      uid_ = pw->pw_uid;
      gid_ = pw->pw_gid;
      if (::chown(dir_.c_str(), uid_, gid_) != 0)
        return absl::InternalError("chown of the temp dir failed");
    }
    // initdb once per PostgreSQL version and user; later servers copy the template.
    const std::filesystem::path tmp = std::filesystem::temp_directory_path();
    const std::filesystem::path template_dir =
        tmp / fmt::format("triplane-pg-template-v1-{}-{}", bin_.parent_path().filename().string(),
                          ::geteuid());
    if (std::filesystem::exists(template_dir / "PG_VERSION")) {
      return Copy(template_dir, data_dir());
    }
    const std::filesystem::path pwfile = dir_ / "pwfile";
    std::ofstream(pwfile) << kPassword << "\n";
    if (uid_ != 0 && ::chown(pwfile.c_str(), uid_, gid_) != 0)
      return absl::InternalError("chown failed");
    absl::Status s = Run({(bin_ / "initdb").string(), "-D", data_dir().string(), "-U",
                          std::string(kUser), "--pwfile", pwfile.string(), "--auth-local=trust",
                          "--auth-host=scram-sha-256", "-E", "UTF8", "--no-locale", "--no-sync"},
                         std::chrono::seconds(120));
    std::filesystem::remove(pwfile);
    if (!s.ok()) return s;
    // Publish the template atomically; losing a race with another test process is fine.
    const std::filesystem::path staging =
        tmp / fmt::format("{}.{}", template_dir.filename().string(), ::getpid());
    if (Copy(data_dir(), staging).ok()) {
      std::error_code ec;
      std::filesystem::rename(staging, template_dir, ec);
      if (ec) std::filesystem::remove_all(staging, ec);
    }
    return absl::OkStatus();
  }

  // cp -a keeps owners and the 0700 mode PostgreSQL insists on.
  absl::Status Copy(const std::filesystem::path& from, const std::filesystem::path& to) {
    auto process =
        common::Subprocess::Spawn({.argv = {"/bin/cp", "-a", from.string(), to.string()}});
    if (!process.ok()) return process.status();
    const auto status = (*process)->Wait(std::chrono::seconds(60));
    if (!status.has_value() || !status->ok()) {
      return absl::InternalError(fmt::format("cp -a {} {} failed", from.string(), to.string()));
    }
    return absl::OkStatus();
  }

  absl::Status StartServer() {
    absl::Status last;
    for (int attempt = 0; attempt < 5; ++attempt) {  // a free port may be taken meanwhile
      const int port = FreeLoopbackPort();
      if (port <= 0) return absl::InternalError("no free port");
      last = StartOnPort(port);
      if (last.ok()) return last;
    }
    return last;
  }

  absl::Status StartOnPort(int port) {
    port_ = port;
    const std::string options = fmt::format(
        "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
        "-c full_page_writes=off -c max_connections=200",
        port, dir_.string());
    absl::Status s = Run({(bin_ / "pg_ctl").string(), "-D", data_dir().string(), "-l",
                          (dir_ / "server.log").string(), "-o", options, "-w", "-t", "60", "start"},
                         std::chrono::seconds(90));
    if (!s.ok()) {
      return absl::InternalError(fmt::format("{}\nserver log:\n{}", common::ToStd(s.message()),
                                             FileTail((dir_ / "server.log").string())));
    }
    running_ = true;
    return absl::OkStatus();
  }

  static std::string Join(const std::vector<std::string>& argv) {
    std::string out;
    for (const auto& a : argv) out += (out.empty() ? "" : " ") + a;
    return out;
  }

  const std::filesystem::path bin_;
  std::filesystem::path dir_;
  uid_t uid_ = 0;
  gid_t gid_ = 0;
  int port_ = 0;
  bool running_ = false;
};

}  // namespace triplane::testing
