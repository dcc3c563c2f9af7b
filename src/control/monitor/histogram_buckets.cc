#include "control/monitor/histogram_buckets.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <map>

namespace triplane::control {
namespace {

double Nan() { return std::numeric_limits<double>::quiet_NaN(); }

// The parser has validated every `le`; "+Inf" is the only spelling of infinity it lets
// through besides "Inf".
double ParseBound(const std::string& text) {
  if (text == "+Inf" || text == "Inf" || text == "+inf" || text == "inf") {
    return std::numeric_limits<double>::infinity();
  }
  double value = Nan();
  std::from_chars(text.data() + (text.starts_with('+') ? 1 : 0), text.data() + text.size(), value);
  return value;
}

}  // namespace

std::optional<HistogramBuckets> ReadHistogram(const ScrapedMetrics& metrics, std::string_view name) {
  const ScrapedFamily* family = metrics.Find(name);
  if (family == nullptr || family->type != SeriesType::kHistogram) return std::nullopt;
  const std::string bucket_name = family->name + "_bucket";
  std::map<double, double> by_bound;
  for (const ScrapedSample& sample : family->samples) {
    if (sample.name != bucket_name || !std::isfinite(sample.value)) continue;
    const std::string* le = sample.Label("le");
    if (le == nullptr) continue;
    const double bound = ParseBound(*le);
    if (std::isnan(bound)) continue;
    by_bound[bound] += sample.value;
  }
  if (by_bound.empty() || !std::isinf(by_bound.rbegin()->first)) return std::nullopt;
  HistogramBuckets buckets;
  for (const auto& [bound, count] : by_bound) {
    buckets.upper_bounds.push_back(bound);
    buckets.cumulative.push_back(count);
  }
  return buckets;
}

HistogramBuckets BucketDelta(const HistogramBuckets& previous, const HistogramBuckets& current) {
  if (previous.upper_bounds != current.upper_bounds) return current;
  HistogramBuckets delta = current;
  for (size_t i = 0; i < current.cumulative.size(); ++i) {
    if (current.cumulative[i] < previous.cumulative[i]) return current;
    delta.cumulative[i] = current.cumulative[i] - previous.cumulative[i];
  }
  return delta;
}

double CounterDelta(double previous, double current) {
  return current >= previous ? current - previous : current;
}

bool AddBuckets(HistogramBuckets& sum, const HistogramBuckets& more) {
  if (sum.upper_bounds.empty()) {
    sum = more;
    return true;
  }
  if (sum.upper_bounds != more.upper_bounds) return false;
  for (size_t i = 0; i < sum.cumulative.size(); ++i) sum.cumulative[i] += more.cumulative[i];
  return true;
}

double HistogramQuantile(double q, const HistogramBuckets& buckets) {
  if (std::isnan(q)) return Nan();
  if (q < 0) return -std::numeric_limits<double>::infinity();
  if (q > 1) return std::numeric_limits<double>::infinity();
  const size_t n = buckets.upper_bounds.size();
  if (n < 2 || n != buckets.cumulative.size() || !std::isinf(buckets.upper_bounds.back())) {
    return Nan();
  }
  // Counts scraped from separate atomics may be slightly out of order (Prometheus'
  // ensureMonotonic): a bucket never holds fewer than the one below it.
  std::vector<double> counts = buckets.cumulative;
  for (size_t i = 1; i < n; ++i) counts[i] = std::max(counts[i], counts[i - 1]);
  const double observations = counts.back();
  if (!(observations > 0)) return Nan();
  double rank = q * observations;
  // The first bucket holding the rank; the +Inf bucket is not searched (it answers with
  // the highest finite bound, as Prometheus does).
  size_t b = std::lower_bound(counts.begin(), counts.end() - 1, rank) - counts.begin();
  if (b == n - 1) return buckets.upper_bounds[n - 2];
  if (b == 0 && buckets.upper_bounds[0] <= 0) return buckets.upper_bounds[0];
  double start = 0;
  const double end = buckets.upper_bounds[b];
  double count = counts[b];
  if (b > 0) {
    start = buckets.upper_bounds[b - 1];
    count -= counts[b - 1];
    rank -= counts[b - 1];
  }
  if (!(count > 0)) return start;  // q == 0 with an empty first bucket
  return start + (end - start) * (rank / count);
}

}  // namespace triplane::control
