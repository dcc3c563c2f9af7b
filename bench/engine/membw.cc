// membw: read bandwidth of main memory, the ceiling of a memory-bound decode step.
//
// Reads a buffer much larger than the caches (1 GiB by default) front to back with
// 32-byte vector loads summed into four independent accumulators, split into one
// contiguous slice per thread, and reports the best of several passes in GB/s (1e9
// bytes/s) for each thread count. The sums go to a global the compiler must keep, so
// no load can be elided. Output: one JSON object,
//
//   {"buffer_bytes": 1073741824, "passes": 10,
//    "results": [{"threads": 1, "best_gb_per_s": 30.1, "median_gb_per_s": 29.8}, ...]}
//
//   membw --mib 1024 --passes 10 --threads 1,2

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"

namespace {

using Clock = std::chrono::steady_clock;

// A GCC/Clang vector of 32 bytes. ReadSlice is compiled for several x86 targets and
// picked at run time: on the Zen 4 VM of bench/README.md its 32-byte AVX2/AVX-512
// loads read ~20 % more per second than the baseline build's 16-byte SSE2 loads, and
// the point is the machine's ceiling.
using Vec = uint64_t __attribute__((vector_size(32)));
constexpr size_t kUnroll = 4;  // independent accumulators, so adds never stall loads

// Observable sink: every pass's sum lands here, so the reads are not dead code.
std::atomic<uint64_t> g_sink{0};

// Sum of n vectors at p. REQUIRES: n % kUnroll == 0.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#endif
uint64_t
ReadSlice(const Vec* p, size_t n) {
  Vec a{}, b{}, c{}, d{};
  for (size_t i = 0; i < n; i += kUnroll) {
    a += p[i];
    b += p[i + 1];
    c += p[i + 2];
    d += p[i + 3];
  }
  const Vec s = a + b + c + d;
  return s[0] + s[1] + s[2] + s[3];
}

struct PassTimes {
  double best_s = 0;
  double median_s = 0;
};

// Runs `passes` timed reads of the whole buffer with `threads` threads, each reading
// its own contiguous slice; a pass runs from just before the start barrier until the
// last thread is done. The calling thread is thread 0.
PassTimes Measure(const Vec* buffer, size_t vectors, int threads, int passes) {
  const size_t per_thread = vectors / static_cast<size_t>(threads) / kUnroll * kUnroll;
  std::barrier start(threads), done(threads);
  auto read = [&](int t) {
    for (int p = 0; p < passes; ++p) {
      start.arrive_and_wait();
      g_sink.fetch_add(ReadSlice(buffer + static_cast<size_t>(t) * per_thread, per_thread),
                       std::memory_order_relaxed);
      done.arrive_and_wait();
    }
  };
  std::vector<std::jthread> workers;
  for (int t = 1; t < threads; ++t) workers.emplace_back(read, t);
  std::vector<double> seconds;
  for (int p = 0; p < passes; ++p) {
    // The clock starts before the barrier releases anyone: if this thread were
    // descheduled right after it, the others' reading would otherwise go untimed.
    const auto begin = Clock::now();
    start.arrive_and_wait();
    g_sink.fetch_add(ReadSlice(buffer, per_thread), std::memory_order_relaxed);
    done.arrive_and_wait();
    seconds.push_back(std::chrono::duration<double>(Clock::now() - begin).count());
  }
  workers.clear();  // joins
  std::sort(seconds.begin(), seconds.end());
  return {.best_s = seconds.front(), .median_s = seconds[seconds.size() / 2]};
}

}  // namespace

int main(int argc, char** argv) {
  size_t mib = 1024;
  int passes = 10;
  std::vector<int> thread_counts = {1, 2};
  CLI::App app{"Read bandwidth of a buffer larger than the caches, in GB/s"};
  app.add_option("--mib", mib, "Buffer size in MiB (keep it far above the last-level cache)")
      ->check(CLI::Range(size_t{64}, size_t{1} << 20))
      ->capture_default_str();
  app.add_option("--passes", passes, "Timed passes per thread count; the best is reported")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  app.add_option("--threads", thread_counts, "Thread counts to measure")
      ->delimiter(',')
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  const size_t bytes = mib << 20;
  constexpr size_t kAlign = size_t{2} << 20;  // huge-page aligned
  std::unique_ptr<Vec, decltype(&std::free)> buffer(
      static_cast<Vec*>(std::aligned_alloc(kAlign, bytes)), &std::free);
  if (!buffer) {
    std::fprintf(stderr, "membw: cannot allocate %zu MiB\n", mib);
    return 1;
  }
  // Transparent huge pages where the kernel allows them: fewer TLB misses, as a large
  // mapped model file gets at best; the result is the machine's ceiling, not a typical.
  (void)madvise(buffer.get(), bytes, MADV_HUGEPAGE);
  // Touch every page with non-zero data (untouched pages would all read the zero page).
  std::memset(buffer.get(), 0x5a, bytes);
  const size_t vectors = bytes / sizeof(Vec);

  std::string results;
  for (int threads : thread_counts) {
    const PassTimes t = Measure(buffer.get(), vectors, threads, passes);
    const double read_bytes =
        static_cast<double>(vectors / static_cast<size_t>(threads) / kUnroll * kUnroll *
                            static_cast<size_t>(threads) * sizeof(Vec));
    results += (results.empty() ? "" : ", ");
    char line[160];
    std::snprintf(line, sizeof(line),
                  R"({"threads": %d, "best_gb_per_s": %.2f, "median_gb_per_s": %.2f})", threads,
                  read_bytes / t.best_s / 1e9, read_bytes / t.median_s / 1e9);
    results += line;
  }
  std::printf("{\"buffer_bytes\": %zu, \"passes\": %d, \"results\": [%s]}\n", bytes, passes,
              results.c_str());
  return 0;
}
