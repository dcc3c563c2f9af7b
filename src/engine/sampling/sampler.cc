#include "engine/sampling/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "engine/kernels/cpu/matmul.h"
#include "fmt/format.h"

namespace triplane::engine {

namespace {
// The first position of the largest logit (a vectorized pass, not a branch per token).
int32_t Greatest(std::span<const float> logits) {
  return static_cast<int32_t>(cpu::ArgMax(logits.data(), static_cast<int64_t>(logits.size())));
}
}  // namespace

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
    return Greatest(logits);
  }

  // Sorting a whole vocabulary costs milliseconds per token, so it never is: top-k
  // selects its k, and top-p finds its cut through a histogram of the logits, sorting
  // only the tokens of the one bucket the cut falls in. With no filter nothing is sorted.
  // The kept set is what sorting would keep: the shortest run of the most likely tokens
  // (ties by id) holding top_p of the probability at temperature 1 over the candidates
  // (all tokens unless top-k, as llama.cpp's chain does), without those below min_p times
  // the largest probability; the draw then tempers the kept logits.
  auto by_logit = [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); };
  const auto vocab = static_cast<size_t>(vocab_);
  candidates_.clear();
  const int32_t top = Greatest(logits);
  const float max_logit = logits[static_cast<size_t>(top)];
  if (p.top_k > 0 && static_cast<size_t>(p.top_k) < vocab) {
    for (size_t i = 0; i < vocab; ++i) candidates_.emplace_back(logits[i], static_cast<int32_t>(i));
    const auto k = static_cast<std::ptrdiff_t>(p.top_k);
    std::nth_element(candidates_.begin(), candidates_.begin() + k - 1, candidates_.end(), by_logit);
    candidates_.resize(static_cast<size_t>(k));
    std::sort(candidates_.begin(), candidates_.end(), by_logit);
    if (p.top_p < 1.0f || p.min_p > 0.0f) {
      double sum = 0;
      for (const auto& c : candidates_) sum += std::exp(c.first - max_logit);
      const float threshold = p.min_p * static_cast<float>(1.0 / sum);
      double cumulative = 0;
      size_t keep = 0;
      for (; keep < candidates_.size(); ++keep) {
        const float prob = static_cast<float>(std::exp(candidates_[keep].first - max_logit) / sum);
        if (keep > 0 && prob < threshold) break;  // min-p: this one and all after it go
        cumulative += prob;
        if (p.top_p < 1.0f && cumulative >= p.top_p) {
          ++keep;  // top-p: the one that reaches the mass stays
          break;
        }
      }
      candidates_.resize(std::max<size_t>(1, keep));
    }
  } else if (p.top_p < 1.0f || p.min_p > 0.0f) {
    weights_.resize(vocab);
    const double total = cpu::ExpScaled(logits.data(), vocab_, max_logit, 1.0f, weights_.data());
    const auto inv_total = static_cast<float>(1.0 / total);
    auto prob = [&](size_t i) { return weights_[i] * inv_total; };
    const float threshold = p.min_p * inv_total;
    // Buckets of equal logit width from the largest logit down: bucket(i) never increases
    // with the logit, so buckets before the cut's are kept whole.
    constexpr int kBuckets = 1024;
    float min_logit = max_logit;
    for (float l : logits) min_logit = std::isfinite(l) ? std::min(min_logit, l) : min_logit;
    const float per_logit = max_logit > min_logit ? kBuckets / (max_logit - min_logit) : 0.0f;
    auto bucket = [&](size_t i) {
      const float b = (max_logit - logits[i]) * per_logit;
      return b < static_cast<float>(kBuckets - 1) ? static_cast<int>(b) : kBuckets - 1;  // NaN: last
    };
    bucket_mass_.assign(kBuckets, 0.0);
    for (size_t i = 0; i < vocab; ++i) bucket_mass_[static_cast<size_t>(bucket(i))] += prob(i);
    int cut = kBuckets;  // the bucket where the cumulative probability reaches top_p
    double before = 0;   // probability of the buckets before it
    if (p.top_p < 1.0f) {
      for (int b = 0; b < kBuckets; ++b) {
        if (before + bucket_mass_[static_cast<size_t>(b)] >= p.top_p) {
          cut = b;
          break;
        }
        before += bucket_mass_[static_cast<size_t>(b)];
      }
    }
    edge_.clear();
    for (size_t i = 0; i < vocab; ++i) {
      const int b = bucket(i);
      if (b > cut || (p.min_p > 0.0f && prob(i) < threshold && logits[i] != max_logit)) continue;
      (b < cut ? candidates_ : edge_).emplace_back(logits[i], static_cast<int32_t>(i));
    }
    std::sort(edge_.begin(), edge_.end(), by_logit);
    double cumulative = before;
    for (const auto& c : edge_) {
      candidates_.push_back(c);
      cumulative += prob(static_cast<size_t>(c.second));
      if (cumulative >= p.top_p) break;
    }
    if (candidates_.empty()) candidates_.emplace_back(max_logit, top);
  }

  // Temperature, then draw: over the candidates in order, or over the whole vocabulary
  // by id when nothing narrowed it.
  const bool narrowed = !candidates_.empty();
  if (narrowed) {
    kept_logits_.resize(candidates_.size());
    for (size_t i = 0; i < candidates_.size(); ++i) kept_logits_[i] = candidates_[i].first;
  }
  const std::span<const float> kept = narrowed ? std::span<const float>(kept_logits_) : logits;
  auto token = [&](size_t i) { return narrowed ? candidates_[i].second : static_cast<int32_t>(i); };
  weights_.resize(kept.size());
  const double sum = cpu::ExpScaled(kept.data(), static_cast<int64_t>(kept.size()), max_logit, 1.0f / p.temperature,
                                    weights_.data());
  const double target = std::uniform_real_distribution<double>(0.0, sum)(rng_);
  double cumulative = 0;
  for (size_t i = 0; i < kept.size(); ++i) {
    cumulative += weights_[i];
    if (target < cumulative) return token(i);
  }
  // Rounding left the target past the last sum: the least likely kept token, or the
  // most likely one when the whole vocabulary was drawn from.
  return narrowed ? candidates_.back().second : top;
}

namespace {

double LogSumExp(std::span<const float> logits) {
  const float max_logit = logits[static_cast<size_t>(Greatest(logits))];
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
