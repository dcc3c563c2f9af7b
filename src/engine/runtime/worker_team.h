#pragma once

// A fork-join team of threads for the forward pass: Run() splits `tasks` work items
// over the team and returns when all are done. Built for many short phases (a decode
// step runs ~10 per layer): idle workers spin briefly before sleeping on a futex, so a
// phase starts in well under a microsecond when phases follow each other closely.

#include <atomic>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

namespace triplane::engine {

class WorkerTeam {
 public:
  // `threads` >= 1 counts the calling thread: threads - 1 workers are started.
  explicit WorkerTeam(int threads);
  ~WorkerTeam();

  WorkerTeam(const WorkerTeam&) = delete;
  WorkerTeam& operator=(const WorkerTeam&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(task, thread) for every task in [0, tasks), spread over the team, and
  // returns when all calls have returned. `thread` is in [0, size()). Not reentrant:
  // call from one thread at a time (the owner), never from inside `fn`.
  void Run(int64_t tasks, const std::function<void(int64_t task, int thread)>& fn);

  // Splits [0, n) into size() near-equal contiguous ranges and calls fn(begin, end)
  // for each non-empty one (the usual way to split matrix rows).
  void ParallelFor(int64_t n, const std::function<void(int64_t begin, int64_t end)>& fn);

 private:
  void WorkerLoop(int thread);
  void Work(int thread);

  std::vector<std::thread> workers_;
  const std::function<void(int64_t, int)>* fn_ = nullptr;
  int64_t tasks_ = 0;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int64_t> next_task_{0};
  std::atomic<int> busy_{0};
  std::atomic<bool> caller_sleeping_{false};
  std::atomic<bool> stop_{false};
};

}  // namespace triplane::engine
