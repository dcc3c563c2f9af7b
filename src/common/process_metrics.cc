#include "common/process_metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace triplane::common {
namespace {

// Reads a small /proc file whole; nullopt if it cannot be opened.
std::optional<std::string> ReadSmallFile(const char* path) {
  std::FILE* file = std::fopen(path, "re");
  if (file == nullptr) return std::nullopt;
  std::string content;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), file)) > 0) content.append(buf, n);
  std::fclose(file);
  return content;
}

// Parses a whole decimal field; nullopt on anything else.
std::optional<double> ParseUint(std::string_view text) {
  uint64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return static_cast<double>(value);
}

// Splits on runs of spaces and newlines.
std::vector<std::string_view> SplitFields(std::string_view text) {
  std::vector<std::string_view> fields;
  size_t pos = 0;
  while (true) {
    pos = text.find_first_not_of(" \n", pos);
    if (pos == std::string_view::npos) break;
    const size_t end = std::min(text.find_first_of(" \n", pos), text.size());
    fields.push_back(text.substr(pos, end - pos));
    pos = end;
  }
  return fields;
}

// The fields of /proc/PID/stat we export (see proc(5)).
struct ProcStat {
  char state = '?';        // field 3
  double utime_ticks = 0;  // field 14
  double stime_ticks = 0;  // field 15
  double threads = 0;      // field 20
  double start_ticks = 0;  // field 22, clock ticks after boot
  double vsize_bytes = 0;  // field 23
  double rss_pages = 0;    // field 24
};

std::optional<ProcStat> ReadProcStat(const char* path = "/proc/self/stat") {
  const std::optional<std::string> content = ReadSmallFile(path);
  if (!content) return std::nullopt;
  // Field 2 is the command name in parentheses and may itself contain spaces or ')',
  // so split only what follows the last ')'; fields[0] is then field 3.
  const size_t paren = content->rfind(')');
  if (paren == std::string::npos) return std::nullopt;
  const std::vector<std::string_view> fields =
      SplitFields(std::string_view(*content).substr(paren + 1));
  auto field = [&fields](size_t number, double* out) {
    if (number - 3 >= fields.size()) return false;
    const std::optional<double> value = ParseUint(fields[number - 3]);
    if (value) *out = *value;
    return value.has_value();
  };
  ProcStat stat;
  if (!fields.empty() && !fields[0].empty()) stat.state = fields[0][0];
  if (!field(14, &stat.utime_ticks) || !field(15, &stat.stime_ticks) || !field(20, &stat.threads) ||
      !field(22, &stat.start_ticks) || !field(23, &stat.vsize_bytes) ||
      !field(24, &stat.rss_pages)) {
    return std::nullopt;
  }
  return stat;
}

double ClockTicksPerSecond() { return static_cast<double>(sysconf(_SC_CLK_TCK)); }

double Nan() { return std::numeric_limits<double>::quiet_NaN(); }

// Seconds since the epoch at which the machine booted ("btime" in /proc/stat).
std::optional<double> BootTimeSeconds() {
  const std::optional<std::string> content = ReadSmallFile("/proc/stat");
  if (!content) return std::nullopt;
  const size_t line = content->find("\nbtime ");
  if (line == std::string::npos) return std::nullopt;
  const size_t start = line + 7;
  return ParseUint(std::string_view(*content).substr(start, content->find('\n', start) - start));
}

double StartTimeSeconds() {
  const std::optional<double> boot = BootTimeSeconds();
  const std::optional<ProcStat> stat = ReadProcStat();
  if (!boot || !stat) return Nan();
  return *boot + stat->start_ticks / ClockTicksPerSecond();
}

// Like the Go client, counts the directory's own descriptor too.
double OpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return Nan();
  double count = 0;
  while (const dirent* entry = readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;
  }
  closedir(dir);
  return count;
}

double MaxFds() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return Nan();
  if (limit.rlim_cur == RLIM_INFINITY) return std::numeric_limits<double>::infinity();
  return static_cast<double>(limit.rlim_cur);
}

// Reads one /proc/self/stat-derived value, NaN on failure.
template <typename Fn>
std::function<double()> FromStat(Fn fn) {
  return [fn] {
    const std::optional<ProcStat> stat = ReadProcStat();
    return stat ? fn(*stat) : Nan();
  };
}

// VmRSS of a /proc/PID/status file, in bytes.
std::optional<double> StatusRssBytes(const std::string& status) {
  const size_t line = status.find("\nVmRSS:");
  if (line == std::string::npos) return std::nullopt;
  const size_t start = status.find_first_not_of(" \t", line + 7);
  if (start == std::string::npos) return std::nullopt;
  const size_t end = status.find_first_not_of("0123456789", start);
  if (end == std::string::npos || status.compare(end, 3, " kB") != 0) return std::nullopt;
  const std::optional<double> kib = ParseUint(std::string_view(status).substr(start, end - start));
  if (!kib) return std::nullopt;
  return *kib * 1024;
}

}  // namespace

std::optional<ProcessUsage> ReadProcessUsage(int64_t pid) {
  if (pid <= 0) return std::nullopt;
  const std::string dir = "/proc/" + std::to_string(pid);
  const std::optional<ProcStat> stat = ReadProcStat((dir + "/stat").c_str());
  // A zombie has released its memory and will never run again: it is gone.
  if (!stat || stat->state == 'Z') return std::nullopt;
  const std::optional<std::string> status = ReadSmallFile((dir + "/status").c_str());
  if (!status) return std::nullopt;
  const std::optional<double> rss = StatusRssBytes(*status);
  if (!rss) return std::nullopt;
  return ProcessUsage{.cpu_seconds = (stat->utime_ticks + stat->stime_ticks) / ClockTicksPerSecond(),
                      .rss_bytes = *rss};
}

void RegisterProcessMetrics(MetricsRegistry& registry) {
  const double ticks = ClockTicksPerSecond();
  const double page_size = static_cast<double>(sysconf(_SC_PAGESIZE));
  // The start time never changes; read it once.
  const double start_time = StartTimeSeconds();

  registry.AddCallback(
      "process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
      MetricType::kCounter,
      FromStat([ticks](const ProcStat& s) { return (s.utime_ticks + s.stime_ticks) / ticks; }));
  registry.AddCallback(
      "process_resident_memory_bytes", "Resident memory size in bytes.", MetricType::kGauge,
      FromStat([page_size](const ProcStat& s) { return s.rss_pages * page_size; }));
  registry.AddCallback("process_virtual_memory_bytes", "Virtual memory size in bytes.",
                       MetricType::kGauge,
                       FromStat([](const ProcStat& s) { return s.vsize_bytes; }));
  registry.AddCallback("process_threads", "Number of OS threads in the process.",
                       MetricType::kGauge, FromStat([](const ProcStat& s) { return s.threads; }));
  registry.AddCallback("process_open_fds", "Number of open file descriptors.", MetricType::kGauge,
                       OpenFds);
  registry.AddCallback("process_max_fds", "Maximum number of open file descriptors.",
                       MetricType::kGauge, MaxFds);
  registry.AddCallback("process_start_time_seconds",
                       "Start time of the process since unix epoch in seconds.", MetricType::kGauge,
                       [start_time] { return start_time; });
}

}  // namespace triplane::common
