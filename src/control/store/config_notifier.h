#pragma once

// Wakes threads waiting for a config revision when this process writes one. The store
// pairs it with polling its own revision, which also catches other processes' writes.

#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace triplane::control {

class ConfigNotifier {
 public:
  // Records that `revision` is committed and wakes every waiter. Thread-safe.
  void Publish(int64_t revision);

  // Blocks until a revision above `after` has been published or about `timeout` passes
  // (it may wake a little early: callers re-check their own monotonic deadline); returns
  // the highest revision published so far. Thread-safe.
  int64_t WaitAbove(int64_t after, absl::Duration timeout);

 private:
  absl::Mutex mu_;
  absl::CondVar changed_;
  int64_t latest_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace triplane::control
