#include "common/logging.h"

#include <array>
#include <chrono>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "spdlog/pattern_formatter.h"
#include "spdlog/sinks/basic_file_sink.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/sinks/stdout_sinks.h"

namespace triplane::common {
namespace {

thread_local const std::string* current_request_id = nullptr;

constexpr char kLoggerName[] = "triplane";

// Custom pattern flags; spdlog consults custom flags before its own letters.
constexpr char kTextRequestIdFlag = 'q';  // "[id] " or nothing
constexpr char kJsonLevelFlag = 'W';      // info, warn, ... (unquoted)
constexpr char kJsonMessageFlag = 'J';    // the message as a JSON string literal
constexpr char kJsonRequestIdFlag = 'Q';  // ,"request_id":"..." or nothing

constexpr char kTextPattern[] = "%Y-%m-%d %H:%M:%S.%e %^%L%$ %q%v";
constexpr char kJsonPattern[] = R"({"ts":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%W","msg":%J%Q})";

void Append(std::string_view text, spdlog::memory_buf_t& dest) {
  dest.append(text.data(), text.data() + text.size());
}

// Appends `text` as a JSON string literal. nlohmann escapes control characters and,
// with the `replace` handler, turns invalid UTF-8 into U+FFFD, so the line always parses.
void AppendJsonString(std::string_view text, spdlog::memory_buf_t& dest) {
  const std::string quoted =
      nlohmann::json(std::string(text))
          .dump(-1, ' ', /*ensure_ascii=*/false, nlohmann::json::error_handler_t::replace);
  Append(quoted, dest);
}

class TextRequestIdFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg&, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    const std::string* id = current_request_id;
    if (id == nullptr) return;
    dest.push_back('[');
    Append(*id, dest);
    Append("] ", dest);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<TextRequestIdFlag>();
  }
};

class JsonLevelFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    Append(JsonLevelName(msg.level), dest);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonLevelFlag>();
  }

 private:
  static std::string_view JsonLevelName(spdlog::level::level_enum level) {
    switch (level) {
      case spdlog::level::trace:
        return "trace";
      case spdlog::level::debug:
        return "debug";
      case spdlog::level::info:
        return "info";
      case spdlog::level::warn:
        return "warn";
      case spdlog::level::err:
        return "error";
      case spdlog::level::critical:
        return "critical";
      default:
        return "off";
    }
  }
};

class JsonMessageFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    AppendJsonString(std::string_view(msg.payload.data(), msg.payload.size()), dest);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonMessageFlag>();
  }
};

class JsonRequestIdFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg&, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    const std::string* id = current_request_id;
    if (id == nullptr) return;
    Append(R"(,"request_id":)", dest);
    AppendJsonString(*id, dest);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonRequestIdFlag>();
  }
};

std::unique_ptr<spdlog::formatter> MakeFormatter(LogFormat format) {
  if (format == LogFormat::kJson) {
    auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
    formatter->add_flag<JsonLevelFlag>(kJsonLevelFlag)
        .add_flag<JsonMessageFlag>(kJsonMessageFlag)
        .add_flag<JsonRequestIdFlag>(kJsonRequestIdFlag)
        .set_pattern(kJsonPattern);
    return formatter;
  }
  auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::local);
  formatter->add_flag<TextRequestIdFlag>(kTextRequestIdFlag).set_pattern(kTextPattern);
  return formatter;
}

absl::StatusOr<spdlog::level::level_enum> ParseLevel(std::string_view name) {
  static constexpr std::array<std::pair<std::string_view, spdlog::level::level_enum>, 8> kLevels{{
      {"trace", spdlog::level::trace},
      {"debug", spdlog::level::debug},
      {"info", spdlog::level::info},
      {"warn", spdlog::level::warn},
      {"warning", spdlog::level::warn},
      {"error", spdlog::level::err},
      {"critical", spdlog::level::critical},
      {"off", spdlog::level::off},
  }};
  for (const auto& [level_name, level] : kLevels) {
    if (name == level_name) return level;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown log level '", std::string(name),
                   "' (expected trace, debug, info, warn, error, critical or off)"));
}

// Per-thread generator for request ids, seeded once from the OS.
std::mt19937_64& IdGenerator() {
  thread_local std::mt19937_64 generator = [] {
    std::random_device device;
    std::seed_seq seed{device(), device(), device(), device(),
                       device(), device(), device(), device()};
    return std::mt19937_64(seed);
  }();
  return generator;
}

}  // namespace

namespace internal {

ScopedRequestId::ScopedRequestId(const std::string& request_id) : previous_(current_request_id) {
  current_request_id = &request_id;
}

ScopedRequestId::~ScopedRequestId() { current_request_id = previous_; }

const std::string* CurrentRequestId() { return current_request_id; }

}  // namespace internal

absl::StatusOr<LogFormat> ParseLogFormat(std::string_view name) {
  if (name == "text") return LogFormat::kText;
  if (name == "json") return LogFormat::kJson;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown log format '", std::string(name), "' (expected text or json)"));
}

std::string_view LogFormatName(LogFormat format) {
  return format == LogFormat::kJson ? "json" : "text";
}

absl::Status InitLogging(const LogOptions& options) {
  absl::StatusOr<spdlog::level::level_enum> level = ParseLevel(options.level);
  if (!level.ok()) return level.status();

  spdlog::sink_ptr sink;
  if (!options.file.empty()) {
    // spdlog would create missing directories; a mistyped path should fail instead.
    const std::filesystem::path parent = std::filesystem::path(options.file).parent_path();
    std::error_code error;
    if (!parent.empty() && !std::filesystem::is_directory(parent, error)) {
      return absl::InvalidArgumentError(absl::StrCat("cannot open log file '", options.file,
                                                     "': directory ", parent.string(),
                                                     " does not exist"));
    }
    try {
      sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(options.file, /*truncate=*/false);
    } catch (const std::exception& e) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot open log file '", options.file, "': ", e.what()));
    }
  } else if (options.format == LogFormat::kText) {
    sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>(spdlog::color_mode::automatic);
  } else {
    sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  }
  sink->set_formatter(MakeFormatter(options.format));

  auto logger = std::make_shared<spdlog::logger>(kLoggerName, std::move(sink));
  logger->set_level(*level);
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(std::move(logger));
  return absl::OkStatus();
}

std::string NewRequestId() {
  // Crockford's base32: no I, L, O or U, so ids read aloud without ambiguity.
  static constexpr char kAlphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
  const uint64_t millis =
      static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count());
  std::mt19937_64& generator = IdGenerator();
  const uint64_t random_high = generator() & 0xFFFF;  // 16 bits
  const uint64_t random_low = generator();            // 64 bits

  // 10 characters of time (50 bits, of which 48 are used), then 16 of randomness.
  std::string id(26, '0');
  uint64_t time_bits = millis & 0xFFFFFFFFFFFF;
  for (int i = 9; i >= 0; --i, time_bits >>= 5)
    id[static_cast<size_t>(i)] = kAlphabet[time_bits & 0x1F];
  uint64_t low = random_low;
  uint64_t high = random_high;
  for (int i = 25; i >= 10; --i) {
    id[static_cast<size_t>(i)] = kAlphabet[low & 0x1F];
    low = (low >> 5) | ((high & 0x1F) << 59);  // shift the 80-bit value right by 5
    high >>= 5;
  }
  return id;
}

bool IsValidRequestId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace triplane::common
