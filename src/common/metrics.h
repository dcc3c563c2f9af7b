#pragma once

// A Prometheus metrics registry: counters, gauges and histograms, optionally labelled,
// plus callback metrics read at scrape time, rendered in the text exposition format
// 0.0.4. Updating a metric is lock-free; creating a labelled child takes a mutex once.
//
//   auto& requests = registry.AddCounter("triplane_requests_total", "Requests served.",
//                                        {"model", "code"});
//   requests.WithLabels({model, "200"}).Inc();   // or cache the reference: it never moves
//
// Registration mistakes (bad names, conflicting re-registration, wrong label count) are
// programmer errors: they print a message to stderr and abort. Label VALUES may come
// from user input: invalid UTF-8 is replaced with U+FFFD when a child is created, and
// backslash, quote and newline are escaped when rendered.

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace triplane::common {

// The Prometheus metric types we expose (rendered as `# TYPE name counter` etc.).
enum class MetricType { kCounter, kGauge, kHistogram };

// A monotonically increasing value. Thread-safe and lock-free.
class Counter {
 public:
  static constexpr MetricType kType = MetricType::kCounter;

  Counter() = default;
  Counter(const Counter&) = delete;
  Counter& operator=(const Counter&) = delete;

  // Adds `v`. A negative or non-finite `v` is ignored (a counter never goes down).
  // Cost: one atomic compare-and-swap loop.
  void Inc(double v = 1.0);
  // The current total; a relaxed atomic load.
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// A value that goes up and down. Thread-safe and lock-free.
class Gauge {
 public:
  static constexpr MetricType kType = MetricType::kGauge;

  Gauge() = default;
  Gauge(const Gauge&) = delete;
  Gauge& operator=(const Gauge&) = delete;

  // Replaces the value (any double, NaN and infinities included). One atomic store.
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  // Add or subtract `v`. Cost: one atomic compare-and-swap loop.
  void Inc(double v = 1.0);
  void Dec(double v = 1.0) { Inc(-v); }
  // The current value; a relaxed atomic load.
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// Counts observations into buckets with fixed upper bounds (`le`, inclusive) plus an
// implicit +Inf bucket, and keeps their sum. Thread-safe and lock-free.
class Histogram {
 public:
  static constexpr MetricType kType = MetricType::kHistogram;

  // A point-in-time copy of the histogram. Concurrent Observe() calls may land between
  // reading the buckets and the sum, but `count` always equals the +Inf bucket.
  struct Snapshot {
    std::vector<uint64_t> cumulative_counts;  // [bounds().size() + 1]; last one is +Inf
    uint64_t count = 0;
    double sum = 0.0;
  };

  // REQUIRES: `bounds` finite and strictly increasing (MetricsRegistry checks this).
  // Usually created through MetricsRegistry::AddHistogram.
  explicit Histogram(std::span<const double> bounds);
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;

  // Records `v`. NaN is ignored, so one bad sample cannot poison `sum` forever.
  // Cost: a binary search over the bounds and two atomic updates.
  void Observe(double v);

  // The current counts and sum. Cost: O(buckets) relaxed loads and one allocation.
  Snapshot Read() const;

  // The finite upper bounds, ascending.
  std::span<const double> bounds() const { return bounds_; }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // [bounds_.size() + 1], not cumulative
  std::atomic<double> sum_{0.0};
};

namespace internal {

// What MetricsRegistry knows about each metric family; implemented by Family<Metric>
// and by callback metrics.
class MetricFamily {
 public:
  MetricFamily(std::string name, std::string help, MetricType type);
  virtual ~MetricFamily() = default;
  MetricFamily(const MetricFamily&) = delete;
  MetricFamily& operator=(const MetricFamily&) = delete;

  const std::string& name() const { return name_; }
  MetricType type() const { return type_; }
  // How the family was registered, for conflict messages, e.g. "counter{model,code}".
  virtual std::string Signature() const = 0;

  // Appends `# HELP`, `# TYPE` and every sample in the text format; appends nothing if
  // the family has no samples yet. Thread-safe.
  void AppendText(std::string* out) const;

 protected:
  // Appends the sample lines only; returns false (appending nothing) if there are none.
  virtual bool AppendSamples(std::string* out) const = 0;

 private:
  const std::string name_;
  const std::string help_;
  const MetricType type_;
};

}  // namespace internal

// All children of one metric name, one per distinct tuple of label values.
// Thread-safe. Children are never removed; references to them stay valid for the
// lifetime of the registry, so hot paths may look a child up once and keep it.
// Because children live forever, label values from users must come from a bounded
// set (e.g. names of served models, after validation), never raw request strings.
template <typename Metric>
class Family : public internal::MetricFamily {
 public:
  // Created by MetricsRegistry, which validates the arguments; `buckets` is used only
  // for histograms.
  Family(std::string name, std::string help, std::vector<std::string> label_names,
         std::vector<double> buckets);

  // Returns the child for these label values (same order as label_names()), creating
  // it on first use. Aborts if the number of values differs from label_names().size().
  // Cost: a map lookup under a reader lock; creation takes the writer lock once.
  Metric& WithLabels(std::initializer_list<std::string_view> values);
  Metric& WithLabels(std::span<const std::string> values);

  // The only child of a family without labels. Lock-free. Aborts if the family has labels.
  Metric& Get();

  // The label names given at registration, in order.
  const std::vector<std::string>& label_names() const { return label_names_; }
  // Histogram bucket upper bounds (without +Inf); empty for counters and gauges.
  const std::vector<double>& buckets() const { return buckets_; }

  std::string Signature() const override;

 protected:
  bool AppendSamples(std::string* out) const override;

 private:
  // Orders label-value tuples lexicographically whatever their string type, so lookups
  // with string_views need no allocation.
  struct ValuesLess {
    using is_transparent = void;
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      return std::lexicographical_compare(
          a.begin(), a.end(), b.begin(), b.end(),
          [](std::string_view x, std::string_view y) { return x < y; });
    }
  };

  template <typename Values>
  Metric& FindOrCreate(const Values& values);

  const std::vector<std::string> label_names_;
  const std::vector<double> buckets_;
  Metric* unlabelled_ = nullptr;  // set once in the constructor when there are no labels
  mutable absl::Mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<Metric>, ValuesLess> children_
      ABSL_GUARDED_BY(mu_);
};

extern template class Family<Counter>;
extern template class Family<Gauge>;
extern template class Family<Histogram>;

// A set of uniquely named metric families, rendered together for a /metrics endpoint.
// Thread-safe. Families live as long as the registry.
class MetricsRegistry {
 public:
  MetricsRegistry();
  ~MetricsRegistry();
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // Registers (or returns the already registered) family. Names match
  // [a-zA-Z_][a-zA-Z0-9_]*; counter names end in "_total"; label names match the same
  // pattern, do not start with "__" and are unique (histograms also reserve "le").
  // `buckets` are finite, strictly increasing upper bounds; a trailing +Inf is dropped.
  // Registering an existing name with the same type, labels and buckets returns the same
  // family; anything else that breaks these rules aborts. Cost: a map lookup under a lock.
  Family<Counter>& AddCounter(std::string name, std::string help,
                              std::vector<std::string> label_names = {});
  Family<Gauge>& AddGauge(std::string name, std::string help,
                          std::vector<std::string> label_names = {});
  Family<Histogram>& AddHistogram(std::string name, std::string help,
                                  std::vector<std::string> label_names,
                                  std::vector<double> buckets);

  // Registers an unlabelled counter or gauge whose value is `read()` at render time
  // (e.g. KV cache usage, RSS). `type` is kCounter or kGauge. Registering the same name
  // and type again replaces `read` (so a restarted component can re-register).
  // `read` must be thread-safe, cheap, must not call into this registry, and must stay
  // callable until it is replaced or the registry is destroyed.
  void AddCallback(std::string name, std::string help, MetricType type,
                   std::function<double()> read);

  // Appends families that live outside the registry (e.g. other processes' series,
  // relabelled) in the text format. `taken(name)` is true for every family and sample
  // name the registry owns: a collector leaves those out, so no family appears twice.
  using Collector = std::function<void(const std::function<bool(std::string_view)>& taken,
                                       std::string* out)>;

  // Sets the collector registered as `id`, or removes it when `collector` is empty.
  // Removal waits for a render running it to finish, so its captures may be destroyed
  // right after. A collector must be thread-safe and must not call into this registry.
  void SetCollector(std::string id, Collector collector);

  // Every family with at least one sample, sorted by name, children in label-value
  // order, then the collectors' output (in id order), in the Prometheus text exposition
  // format 0.0.4. Thread-safe; runs callbacks and collectors (one render at a time runs
  // collectors). Cost: O(total children), one allocation-heavy string build.
  std::string RenderText() const;

  // The process-wide registry; never destroyed, so it is safe to use during shutdown.
  static MetricsRegistry& Default();

 private:
  template <typename Metric>
  Family<Metric>& AddFamily(std::string name, std::string help,
                            std::vector<std::string> label_names, std::vector<double> buckets);
  // Aborts unless `name` is new and none of its sample names collide with existing ones.
  void ReserveNamesLocked(const std::string& name, MetricType type)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::map<std::string, std::unique_ptr<internal::MetricFamily>, std::less<>> families_
      ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string, std::less<>> sample_names_ ABSL_GUARDED_BY(mu_);
  // Held while collectors run, so that SetCollector can wait for them. Taken before mu_.
  mutable absl::Mutex collect_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  std::map<std::string, Collector> collectors_ ABSL_GUARDED_BY(collect_mu_);
};

// Pieces of the text exposition format, for collectors that render series themselves.
namespace exposition {
// The shortest text that parses back to `v`; "+Inf", "-Inf" and "NaN" as Prometheus
// spells them.
void AppendValue(std::string* out, double v);
// `s` with backslash, double quote and newline escaped, for inside `label="..."`.
void AppendLabelValue(std::string* out, std::string_view s);
// `s` with backslash and newline escaped, for a `# HELP` line.
void AppendHelp(std::string* out, std::string_view s);
// `s` with every byte that is not part of valid UTF-8 replaced by U+FFFD (Prometheus
// rejects a whole scrape over one invalid label value).
std::string ToValidUtf8(std::string_view s);
}  // namespace exposition

// Upper bounds from 0.5 ms to 60 s in a 1-2.5-5(-7.5) series: covers HTTP handlers,
// inter-token latency, time to first token and whole LLM requests.
std::vector<double> LatencyBucketsSeconds();

// `count` bounds: start, start*factor, start*factor^2, ... rounded to 15 significant
// digits so they render without floating-point noise.
// REQUIRES: start > 0, factor > 1, count >= 1 (aborts otherwise).
std::vector<double> ExponentialBuckets(double start, double factor, int count);

}  // namespace triplane::common
