#include "engine/server/stop_strings.h"

#include <algorithm>
#include <utility>

namespace triplane::engine::server {

StopStringMatcher::StopStringMatcher(std::vector<std::string> stop_strings)
    : stop_strings_(std::move(stop_strings)) {}

StopStringMatcher::Output StopStringMatcher::Push(std::string_view text) {
  Output out;
  if (stopped_) {
    out.stopped = true;
    return out;
  }
  if (stop_strings_.empty()) {
    out.text = std::string(text);
    return out;
  }
  held_.append(text);
  // held_ was no stop string before this push, so any match ends in the new text; it may
  // start in the held part.
  size_t best = std::string::npos;
  const std::string* best_stop = nullptr;
  for (const std::string& stop : stop_strings_) {
    const size_t at = std::string_view(held_).find(stop);
    if (at == std::string::npos) continue;
    if (at < best || (at == best && stop.size() > best_stop->size())) {
      best = at;
      best_stop = &stop;
    }
  }
  if (best_stop != nullptr) {
    out.text = held_.substr(0, best);
    out.stopped = true;
    stopped_ = true;
    matched_ = *best_stop;
    held_.clear();
    return out;
  }
  const size_t keep = PartialMatchLength();
  out.text = held_.substr(0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
  return out;
}

std::string StopStringMatcher::Flush() {
  if (stopped_) return {};
  return std::exchange(held_, {});
}

size_t StopStringMatcher::PartialMatchLength() const {
  const std::string_view held = held_;
  size_t longest = 0;
  for (const std::string& stop : stop_strings_) {
    // Candidates from the longest down; the first hit is this stop string's best.
    const size_t max_len = std::min(held.size(), stop.size() - 1);
    for (size_t len = max_len; len > longest; --len) {
      if (held.substr(held.size() - len) == std::string_view(stop).substr(0, len)) {
        longest = len;
        break;
      }
    }
  }
  return longest;
}

}  // namespace triplane::engine::server
