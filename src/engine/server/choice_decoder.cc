#include "engine/server/choice_decoder.h"

#include <algorithm>

namespace triplane::engine::server {

std::string_view FinishReasonName(ChoiceFinish finish) {
  switch (finish) {
    case ChoiceFinish::kStop:
      return "stop";
    case ChoiceFinish::kLength:
      return "length";
    case ChoiceFinish::kCancelled:
      return "abort";
    case ChoiceFinish::kError:
      return "error";
    case ChoiceFinish::kNone:
      break;
  }
  return "";
}

ChoiceDecoder::ChoiceDecoder(const Tokenizer& tokenizer, ChoiceDecoderOptions options)
    : tokenizer_(&tokenizer),
      options_(std::move(options)),
      detokenizer_(tokenizer),
      matcher_(options_.stop) {}

bool ChoiceDecoder::IsStopToken(int32_t token) const {
  if (!options_.ignore_eos && tokenizer_->IsEog(token)) return true;
  return std::find(options_.stop_token_ids.begin(), options_.stop_token_ids.end(), token) !=
         options_.stop_token_ids.end();
}

ChoiceDelta ChoiceDecoder::Consume(const TokenEvent& event) {
  ChoiceDelta delta;
  if (finished()) return delta;
  auto feed = [&](std::string_view text) {
    if (stop_string_matched_ || text.empty()) return;
    StopStringMatcher::Output out = matcher_.Push(text);
    emitted_bytes_ += out.text.size();
    delta.text += out.text;
    if (out.stopped) {
      stop_string_matched_ = true;
      delta.stop_string_matched = true;
    }
  };
  if (event.token >= 0 && !stop_string_matched_) {
    ++completion_tokens_;
    if (!IsStopToken(event.token)) {
      const std::string piece = detokenizer_.Push(event.token);
      if (options_.logprobs) {
        pending_.push_back({.token = event.token,
                            .logprob = event.logprob,
                            .top = event.top,
                            .text_offset = decoded_bytes_});
        pending_ends_.push_back(decoded_bytes_ + piece.size());
      }
      decoded_bytes_ += piece.size();
      feed(piece);
    }
  }
  if (event.finish == FinishReason::kNone) {
    ReleaseLogprobs(emitted_bytes_, /*final=*/false, delta.logprobs);
    return delta;
  }
  // The end: what the detokenizer and the matcher still hold is text (unless a stop
  // string matched, or matches in it now).
  const std::string tail = detokenizer_.Flush();
  decoded_bytes_ += tail.size();
  feed(tail);
  if (!stop_string_matched_) {
    const std::string held = matcher_.Flush();
    emitted_bytes_ += held.size();
    delta.text += held;
  }
  switch (event.finish) {
    case FinishReason::kStop:
      finish_ = ChoiceFinish::kStop;
      break;
    case FinishReason::kLength:
      finish_ = ChoiceFinish::kLength;
      break;
    case FinishReason::kError:
      finish_ = ChoiceFinish::kError;
      error_ = event.error.ok() ? absl::InternalError("the engine failed") : event.error;
      break;
    case FinishReason::kCancelled:
    case FinishReason::kNone:
      finish_ = ChoiceFinish::kCancelled;
      break;
  }
  if (stop_string_matched_ && finish_ != ChoiceFinish::kError) finish_ = ChoiceFinish::kStop;
  delta.finish = finish_;
  prompt_tokens_ = event.prompt_tokens;
  cached_prompt_tokens_ = event.cached_prompt_tokens;
  ReleaseLogprobs(emitted_bytes_, /*final=*/true, delta.logprobs);
  return delta;
}

void ChoiceDecoder::ReleaseLogprobs(size_t limit, bool final, std::vector<TokenLogprob>& out) {
  size_t released = 0;
  while (released < pending_.size()) {
    const bool text_out = pending_ends_[released] <= limit;
    // At the end every token counts, except those wholly inside or after a stop string.
    const bool keep_at_end = !stop_string_matched_ || pending_[released].text_offset < limit;
    if (!(text_out || (final && keep_at_end))) break;
    out.push_back(std::move(pending_[released]));
    ++released;
  }
  pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(released));
  pending_ends_.erase(pending_ends_.begin(),
                      pending_ends_.begin() + static_cast<std::ptrdiff_t>(released));
  if (final) {
    pending_.clear();
    pending_ends_.clear();
  }
}

}  // namespace triplane::engine::server
