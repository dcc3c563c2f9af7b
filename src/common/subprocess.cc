#include "common/subprocess.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <map>
#include <thread>

#include "fmt/format.h"

extern char** environ;

namespace triplane::common {

std::string ExitStatus::ToString() const {
  if (signal != 0) return fmt::format("killed by signal {} ({})", signal, strsignal(signal));
  return fmt::format("exit code {}", code);
}

namespace {

// The parent's environment with `overrides` applied, as "NAME=value" strings.
std::vector<std::string> MergedEnvironment(const std::vector<std::string>& overrides) {
  std::map<std::string, std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string_view entry(*e);
    env[std::string(entry.substr(0, entry.find('=')))] = std::string(entry);
  }
  for (const std::string& entry : overrides) env[entry.substr(0, entry.find('='))] = entry;
  std::vector<std::string> out;
  out.reserve(env.size());
  for (auto& [name, entry] : env) out.push_back(std::move(entry));
  return out;
}

std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (std::string& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

ExitStatus FromWaitStatus(int status) {
  ExitStatus out;
  if (WIFEXITED(status)) out.code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) out.signal = WTERMSIG(status);
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Subprocess>> Subprocess::Spawn(const SubprocessOptions& options) {
  if (options.argv.empty()) return absl::InvalidArgumentError("subprocess: empty argv");
  std::vector<std::string> argv = options.argv;
  std::vector<std::string> env = MergedEnvironment(options.env);
  std::vector<char*> argv_c = CStrings(argv);
  std::vector<char*> env_c = CStrings(env);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  // No O_CLOEXEC: these become the child's own stdout/stderr across exec.
  constexpr int kFlags = O_WRONLY | O_CREAT | O_APPEND;
  if (!options.stdout_path.empty()) {
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, options.stdout_path.c_str(), kFlags,
                                     0644);
  }
  if (!options.stderr_path.empty()) {
    if (options.stderr_path == options.stdout_path) {
      posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    } else {
      posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, options.stderr_path.c_str(),
                                       kFlags, 0644);
    }
  }
  // Nothing else the parent has open reaches the child: not its listening sockets, which
  // would keep the parent's port bound while a child outlives it, nor its lock files.
  posix_spawn_file_actions_addclosefrom_np(&actions, STDERR_FILENO + 1);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  if (options.new_process_group) flags |= POSIX_SPAWN_SETPGROUP;
  posix_spawnattr_setflags(&attr, flags);
  sigset_t empty;
  sigemptyset(&empty);
  posix_spawnattr_setsigmask(&attr, &empty);
  sigset_t defaults;
  sigemptyset(&defaults);
  for (int sig : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGCHLD}) sigaddset(&defaults, sig);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  if (options.new_process_group) posix_spawnattr_setpgroup(&attr, 0);

  pid_t pid = 0;
  int err = posix_spawn(&pid, argv[0].c_str(), &actions, &attr, argv_c.data(), env_c.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (err != 0) {
    return absl::FailedPreconditionError(
        fmt::format("cannot start {}: {}", options.argv[0], std::strerror(err)));
  }
  return std::unique_ptr<Subprocess>(new Subprocess(pid));
}

Subprocess::~Subprocess() {
  if (!status_) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
}

bool Subprocess::Signal(int signal) {
  if (status_) return false;
  return ::kill(pid_, signal) == 0;
}

std::optional<ExitStatus> Subprocess::Poll() {
  if (status_) return status_;
  int status = 0;
  rusage usage{};
  pid_t r = ::wait4(pid_, &status, WNOHANG, &usage);
  if (r == pid_) {
    status_ = FromWaitStatus(status);
    status_->peak_rss_bytes = static_cast<int64_t>(usage.ru_maxrss) * 1024;  // KiB on Linux
  }
  return status_;
}

std::optional<ExitStatus> Subprocess::Wait(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto pause = std::chrono::milliseconds(1);
  while (!Poll()) {
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(20));
  }
  return status_;
}

ExitStatus Subprocess::Terminate(std::chrono::milliseconds grace) {
  if (Signal(SIGTERM)) {
    if (auto status = Wait(grace)) return *status;
    Signal(SIGKILL);
  }
  while (!Wait(std::chrono::seconds(1))) {
  }
  return *status_;
}

}  // namespace triplane::common
