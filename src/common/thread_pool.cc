#include "common/thread_pool.h"

#include <pthread.h>

#include <algorithm>
#include <exception>
#include <utility>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace triplane::common {
namespace {

// Linux keeps 15 characters of a thread's name.
constexpr size_t kMaxThreadNameLength = 15;

void SetCurrentThreadName(const std::string& name) {
  const std::string truncated = name.substr(0, kMaxThreadNameLength);
  pthread_setname_np(pthread_self(), truncated.c_str());
}

}  // namespace

ThreadPool::ThreadPool(int threads, std::string name) : name_(std::move(name)) {
  if (threads <= 0) threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  workers_.reserve(static_cast<size_t>(threads));
  for (int i = 0; i < threads; ++i) {
    workers_.emplace_back([this, i] {
      SetCurrentThreadName(absl::StrCat(name_, "-", i));
      WorkLoop();
    });
  }
}

ThreadPool::~ThreadPool() { Shutdown(); }

bool ThreadPool::Submit(std::function<void()> task) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return false;
  queue_.push_back(std::move(task));
  return true;
}

void ThreadPool::Shutdown() {
  absl::MutexLock join_lock(&join_mu_);
  if (joined_) return;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (std::thread& worker : workers_) worker.join();
  joined_ = true;
}

bool ThreadPool::HasWorkOrStopping() const { return stopping_ || !queue_.empty(); }

void ThreadPool::WorkLoop() {
  while (true) {
    std::function<void()> task;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &ThreadPool::HasWorkOrStopping));
      if (queue_.empty()) return;  // stopping, and everything queued has run
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    try {
      task();
    } catch (const std::exception& e) {
      spdlog::error("thread pool {}: task threw: {}", name_, e.what());
    } catch (...) {
      spdlog::error("thread pool {}: task threw a non-standard exception", name_);
    }
  }
}

}  // namespace triplane::common
