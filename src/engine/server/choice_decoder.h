#pragma once

// Turns one choice's engine events (token ids) into API output: text through the
// incremental detokenizer (never a broken UTF-8 character) and the stop-string matcher
// (never a stop string), the logprobs of the tokens whose text is out, and the finish
// reason. End-of-generation and stop tokens produce no text and no logprobs entry.

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "engine/runtime/engine.h"
#include "engine/server/stop_strings.h"
#include "engine/tokenizer/incremental_detokenizer.h"
#include "engine/tokenizer/tokenizer.h"

namespace triplane::engine::server {

// How a choice ended, in API terms.
enum class ChoiceFinish {
  kNone,       // still generating
  kStop,       // end-of-generation token, stop token or stop string: "stop"
  kLength,     // max_tokens or the context: "length"
  kCancelled,  // cancelled by someone else than the stop-string matcher (client, shutdown)
  kError,      // the engine failed; see ChoiceDecoder::error()
};

// "stop", "length", or "abort"/"error" for the others (never sent for kNone).
std::string_view FinishReasonName(ChoiceFinish finish);

// One generated token's logprobs, as the engine reported them.
struct TokenLogprob {
  int32_t token = -1;
  float logprob = 0.0f;
  std::vector<std::pair<int32_t, float>> top;  // k best, most likely first
  size_t text_offset = 0;                      // where its text starts in the choice's text
};

struct ChoiceDecoderOptions {
  std::vector<std::string> stop;        // stop strings (non-empty)
  std::vector<int32_t> stop_token_ids;  // extra tokens that end the choice
  bool ignore_eos = false;              // end-of-generation tokens are ordinary text
  bool logprobs = false;                // collect TokenLogprob entries
};

// What one Consume() released.
struct ChoiceDelta {
  std::string text;
  std::vector<TokenLogprob> logprobs;
  // A stop string matched on this event: the caller cancels the engine request (its
  // final event will say kCancelled, which this decoder reports as kStop).
  bool stop_string_matched = false;
  ChoiceFinish finish = ChoiceFinish::kNone;  // set on the final event
};

// Per-choice state. Thread-compatible. Borrows `tokenizer`, which must outlive it.
class ChoiceDecoder {
 public:
  ChoiceDecoder(const Tokenizer& tokenizer, ChoiceDecoderOptions options);

  // Feeds one engine event; events after the final one are ignored. Cost: detokenizing
  // one token plus the stop-string search (see StopStringMatcher::Push).
  ChoiceDelta Consume(const TokenEvent& event);

  ChoiceFinish finish() const { return finish_; }
  bool finished() const { return finish_ != ChoiceFinish::kNone; }
  // Tokens generated up to the end of the choice (up to and including the token that
  // completed a stop string, or the end-of-generation token).
  int64_t completion_tokens() const { return completion_tokens_; }
  // From the final event (0 before it).
  int64_t prompt_tokens() const { return prompt_tokens_; }
  int64_t cached_prompt_tokens() const { return cached_prompt_tokens_; }
  const absl::Status& error() const { return error_; }
  // Bytes of text released so far.
  size_t text_bytes() const { return emitted_bytes_; }

 private:
  bool IsStopToken(int32_t token) const;
  // Moves entries of pending_ whose text is fully out (or, at the end, all that started
  // before `limit`) into `out`.
  void ReleaseLogprobs(size_t limit, bool final, std::vector<TokenLogprob>& out);

  const Tokenizer* tokenizer_;
  ChoiceDecoderOptions options_;
  IncrementalDetokenizer detokenizer_;
  StopStringMatcher matcher_;
  std::vector<TokenLogprob> pending_;  // logprobs whose text is not fully out yet
  std::vector<size_t> pending_ends_;   // end offset of each pending entry's text
  size_t decoded_bytes_ = 0;           // text produced by the detokenizer so far
  size_t emitted_bytes_ = 0;           // text released through the matcher
  bool stop_string_matched_ = false;
  ChoiceFinish finish_ = ChoiceFinish::kNone;
  int64_t completion_tokens_ = 0;
  int64_t prompt_tokens_ = 0;
  int64_t cached_prompt_tokens_ = 0;
  absl::Status error_;
};

}  // namespace triplane::engine::server
