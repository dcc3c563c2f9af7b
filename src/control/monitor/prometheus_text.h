#pragma once

// A parser of the Prometheus text exposition format 0.0.4, for the /metrics pages the
// monitor scrapes. Engines are separate processes and may be buggy, old or new, so the
// input is untrusted: every line is validated (names, label syntax and escapes, UTF-8
// label values, numbers, duplicate series, histogram `le` labels) and a bad line is
// skipped and counted, never trusted, while the good lines still count. Sizes are
// bounded by ParseLimits.

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace triplane::control {

enum class SeriesType { kUntyped, kCounter, kGauge, kHistogram, kSummary };

// "counter", "gauge", "histogram", "summary", "untyped".
std::string_view SeriesTypeName(SeriesType type);

struct ParseLimits {
  size_t max_samples = 100'000;     // samples beyond are dropped (`truncated`)
  size_t max_labels = 64;           // per sample
  size_t max_line_bytes = 64 << 10; // longer lines are rejected
};

// One sample line: `name{labels} value`. A timestamp, when given, is checked and dropped.
struct ScrapedSample {
  std::string name;  // the sample's own name, e.g. "x_bucket" in histogram family "x"
  std::vector<std::pair<std::string, std::string>> labels;  // as given, values unescaped
  double value = 0;

  // The value of label `name`, or nullptr.
  const std::string* Label(std::string_view name) const;
};

// A metric family: its HELP and TYPE and its samples, grouped even if the page
// interleaved them.
struct ScrapedFamily {
  std::string name;
  std::string help;
  SeriesType type = SeriesType::kUntyped;
  std::vector<ScrapedSample> samples;
};

struct ScrapedMetrics {
  std::vector<ScrapedFamily> families;  // in order of first appearance
  int rejected_lines = 0;               // lines skipped as invalid
  std::string first_error;              // "line N: why", for the log; empty when none
  bool truncated = false;               // ParseLimits::max_samples was reached

  // The family named `name`, or nullptr.
  const ScrapedFamily* Find(std::string_view name) const;

  // The sum of a counter's or gauge's samples over all their label sets (e.g. a counter
  // with a label per finish reason); nullopt when the page has no such sample.
  std::optional<double> Sum(std::string_view family) const;

 private:
  friend ScrapedMetrics ParsePrometheusText(std::string_view text, const ParseLimits& limits);
  std::map<std::string, size_t, std::less<>> index_;  // family name -> position
};

// Parses a /metrics page. Never fails: invalid lines are counted in `rejected_lines`.
// Cost: linear in the text, one allocation per sample and label.
ScrapedMetrics ParsePrometheusText(std::string_view text, const ParseLimits& limits = {});

}  // namespace triplane::control
