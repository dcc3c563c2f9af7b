#pragma once

// Writes usage-ledger rows asynchronously: Record() only queues (bounded; a full queue
// drops the row and counts it in triplane_usage_dropped_total) and a thread appends what
// is queued as soon as there is anything, in one transaction of up to `batch` rows; rows
// that arrive during a write go into the next one (group commit). So a SIGKILL loses at
// most the rows of about one transaction, and Stop() writes everything still queued, so a
// graceful shutdown loses nothing. A failed append is retried (appends are idempotent by
// request id).

#include <cstdint>
#include <deque>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "control/store/store.h"

namespace triplane::control {

struct UsageRecorderOptions {
  size_t capacity = 100'000;
  size_t batch = 500;
  absl::Duration interval = absl::Milliseconds(200);  // longest wait on an idle queue
};

class UsageRecorder {
 public:
  explicit UsageRecorder(Store& store, UsageRecorderOptions options = {});
  ~UsageRecorder();  // Stop().

  UsageRecorder(const UsageRecorder&) = delete;
  UsageRecorder& operator=(const UsageRecorder&) = delete;

  // Queues one row; false (and counted) when the queue is full. Never blocks on the store.
  bool Record(UsageRecord record);
  // Writes what is queued, then stops the thread. Idempotent.
  void Stop();
  // Blocks until everything queued before the call is written (tests).
  void Flush();

 private:
  void Loop();

  Store& store_;
  const UsageRecorderOptions options_;
  absl::Mutex mu_;
  std::deque<UsageRecord> queue_ ABSL_GUARDED_BY(mu_);
  int64_t in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace triplane::control
