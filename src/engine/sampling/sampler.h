#pragma once

// Picks the next token from logits: repetition, presence and frequency penalties and
// logit bias, then top-k, top-p, min-p, temperature, and a seeded draw — the order of
// llama.cpp's default chain. Temperature 0 is greedy (argmax, after penalties and bias).

#include <cstdint>
#include <random>
#include <span>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace triplane::engine {

struct SamplingParams {
  float temperature = 1.0f;   // 0 = greedy
  int top_k = 0;              // 0 = off
  float top_p = 1.0f;         // 1 = off
  float min_p = 0.0f;         // 0 = off
  float repetition_penalty = 1.0f;  // 1 = off; divides positive logits, multiplies negative
  float presence_penalty = 0.0f;    // subtracted once per token present in the window
  float frequency_penalty = 0.0f;   // subtracted per occurrence in the window
  int penalty_window = 64;          // last N tokens the penalties look at; -1 = all
  uint64_t seed = 0;
  std::vector<std::pair<int32_t, float>> logit_bias;  // added to the logits, by token id
};

// InvalidArgument naming the first parameter out of range (e.g. top_p outside (0, 1]).
[[nodiscard]] absl::Status ValidateSamplingParams(const SamplingParams& params, int64_t vocab_size);

class Sampler {
 public:
  // REQUIRES: ValidateSamplingParams(params, vocab).ok().
  Sampler(SamplingParams params, int64_t vocab_size);

  // Returns the chosen token. `logits` ([vocab]) is modified in place (scratch);
  // `history` is every token of the sequence so far, prompt included.
  int32_t Sample(std::span<float> logits, std::span<const int32_t> history);

 private:
  SamplingParams params_;
  int64_t vocab_;
  std::mt19937_64 rng_;
  std::vector<std::pair<float, int32_t>> candidates_;
  std::vector<float> weights_, kept_logits_;
  std::vector<double> bucket_mass_;                  // top-p's histogram
  std::vector<std::pair<float, int32_t>> edge_;      // the tokens of the bucket top-p cuts
  std::vector<int32_t> counts_;
};

// The `k` most likely tokens under softmax(logits) with their natural-log probabilities,
// most likely first (for `logprobs`/`top_logprobs`). Cost: O(vocab + k log k).
std::vector<std::pair<int32_t, float>> TopLogprobs(std::span<const float> logits, int k);

// log softmax(logits)[token].
float TokenLogprob(std::span<const float> logits, int32_t token);

}  // namespace triplane::engine
