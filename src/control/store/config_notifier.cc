#include "control/store/config_notifier.h"

namespace triplane::control {

void ConfigNotifier::Publish(int64_t revision) {
  absl::MutexLock lock(&mu_);
  if (revision > latest_) latest_ = revision;
  changed_.SignalAll();
}

int64_t ConfigNotifier::WaitAbove(int64_t after, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::MutexLock lock(&mu_);
  while (latest_ <= after) {
    if (changed_.WaitWithDeadline(&mu_, deadline)) break;  // true: the deadline passed
  }
  return latest_;
}

}  // namespace triplane::control
