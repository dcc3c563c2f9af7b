#include "control/usage_recorder.h"

#include <vector>

#include "common/metrics.h"
#include "spdlog/spdlog.h"

namespace triplane::control {
namespace {

common::Counter& Dropped() {
  static common::Counter& counter = common::MetricsRegistry::Default().AddCounter(
      "triplane_usage_dropped_total", "Usage rows dropped because the write queue was full.").Get();
  return counter;
}

common::Counter& Written() {
  static common::Counter& counter = common::MetricsRegistry::Default().AddCounter(
      "triplane_usage_written_total", "Usage rows written to the ledger.").Get();
  return counter;
}

}  // namespace

UsageRecorder::UsageRecorder(Store& store, UsageRecorderOptions options)
    : store_(store), options_(options) {
  Dropped();
  Written();
  thread_ = std::thread([this] { Loop(); });
}

UsageRecorder::~UsageRecorder() { Stop(); }

bool UsageRecorder::Record(UsageRecord record) {
  absl::MutexLock lock(&mu_);
  if (queue_.size() >= options_.capacity) {
    Dropped().Inc();
    return false;
  }
  queue_.push_back(std::move(record));
  return true;
}

void UsageRecorder::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void UsageRecorder::Flush() {
  absl::MutexLock lock(&mu_);
  auto drained = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return queue_.empty() && in_flight_ == 0; };
  mu_.Await(absl::Condition(&drained));
}

void UsageRecorder::Loop() {
  while (true) {
    std::vector<UsageRecord> batch;
    bool stopping = false;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || !queue_.empty();
      };
      mu_.AwaitWithTimeout(absl::Condition(&ready), options_.interval);
      stopping = stopping_;
      while (!queue_.empty() && batch.size() < options_.batch) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      in_flight_ = static_cast<int64_t>(batch.size());
      if (batch.empty() && stopping) return;
    }
    if (batch.empty()) continue;
    absl::StatusOr<int64_t> written = store_.AppendUsage(batch);
    absl::MutexLock lock(&mu_);
    if (written.ok()) {
      Written().Inc(static_cast<double>(*written));
    } else if (absl::IsInvalidArgument(written.status())) {
      spdlog::error("usage: dropped a batch of {} rows the store refused: {}", batch.size(),
                    std::string(written.status().message()));
      Dropped().Inc(static_cast<double>(batch.size()));
    } else {
      // The store is unavailable: put the batch back in front and try again later.
      spdlog::warn("usage: cannot write {} rows yet: {}", batch.size(), std::string(written.status().message()));
      for (auto it = batch.rbegin(); it != batch.rend(); ++it) queue_.push_front(std::move(*it));
      if (!stopping) mu_.AwaitWithTimeout(absl::Condition(&stopping_), absl::Seconds(1));
    }
    in_flight_ = 0;
  }
}

}  // namespace triplane::control
