#include "engine/sampling/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "fmt/format.h"

namespace triplane::engine {

absl::Status ValidateSamplingParams(const SamplingParams& p, int64_t vocab_size) {
  auto bad = [](std::string_view name, double value, std::string_view range) {
    return absl::InvalidArgumentError(fmt::format("{} = {} is out of range: {}", name, value, range));
  };
  if (!(p.temperature >= 0 && p.temperature <= 100)) return bad("temperature", p.temperature, "[0, 100]");
  if (p.top_k < 0) return bad("top_k", p.top_k, ">= 0");
  if (!(p.top_p > 0 && p.top_p <= 1)) return bad("top_p", p.top_p, "(0, 1]");
  if (!(p.min_p >= 0 && p.min_p <= 1)) return bad("min_p", p.min_p, "[0, 1]");
  if (!(p.repetition_penalty > 0 && p.repetition_penalty <= 100)) {
    return bad("repetition_penalty", p.repetition_penalty, "(0, 100]");
  }
  if (!(p.presence_penalty >= -2 && p.presence_penalty <= 2)) return bad("presence_penalty", p.presence_penalty, "[-2, 2]");
  if (!(p.frequency_penalty >= -2 && p.frequency_penalty <= 2)) {
    return bad("frequency_penalty", p.frequency_penalty, "[-2, 2]");
  }
  if (p.penalty_window < -1) return bad("penalty_window", p.penalty_window, ">= -1");
  for (const auto& [token, bias] : p.logit_bias) {
    if (token < 0 || token >= vocab_size) {
      return absl::InvalidArgumentError(fmt::format("logit_bias: token id {} is outside the vocabulary [0, {})", token, vocab_size));
    }
    if (!(bias >= -100 && bias <= 100)) return bad("logit_bias value", bias, "[-100, 100]");
  }
  return absl::OkStatus();
}

Sampler::Sampler(SamplingParams params, int64_t vocab_size)
    : params_(std::move(params)), vocab_(vocab_size), rng_(params_.seed), counts_(static_cast<size_t>(vocab_size), 0) {}

int32_t Sampler::Sample(std::span<float> logits, std::span<const int32_t> history) {
  const SamplingParams& p = params_;
  // Penalties over the recent window.
  if (p.repetition_penalty != 1.0f || p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f) {
    size_t window = p.penalty_window < 0 ? history.size()
                                         : std::min(history.size(), static_cast<size_t>(p.penalty_window));
    auto recent = history.subspan(history.size() - window);
    for (int32_t t : recent) {
      if (t >= 0 && t < vocab_) ++counts_[static_cast<size_t>(t)];
    }
    for (int32_t t : recent) {
      if (t < 0 || t >= vocab_) continue;
      int32_t& count = counts_[static_cast<size_t>(t)];
      if (count == 0) continue;  // already applied for this token
      float& logit = logits[static_cast<size_t>(t)];
      if (p.repetition_penalty != 1.0f) {
        logit = logit > 0 ? logit / p.repetition_penalty : logit * p.repetition_penalty;
      }
      logit -= static_cast<float>(count) * p.frequency_penalty + p.presence_penalty;
      count = 0;
    }
  }
  for (const auto& [token, bias] : p.logit_bias) logits[static_cast<size_t>(token)] += bias;

  if (p.temperature == 0.0f) {
    return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  }

  candidates_.clear();
  candidates_.reserve(static_cast<size_t>(vocab_));
  for (int64_t i = 0; i < vocab_; ++i) candidates_.emplace_back(logits[static_cast<size_t>(i)], static_cast<int32_t>(i));
  auto by_logit = [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); };
  size_t keep = candidates_.size();
  if (p.top_k > 0 && static_cast<size_t>(p.top_k) < keep) {
    keep = static_cast<size_t>(p.top_k);
    std::partial_sort(candidates_.begin(), candidates_.begin() + keep, candidates_.end(), by_logit);
  } else {
    std::sort(candidates_.begin(), candidates_.end(), by_logit);
  }
  candidates_.resize(keep);

  // Softmax at temperature 1 for top-p/min-p (as llama.cpp's chain does), then temper.
  const float max_logit = candidates_.front().first;
  std::vector<float> probs(candidates_.size());
  double sum = 0;
  for (size_t i = 0; i < candidates_.size(); ++i) {
    probs[i] = std::exp(candidates_[i].first - max_logit);
    sum += probs[i];
  }
  for (float& prob : probs) prob = static_cast<float>(prob / sum);
  if (p.top_p < 1.0f) {
    double cumulative = 0;
    size_t i = 0;
    for (; i < probs.size(); ++i) {
      cumulative += probs[i];
      if (cumulative >= p.top_p) break;
    }
    candidates_.resize(std::min(probs.size(), i + 1));
  }
  if (p.min_p > 0.0f) {
    const float threshold = p.min_p * probs.front();
    size_t i = 1;
    while (i < candidates_.size() && probs[i] >= threshold) ++i;
    candidates_.resize(i);
  }
  // Temperature, then draw.
  sum = 0;
  probs.resize(candidates_.size());
  for (size_t i = 0; i < candidates_.size(); ++i) {
    probs[i] = std::exp((candidates_[i].first - max_logit) / p.temperature);
    sum += probs[i];
  }
  const double target = std::uniform_real_distribution<double>(0.0, sum)(rng_);
  double cumulative = 0;
  for (size_t i = 0; i < candidates_.size(); ++i) {
    cumulative += probs[i];
    if (target < cumulative) return candidates_[i].second;
  }
  return candidates_.back().second;
}

namespace {

double LogSumExp(std::span<const float> logits) {
  const float max_logit = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (float l : logits) sum += std::exp(static_cast<double>(l) - max_logit);
  return max_logit + std::log(sum);
}

}  // namespace

float TokenLogprob(std::span<const float> logits, int32_t token) {
  return static_cast<float>(logits[static_cast<size_t>(token)] - LogSumExp(logits));
}

std::vector<std::pair<int32_t, float>> TopLogprobs(std::span<const float> logits, int k) {
  std::vector<std::pair<int32_t, float>> out;
  if (k <= 0 || logits.empty()) return out;
  const double lse = LogSumExp(logits);
  std::vector<int32_t> ids(logits.size());
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(i);
  const size_t keep = std::min(ids.size(), static_cast<size_t>(k));
  std::partial_sort(ids.begin(), ids.begin() + keep, ids.end(), [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  });
  for (size_t i = 0; i < keep; ++i) out.emplace_back(ids[i], static_cast<float>(logits[ids[i]] - lse));
  return out;
}

}  // namespace triplane::engine
