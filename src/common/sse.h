#pragma once

// Server-Sent Events (text/event-stream): formatting for writers and an incremental
// parser for readers, following the WHATWG HTML "event stream" interpretation rules.

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace triplane::common {

struct SseEvent {
  std::string event;  // "" means the default type, "message"
  std::string data;   // may hold newlines: each line becomes one `data:` field
  std::string id;
  std::optional<int> retry_ms;
};

// Wire form of `event`, ending with the blank line that dispatches it.
std::string FormatSseEvent(const SseEvent& event);
// Convenience for the common case: "data: <data>\n\n".
std::string FormatSseData(std::string_view data);
// A comment line (": text\n\n"), e.g. a keep-alive ping that clients ignore.
std::string FormatSseComment(std::string_view text);

// Incremental parser: feed arbitrary byte chunks, receive whole events.
// Thread-compatible. Memory is bounded by `max_event_bytes`.
class SseParser {
 public:
  using EventCallback = std::function<void(SseEvent&&)>;

  explicit SseParser(size_t max_event_bytes = 16 << 20) : max_event_bytes_(max_event_bytes) {}

  // Parses `chunk`, calling `on_event` for each completed event. Returns
  // ResourceExhausted once a single line or event exceeds the bound; the parser then
  // stays failed.
  absl::Status Feed(std::string_view chunk, const EventCallback& on_event);

  // Called at end of stream; per the spec an unterminated trailing event is dropped.
  // Returns true when no partial event was pending.
  bool Finish() const { return line_.empty() && !has_data_ && event_.event.empty(); }

 private:
  void ProcessLine(std::string_view line, const EventCallback& on_event);

  size_t max_event_bytes_;
  std::string line_;       // bytes of the current, not yet terminated line
  bool skip_lf_ = false;   // previous chunk ended with '\r'
  bool bom_checked_ = false;
  bool failed_ = false;
  bool has_data_ = false;
  SseEvent event_;         // fields of the event being assembled
  size_t event_bytes_ = 0;
};

}  // namespace triplane::common
