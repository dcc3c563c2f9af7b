#pragma once

// Process-wide logging on spdlog, in one of two formats:
//
//   text (terminals):  2026-12-04 19:48:23.123 I [req-id] message
//   json (collectors): {"ts":"2026-12-04T19:48:23.123Z","level":"info","msg":"...",
//                       "request_id":"..."}
//
// InitLogging() installs the spdlog default logger, so plain `spdlog::info(...)` calls
// anywhere come out in the chosen format. RequestLog tags every line it writes with its
// request id. Every JSON line is a complete object that any JSON parser accepts: control
// characters are escaped and invalid UTF-8 is replaced by U+FFFD.

#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "spdlog/spdlog.h"

namespace triplane::common {

enum class LogFormat { kText, kJson };

struct LogOptions {
  std::string level = "info";  // trace|debug|info|warn|error|critical|off
  LogFormat format = LogFormat::kText;
  std::string file;  // appended to (created, but not its directory); empty: stderr
};

// Parses "text" or "json"; anything else is InvalidArgument.
[[nodiscard]] absl::StatusOr<LogFormat> ParseLogFormat(std::string_view name);

// The name ParseLogFormat() accepts for `format`.
std::string_view LogFormatName(LogFormat format);

// Replaces the spdlog default logger with one writing `options.format` to
// `options.file` (or stderr; coloured when stderr is a terminal and the format is text).
// Every line is flushed as it is written. Fails with InvalidArgument and a one-line
// message on an unknown level or a file that cannot be opened; the previous logger
// stays in place then.
// Not thread-safe against concurrent logging: call at start-up (and from tests).
[[nodiscard]] absl::Status InitLogging(const LogOptions& options);

// Returns a new request id: 26 characters of Crockford base32 (48 bits of milliseconds
// since the epoch, then 80 random bits), so ids sort roughly by time and never collide
// in practice. Thread-safe; no system call per id (a per-thread generator is seeded
// once from std::random_device).
std::string NewRequestId();

// True when `id` may be adopted from an incoming `x-request-id` header:
// 1 to 128 characters, each one of [A-Za-z0-9._:-].
bool IsValidRequestId(std::string_view id);

namespace internal {

// Makes `request_id` the current thread's request id for the scope's lifetime, then
// restores the previous one. The log formatters read it; nothing else should.
// Keep the scope short (one spdlog call): coroutines move between threads.
class ScopedRequestId {
 public:
  explicit ScopedRequestId(const std::string& request_id);
  ~ScopedRequestId();
  ScopedRequestId(const ScopedRequestId&) = delete;
  ScopedRequestId& operator=(const ScopedRequestId&) = delete;

 private:
  const std::string* previous_;
};

// The current thread's request id, or null outside a ScopedRequestId.
const std::string* CurrentRequestId();

}  // namespace internal

// Writes log lines tagged with one request id through the spdlog default logger.
// Cheap to copy (one shared, immutable string); all methods are const and thread-safe.
// Disabled levels cost one comparison and no formatting.
class RequestLog {
 public:
  explicit RequestLog(std::string request_id)
      : request_id_(std::make_shared<const std::string>(std::move(request_id))) {}

  const std::string& request_id() const { return *request_id_; }

  template <typename... Args>
  void Debug(fmt::format_string<Args...> format, Args&&... args) const {
    Log(spdlog::level::debug, format, std::forward<Args>(args)...);
  }
  template <typename... Args>
  void Info(fmt::format_string<Args...> format, Args&&... args) const {
    Log(spdlog::level::info, format, std::forward<Args>(args)...);
  }
  template <typename... Args>
  void Warn(fmt::format_string<Args...> format, Args&&... args) const {
    Log(spdlog::level::warn, format, std::forward<Args>(args)...);
  }
  template <typename... Args>
  void Error(fmt::format_string<Args...> format, Args&&... args) const {
    Log(spdlog::level::err, format, std::forward<Args>(args)...);
  }

 private:
  template <typename... Args>
  void Log(spdlog::level::level_enum level, fmt::format_string<Args...> format,
           Args&&... args) const {
    spdlog::logger* logger = spdlog::default_logger_raw();
    if (!logger->should_log(level)) return;
    // Sinks format synchronously on this thread, so the formatter sees the id.
    internal::ScopedRequestId scope(*request_id_);
    logger->log(level, format, std::forward<Args>(args)...);
  }

  std::shared_ptr<const std::string> request_id_;
};

}  // namespace triplane::common
