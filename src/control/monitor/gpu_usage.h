#pragma once

// GPU use per process through NVML (the NVIDIA driver's management library), loaded
// with dlopen("libnvidia-ml.so.1") at run time: the binary neither links nor needs it,
// and on a machine without an NVIDIA driver Open() says so and GPU values stay unknown.

#include <cstdint>
#include <limits>
#include <map>
#include <memory>

namespace triplane::control {

// GPU use of one process.
struct GpuUsage {
  // Utilisation of the devices the process runs on (NVML reports it per device, not per
  // process), averaged over them, in percent.
  double utilization_percent = std::numeric_limits<double>::quiet_NaN();
  double memory_bytes = std::numeric_limits<double>::quiet_NaN();  // used by the process
};

class GpuUsageReader {
 public:
  // The reader, or nullptr when NVML cannot be loaded or initialised (no driver, no GPU).
  static std::unique_ptr<GpuUsageReader> Open();
  ~GpuUsageReader();  // nvmlShutdown and dlclose

  GpuUsageReader(const GpuUsageReader&) = delete;
  GpuUsageReader& operator=(const GpuUsageReader&) = delete;

  // Every process with a compute context on some device, by pid. Pids are those of the
  // driver's namespace: in a container they may not match the control plane's view.
  // Thread-compatible. Cost: a few NVML calls per device.
  std::map<int64_t, GpuUsage> Read();

  int device_count() const;

 private:
  struct Api;
  explicit GpuUsageReader(std::unique_ptr<Api> api);
  std::unique_ptr<Api> api_;
};

}  // namespace triplane::control
