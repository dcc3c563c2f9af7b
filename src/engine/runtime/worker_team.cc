#include "engine/runtime/worker_team.h"

#include <algorithm>
#include <thread>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define TRIPLANE_CPU_RELAX() _mm_pause()
#else
#define TRIPLANE_CPU_RELAX() ((void)0)
#endif

namespace triplane::engine {

namespace {
// Waiting, in three stages: busy-spin (pause) long enough to bridge the gap between the
// phases of one forward pass on an otherwise idle core; then yield, so that when there
// are more runnable threads than cores the thread being waited for gets the core at
// once; then sleep on a futex, so that nothing burns a core between requests.
constexpr int kSpinIterations = 2000;
constexpr int kYieldIterations = 200;

// Waits until done() holds; sleep() blocks until something may have changed.
template <class Done, class Sleep>
void Wait(Done done, Sleep sleep) {
  for (int i = 0; i < kSpinIterations; ++i) {
    if (done()) return;
    TRIPLANE_CPU_RELAX();
  }
  for (int i = 0; i < kYieldIterations; ++i) {
    if (done()) return;
    std::this_thread::yield();
  }
  while (!done()) sleep();
}
}  // namespace

WorkerTeam::WorkerTeam(int threads) {
  for (int i = 1; i < std::max(1, threads); ++i) {
    workers_.emplace_back([this, i] { WorkerLoop(i); });
  }
}

WorkerTeam::~WorkerTeam() {
  stop_.store(true);
  generation_.fetch_add(1);
  generation_.notify_all();
  for (auto& worker : workers_) worker.join();
}

void WorkerTeam::Work(int thread) {
  while (true) {
    int64_t task = next_task_.fetch_add(1, std::memory_order_relaxed);
    if (task >= tasks_) break;
    (*fn_)(task, thread);
  }
}

void WorkerTeam::WorkerLoop(int thread) {
  uint64_t seen = 0;
  while (true) {
    Wait([&] { return generation_.load(std::memory_order_acquire) != seen; },
         [&] { generation_.wait(seen, std::memory_order_acquire); });
    seen = generation_.load(std::memory_order_acquire);
    if (stop_.load()) return;
    Work(thread);
    // The last worker wakes the caller if it went to sleep (seq_cst on both sides: either
    // the caller sees busy_ reach 0 or this sees caller_sleeping_).
    if (busy_.fetch_sub(1) == 1 && caller_sleeping_.load()) busy_.notify_one();
  }
}

void WorkerTeam::Run(int64_t tasks, const std::function<void(int64_t task, int thread)>& fn) {
  if (tasks <= 0) return;
  if (workers_.empty() || tasks == 1) {
    for (int64_t t = 0; t < tasks; ++t) fn(t, 0);
    return;
  }
  fn_ = &fn;
  tasks_ = tasks;
  next_task_.store(0, std::memory_order_relaxed);
  busy_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  generation_.notify_all();
  Work(0);
  Wait([&] { return busy_.load(std::memory_order_acquire) == 0; },
       [&] {
         caller_sleeping_.store(true);
         if (const int busy = busy_.load(); busy != 0) busy_.wait(busy);
         caller_sleeping_.store(false);
       });
  fn_ = nullptr;
}

void WorkerTeam::ParallelFor(int64_t n, const std::function<void(int64_t begin, int64_t end)>& fn) {
  const int64_t parts = std::min<int64_t>(size(), n);
  if (parts <= 0) return;
  Run(parts, [&](int64_t part, int) {
    int64_t begin = n * part / parts;
    int64_t end = n * (part + 1) / parts;
    if (begin < end) fn(begin, end);
  });
}

}  // namespace triplane::engine
