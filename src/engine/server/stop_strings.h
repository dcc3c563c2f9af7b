#pragma once

// Stop strings over streamed text: the API's `stop` parameter. Text is pushed as the
// detokenizer releases it; what comes out never contains a stop string, even one that
// spans several pushes (tokens), and text that might be the beginning of a stop string is
// held back until the next push decides it. On a match, output ends just before the
// stop string (the caller then cancels the generation and finishes with "stop").

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace triplane::engine::server {

// Per-stream state. Thread-compatible.
class StopStringMatcher {
 public:
  // REQUIRES: no stop string is empty. No stop strings: text passes straight through.
  explicit StopStringMatcher(std::vector<std::string> stop_strings);

  struct Output {
    std::string text;      // safe to emit now
    bool stopped = false;  // a stop string matched; `text` ends just before it
  };

  // Adds `text` and returns what can be emitted. The earliest-starting stop string wins
  // (the longest, among those starting at the same byte). Once stopped, further pushes
  // return nothing. Cost: O((held + |text|) × stop strings) plus, for the hold-back,
  // O(Σ|stop|²) in the worst case.
  Output Push(std::string_view text);

  // Ends the stream: returns the held-back text (it is not a stop string, which would
  // have matched). Empty once stopped.
  std::string Flush();

  bool stopped() const { return stopped_; }
  // Bytes currently held back (less than the longest stop string).
  size_t held_bytes() const { return held_.size(); }
  // The stop string that matched ("" unless stopped()).
  const std::string& matched() const { return matched_; }

 private:
  // Length of the longest suffix of held_ that is a proper prefix of a stop string.
  size_t PartialMatchLength() const;

  std::vector<std::string> stop_strings_;
  std::string held_;
  std::string matched_;
  bool stopped_ = false;
};

}  // namespace triplane::engine::server
