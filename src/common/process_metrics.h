#pragma once

// The standard process_* metrics exported by the Go and Python Prometheus clients.

#include <cstdint>
#include <optional>

#include "common/metrics.h"

namespace triplane::common {

// Registers process_cpu_seconds_total, process_resident_memory_bytes,
// process_virtual_memory_bytes, process_open_fds, process_max_fds,
// process_start_time_seconds and process_threads as callback metrics that read
// /proc/self when `registry` renders; a value that cannot be read renders as NaN.
// Calling it again (on the same registry) just refreshes the callbacks.
// Thread-safe. Cost per render: a few small /proc reads and one /proc/self/fd listing.
void RegisterProcessMetrics(MetricsRegistry& registry);

// What the kernel reports of another process (e.g. a child engine).
struct ProcessUsage {
  double cpu_seconds = 0;  // user + system CPU time since it started (/proc/PID/stat)
  double rss_bytes = 0;    // resident memory (VmRSS of /proc/PID/status)
};

// The usage of process `pid`, or nullopt when it is gone (or a zombie) or /proc cannot
// be read. Thread-safe. Cost: two small /proc reads.
std::optional<ProcessUsage> ReadProcessUsage(int64_t pid);

}  // namespace triplane::common
