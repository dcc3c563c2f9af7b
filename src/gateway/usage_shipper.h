#pragma once

// Sends a separate gateway's usage rows to the control plane (POST /admin/v1/usage): a
// bounded queue (a full one drops the row and counts it in
// triplane_usage_dropped_total), batches of up to `batch` rows at least every `interval`,
// retried while the control plane is unreachable (rows are idempotent by request id), and
// a final flush on Stop() (bounded by `stop_timeout`).

#include <cstddef>
#include <deque>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/http_client.h"
#include "gateway/gateway.h"
#include "nlohmann/json.hpp"

namespace triplane::gateway {

struct UsageShipperOptions {
  std::string control_url;
  std::string admin_key;
  size_t capacity = 100'000;
  size_t batch = 500;
  absl::Duration interval = absl::Milliseconds(500);
  absl::Duration stop_timeout = absl::Seconds(10);
};

// One usage row as POST /admin/v1/usage takes it.
nlohmann::json UsageRow(const UsageEvent& event);

class UsageShipper {
 public:
  explicit UsageShipper(UsageShipperOptions options);
  ~UsageShipper();  // Stop().

  void Record(const UsageEvent& event);  // never blocks on the network
  void Stop();

 private:
  void Loop();

  const UsageShipperOptions options_;
  common::HttpClient client_;
  absl::Mutex mu_;
  std::deque<nlohmann::json> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace triplane::gateway
