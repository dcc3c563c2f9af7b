#pragma once

// Cumulative histogram buckets as scraped, their differences between two scrapes, and
// quantiles estimated from them the way Prometheus' histogram_quantile() does.

#include <optional>
#include <string_view>
#include <vector>

#include "control/monitor/prometheus_text.h"

namespace triplane::control {

// A histogram's cumulative counts by upper bound (`le`), summed over its label sets.
struct HistogramBuckets {
  std::vector<double> upper_bounds;  // strictly ascending; the last one is +Inf
  std::vector<double> cumulative;    // observations <= each bound; same size

  double total() const { return cumulative.empty() ? 0 : cumulative.back(); }
  bool operator==(const HistogramBuckets&) const = default;
};

// The buckets of histogram family `name` in `metrics`, summed over its label sets;
// nullopt when the family is missing, is not a histogram or has no +Inf bucket.
std::optional<HistogramBuckets> ReadHistogram(const ScrapedMetrics& metrics, std::string_view name);

// The observations between two scrapes: `current - previous` per bucket. When any count
// went down, or the bounds changed, the process restarted in between (its counters began
// again at zero), and everything counted since is `current` itself.
HistogramBuckets BucketDelta(const HistogramBuckets& previous, const HistogramBuckets& current);

// A counter's increase between two scrapes, with the same reset rule: a value below the
// previous one is counted from zero.
double CounterDelta(double previous, double current);

// Adds `more` into `sum` (summed deltas of one deployment's instances). Buckets with
// the same bounds add up; an empty `sum` takes `more`'s bounds. Returns false (and
// leaves `sum` unchanged) when the bounds differ.
bool AddBuckets(HistogramBuckets& sum, const HistogramBuckets& more);

// The `q` quantile (0..1) of the observations, interpolated linearly within the bucket
// that holds it and capped at the highest finite bound, as histogram_quantile() does;
// NaN when there are no observations or no +Inf bucket.
double HistogramQuantile(double q, const HistogramBuckets& buckets);

}  // namespace triplane::control
