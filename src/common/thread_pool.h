#pragma once

// A fixed set of worker threads running submitted tasks in FIFO order.

#include <deque>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace triplane::common {

class ThreadPool {
 public:
  // Starts `threads` workers (0 or less: one per hardware thread, at least one), named
  // "<name>-<index>" (truncated to the 15 characters Linux keeps) for debuggers and top.
  ThreadPool(int threads, std::string name);
  // Calls Shutdown().
  ~ThreadPool();

  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Queues `task` to run on a worker. Returns false, dropping the task, once Shutdown()
  // has begun. Thread-safe; never blocks on running tasks. A task that throws is
  // logged and the worker carries on.
  [[nodiscard]] bool Submit(std::function<void()> task);

  // Stops accepting tasks, runs every task already queued, then joins the workers.
  // Idempotent; thread-safe; concurrent callers all return after the join.
  // REQUIRES: not called from a task of this pool (it would wait for itself).
  void Shutdown();

  // The number of worker threads.
  int size() const { return static_cast<int>(workers_.size()); }

  const std::string& name() const { return name_; }

 private:
  void WorkLoop();
  bool HasWorkOrStopping() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string name_;
  absl::Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;

  // Serialises Shutdown() callers so the workers are joined exactly once.
  absl::Mutex join_mu_;               // acquired before mu_
  std::vector<std::thread> workers_;  // fixed after construction; joined under join_mu_
  bool joined_ ABSL_GUARDED_BY(join_mu_) = false;
};

}  // namespace triplane::common
