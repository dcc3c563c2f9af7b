// Fuzzes common::SseParser: any byte stream, fed whole or cut into arbitrary chunks, must
// yield the same events (and the same failure, once an event outgrows the bound) with no
// crash or sanitizer report. Every event parsed, and one built from the input's bytes,
// must survive FormatSseEvent → SseParser unchanged but for what the wire cannot carry.
// Input: a header byte k (0..7), k chunk lengths, a byte choosing the event bound, then
// the stream.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/sse.h"
#include "fuzz_check.h"

namespace triplane::common {
namespace {

constexpr size_t kMaxInput = 64 << 10;

using fuzz::Fail;

struct Outcome {
  std::vector<SseEvent> events;
  bool failed = false;
  bool finished = false;
};

bool SameEvent(const SseEvent& a, const SseEvent& b) {
  return a.event == b.event && a.data == b.data && a.id == b.id && a.retry_ms == b.retry_ms;
}

bool SameOutcome(const Outcome& a, const Outcome& b) {
  if (a.failed != b.failed || a.events.size() != b.events.size()) return false;
  // A failed parser's pending state is unspecified; a healthy one's must agree.
  if (!a.failed && a.finished != b.finished) return false;
  for (size_t i = 0; i < a.events.size(); ++i) {
    if (!SameEvent(a.events[i], b.events[i])) return false;
  }
  return true;
}

// Feeds `stream` in chunks of the given lengths, cycling; a zero length feeds an empty
// chunk and then one byte, so that the stream always advances.
Outcome Parse(std::string_view stream, std::span<const uint8_t> lengths, size_t bound) {
  SseParser parser(bound);
  Outcome out;
  auto collect = [&](SseEvent&& event) { out.events.push_back(std::move(event)); };
  size_t turn = 0;
  while (!stream.empty()) {
    size_t n = lengths.empty() ? stream.size() : lengths[turn++ % lengths.size()];
    if (n == 0) {
      if (!parser.Feed("", collect).ok()) Fail("an empty chunk failed a healthy parser");
      n = 1;
    }
    n = std::min(n, stream.size());
    if (!parser.Feed(stream.substr(0, n), collect).ok()) {
      out.failed = true;
      if (parser.Feed("x", collect).ok()) Fail("a failed parser accepted more input");
      return out;
    }
    stream.remove_prefix(n);
  }
  out.finished = parser.Finish();
  return out;
}

// What the wire keeps of a line-based field: "\r\n", "\r" and "\n" all end a line.
std::string NormalizeBreaks(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\r') {
      out.push_back('\n');
      if (i + 1 < text.size() && text[i + 1] == '\n') ++i;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

std::string_view FirstLine(std::string_view text) {
  return text.substr(0, text.find_first_of("\r\n"));
}

void CheckRoundTrip(const SseEvent& event) {
  const std::string wire = FormatSseEvent(event);
  Outcome parsed = Parse(wire, {}, wire.size() + 64);
  if (parsed.failed || !parsed.finished || parsed.events.size() != 1) {
    Fail("a formatted event does not parse back as one event");
  }
  SseEvent expected{.event = std::string(FirstLine(event.event)),
                    .data = NormalizeBreaks(event.data),
                    .id = std::string(FirstLine(event.id))};
  // The parser ignores ids holding NUL and negative retry values, as the spec says.
  if (expected.id.find('\0') != std::string::npos) expected.id.clear();
  if (event.retry_ms && *event.retry_ms >= 0) expected.retry_ms = event.retry_ms;
  if (!SameEvent(parsed.events[0], expected)) Fail("an event changed on the way through the wire");

  const std::string comment = FormatSseComment(event.data);
  Outcome ignored = Parse(comment + wire, {}, comment.size() + wire.size() + 64);
  if (ignored.events.size() != 1 || !SameEvent(ignored.events[0], expected)) {
    Fail("a comment before an event changed it");
  }
}

}  // namespace
}  // namespace triplane::common

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace triplane::common;
  if (size < 2 || size > kMaxInput) return 0;
  const size_t k = data[0] % 8;
  if (size < 2 + k) return 0;
  const std::span<const uint8_t> lengths(data + 1, k);
  // Mostly the default bound; sometimes a small one, to reach the failure paths.
  const uint8_t bound_byte = data[1 + k];
  const size_t bound = bound_byte < 0xC0 ? size_t{16} << 20 : bound_byte - 0xBF;
  const std::string_view stream(reinterpret_cast<const char*>(data) + 2 + k, size - 2 - k);

  const Outcome whole = Parse(stream, {}, bound);
  const Outcome split = Parse(stream, lengths, bound);
  if (!SameOutcome(whole, split)) Fail("split feeding changed the events");
  const uint8_t one_byte[] = {1};
  if (!SameOutcome(whole, Parse(stream, one_byte, bound))) Fail("byte-wise feeding changed the events");

  for (const SseEvent& event : whole.events) CheckRoundTrip(event);
  // An event built from raw bytes: any event name, id and data, any retry.
  const size_t third = stream.size() / 3;
  SseEvent raw{.event = std::string(stream.substr(0, third)),
               .data = std::string(stream.substr(2 * third)),
               .id = std::string(stream.substr(third, third))};
  if (bound_byte & 1) raw.retry_ms = static_cast<int>(static_cast<int8_t>(bound_byte)) * 1000;
  CheckRoundTrip(raw);
  return 0;
}
