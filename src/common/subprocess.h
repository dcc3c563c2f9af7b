#pragma once

// Child processes: spawn with redirected output, signal, wait with a timeout.
// Used by the control plane's local provider (engine instances) and by tests.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace triplane::common {

struct SubprocessOptions {
  std::vector<std::string> argv;  // argv[0] is the program path (no PATH lookup)
  // "NAME=value" entries added to (or replacing in) the parent's environment.
  std::vector<std::string> env;
  std::string stdout_path;  // append output here; empty = inherit the parent's
  std::string stderr_path;  // likewise; may equal stdout_path
  bool new_process_group = true;  // so that a terminal's Ctrl-C reaches the parent only
};

struct ExitStatus {
  int code = -1;   // exit code when the process exited, else -1
  int signal = 0;  // terminating signal, or 0
  // The process's largest resident set (ru_maxrss). Linux counts the image the process
  // had before exec in it, so a child of a large process reports at least that much.
  int64_t peak_rss_bytes = 0;
  bool ok() const { return code == 0; }
  std::string ToString() const;  // "exit code 3" / "killed by signal 9 (Killed)"
};

// A running (or finished) child process. The child starts with an empty signal mask
// and default dispositions, whatever the parent blocks, and with no file descriptor of
// the parent's but its standard streams. Thread-compatible.
class Subprocess {
 public:
  // Starts the process. Fails with InvalidArgument for an empty argv and with the
  // errno text when the program cannot be started.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Subprocess>> Spawn(
      const SubprocessOptions& options);

  // Kills (SIGKILL) and reaps the child if it is still running.
  ~Subprocess();

  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  pid_t pid() const { return pid_; }

  // Sends `signal` to the child; false once it has been reaped.
  bool Signal(int signal);

  // Returns the exit status if the child has ended, without blocking.
  std::optional<ExitStatus> Poll();

  // Waits up to `timeout` for the child to end.
  std::optional<ExitStatus> Wait(std::chrono::milliseconds timeout);

  // SIGTERM, then SIGKILL if it has not ended after `grace`; returns its status.
  ExitStatus Terminate(std::chrono::milliseconds grace);

 private:
  explicit Subprocess(pid_t pid) : pid_(pid) {}

  pid_t pid_;
  std::optional<ExitStatus> status_;
};

}  // namespace triplane::common
