#include "common/sse.h"

#include <charconv>

namespace triplane::common {

namespace {

// Appends `field: value` lines, one per line of `value` (SSE fields cannot hold newlines).
void AppendField(std::string& out, std::string_view field, std::string_view value) {
  size_t start = 0;
  while (true) {
    size_t end = value.find_first_of("\r\n", start);
    out.append(field);
    out.append(": ");
    out.append(value.substr(start, end - start));
    out.push_back('\n');
    if (end == std::string_view::npos) break;
    // Treat "\r\n" as one line break.
    start = (value[end] == '\r' && end + 1 < value.size() && value[end + 1] == '\n') ? end + 2
                                                                                     : end + 1;
  }
}

// Field names and single-line values (event, id) must not contain line breaks.
std::string_view FirstLine(std::string_view value) {
  return value.substr(0, value.find_first_of("\r\n"));
}

}  // namespace

std::string FormatSseEvent(const SseEvent& event) {
  std::string out;
  out.reserve(event.data.size() + event.event.size() + 16);
  if (!event.event.empty()) AppendField(out, "event", FirstLine(event.event));
  if (!event.id.empty()) AppendField(out, "id", FirstLine(event.id));
  if (event.retry_ms) AppendField(out, "retry", std::to_string(*event.retry_ms));
  AppendField(out, "data", event.data);
  out.push_back('\n');
  return out;
}

std::string FormatSseData(std::string_view data) { return FormatSseEvent({.data = std::string(data)}); }

std::string FormatSseComment(std::string_view text) {
  std::string out = ": ";
  out.append(FirstLine(text));
  out.append("\n\n");
  return out;
}

absl::Status SseParser::Feed(std::string_view chunk, const EventCallback& on_event) {
  if (failed_) return absl::ResourceExhaustedError("SSE stream exceeded the event size limit");
  if (!bom_checked_ && !chunk.empty()) {
    // A UTF-8 BOM at the very start of the stream is ignored.
    static constexpr std::string_view kBom = "\xEF\xBB\xBF";
    std::string_view head = chunk.substr(0, kBom.size() - line_.size());
    if (kBom.substr(line_.size(), head.size()) == head) {
      line_.append(head);
      chunk.remove_prefix(head.size());
      if (line_.size() < kBom.size()) return absl::OkStatus();  // need more bytes
      line_.clear();
    }
    bom_checked_ = true;
  }
  for (size_t i = 0; i < chunk.size(); ++i) {
    char c = chunk[i];
    if (skip_lf_) {
      skip_lf_ = false;
      if (c == '\n') continue;
    }
    if (c == '\r' || c == '\n') {
      skip_lf_ = c == '\r';
      ProcessLine(line_, on_event);
      line_.clear();
      continue;
    }
    // Copy the run of ordinary bytes at once.
    size_t end = chunk.find_first_of("\r\n", i);
    if (end == std::string_view::npos) end = chunk.size();
    line_.append(chunk.substr(i, end - i));
    i = end - 1;
    if (line_.size() + event_bytes_ > max_event_bytes_) {
      failed_ = true;
      return absl::ResourceExhaustedError("SSE stream exceeded the event size limit");
    }
  }
  return absl::OkStatus();
}

void SseParser::ProcessLine(std::string_view line, const EventCallback& on_event) {
  if (line.empty()) {  // blank line: dispatch
    if (has_data_) {
      if (!event_.data.empty() && event_.data.back() == '\n') event_.data.pop_back();
      on_event(std::move(event_));
    }
    event_ = SseEvent();
    has_data_ = false;
    event_bytes_ = 0;
    return;
  }
  if (line.front() == ':') return;  // comment
  size_t colon = line.find(':');
  std::string_view field = line.substr(0, colon);
  std::string_view value;
  if (colon != std::string_view::npos) {
    value = line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }
  event_bytes_ += line.size();
  if (field == "data") {
    event_.data.append(value);
    event_.data.push_back('\n');
    has_data_ = true;
  } else if (field == "event") {
    event_.event = std::string(value);
  } else if (field == "id") {
    if (value.find('\0') == std::string_view::npos) event_.id = std::string(value);
  } else if (field == "retry") {
    int ms = 0;
    auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), ms);
    if (ec == std::errc() && ptr == value.data() + value.size() && !value.empty() && ms >= 0) {
      event_.retry_ms = ms;
    }
  }
  // Unknown fields are ignored, as the spec requires.
}

}  // namespace triplane::common
