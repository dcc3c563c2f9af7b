#include "common/metrics.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <type_traits>
#include <utility>

#include "fmt/format.h"

namespace triplane::common {
namespace {

// Registration mistakes are bugs in our code, never user input: fail loudly and early.
[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "triplane metrics: %s\n", message.c_str());
  std::fflush(stderr);
  std::abort();
}

std::string_view TypeName(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

// [a-zA-Z_][a-zA-Z0-9_]*. Colons are legal in Prometheus but reserved for recording rules.
bool IsValidName(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    const bool digit = c >= '0' && c <= '9';
    if (!alpha && !(digit && i > 0)) return false;
  }
  return true;
}

void ValidateMetricName(std::string_view name, MetricType type) {
  if (!IsValidName(name)) {
    Die(fmt::format("invalid metric name \"{}\": must match [a-zA-Z_][a-zA-Z0-9_]*", name));
  }
  if (type == MetricType::kCounter && !name.ends_with("_total")) {
    Die(fmt::format("counter \"{}\" must be named with the suffix \"_total\"", name));
  }
}

void ValidateLabelNames(std::string_view metric, const std::vector<std::string>& label_names,
                        MetricType type) {
  for (size_t i = 0; i < label_names.size(); ++i) {
    const std::string& label = label_names[i];
    if (!IsValidName(label)) {
      Die(fmt::format("metric \"{}\": invalid label name \"{}\"", metric, label));
    }
    if (label.starts_with("__") || (type == MetricType::kHistogram && label == "le")) {
      Die(fmt::format("metric \"{}\": label name \"{}\" is reserved", metric, label));
    }
    for (size_t j = 0; j < i; ++j) {
      if (label_names[j] == label) {
        Die(fmt::format("metric \"{}\": duplicate label name \"{}\"", metric, label));
      }
    }
  }
}

// Drops a trailing +Inf (the +Inf bucket is implicit) and checks the rest.
void NormalizeBuckets(std::string_view metric, std::vector<double>* buckets) {
  if (!buckets->empty() && buckets->back() == std::numeric_limits<double>::infinity()) {
    buckets->pop_back();
  }
  for (size_t i = 0; i < buckets->size(); ++i) {
    const double b = (*buckets)[i];
    if (!std::isfinite(b) || (i > 0 && !((*buckets)[i - 1] < b))) {
      Die(fmt::format("histogram \"{}\": buckets [{}] are not finite and strictly increasing",
                      metric, fmt::join(*buckets, ", ")));
    }
  }
}

std::string Signature(MetricType type, const std::vector<std::string>& label_names,
                      const std::vector<double>& buckets) {
  std::string out = fmt::format("{}{{{}}}", TypeName(type), fmt::join(label_names, ","));
  if (type == MetricType::kHistogram) {
    out += fmt::format(" buckets [{}]", fmt::join(buckets, ","));
  }
  return out;
}

// The shortest text that parses back to `v`: plain decimals for the usual range
// ("1000000", "0.0005", "1712345678.53"), exponents only for the very small or large
// ("1e-07", "1e+300"), and "+Inf", "-Inf", "NaN" as the Prometheus parser expects.
void AppendDouble(std::string* out, double v) {
  if (std::isnan(v)) {
    out->append("NaN");
    return;
  }
  if (std::isinf(v)) {
    out->append(v > 0 ? "+Inf" : "-Inf");
    return;
  }
  if (v == 0) {  // also -0
    out->push_back('0');
    return;
  }
  // Fixed notation of a double below 1e15 has at most ~40 characters.
  char buf[64];
  const double magnitude = std::fabs(v);
  const auto format =
      magnitude >= 1e-4 && magnitude < 1e15 ? std::chars_format::fixed : std::chars_format::general;
  const std::to_chars_result result = std::to_chars(buf, buf + sizeof(buf), v, format);
  out->append(buf, result.ptr);
}

void AppendUint(std::string* out, uint64_t v) {
  char buf[24];
  const auto result = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, result.ptr);
}

// Length of the valid UTF-8 sequence starting at s[i], or 0 if it is not one (overlong
// forms, surrogates and code points above U+10FFFF are invalid, as in Go).
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) return 1;
  size_t len = 0;
  uint32_t cp = 0;
  uint32_t min = 0;
  if ((b0 & 0xE0) == 0xC0) {
    len = 2, cp = b0 & 0x1F, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3, cp = b0 & 0x0F, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4, cp = b0 & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  for (size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

// Prometheus rejects a whole scrape if one label value is not valid UTF-8, and label
// values may come from users: replace each invalid byte with U+FFFD.
std::string ToValidUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const size_t len = Utf8SequenceLength(s, i);
    if (len == 0) {
      out.append("\xEF\xBF\xBD");
      ++i;
    } else {
      out.append(s.substr(i, len));
      i += len;
    }
  }
  return out;
}

// Label values escape backslash, double quote and newline; HELP text escapes only
// backslash and newline.
void AppendEscaped(std::string* out, std::string_view s, bool escape_quote) {
  for (const char c : s) {
    if (c == '\\') {
      out->append("\\\\");
    } else if (c == '\n') {
      out->append("\\n");
    } else if (c == '"' && escape_quote) {
      out->append("\\\"");
    } else {
      out->push_back(c);
    }
  }
}

// Appends `name{l1="v1",...,le="x"} ` (no braces when there are no labels); the caller
// appends the value and newline.
void AppendSampleStart(std::string* out, std::string_view name, std::string_view suffix,
                       const std::vector<std::string>& label_names,
                       const std::vector<std::string>& values, std::string_view le = {}) {
  out->append(name).append(suffix);
  if (!label_names.empty() || !le.empty()) {
    out->push_back('{');
    for (size_t i = 0; i < label_names.size(); ++i) {
      if (i > 0) out->push_back(',');
      out->append(label_names[i]).append("=\"");
      AppendEscaped(out, values[i], /*escape_quote=*/true);
      out->push_back('"');
    }
    if (!le.empty()) {
      out->append(label_names.empty() ? "le=\"" : ",le=\"").append(le).push_back('"');
    }
    out->push_back('}');
  }
  out->push_back(' ');
}

template <typename Metric>
std::unique_ptr<Metric> NewChild(const std::vector<double>& buckets) {
  if constexpr (std::is_same_v<Metric, Histogram>) {
    return std::make_unique<Histogram>(buckets);
  } else {
    return std::make_unique<Metric>();
  }
}

// An unlabelled counter or gauge whose value is read at render time.
class CallbackFamily final : public internal::MetricFamily {
 public:
  CallbackFamily(std::string name, std::string help, MetricType type, std::function<double()> read)
      : MetricFamily(std::move(name), std::move(help), type), read_(std::move(read)) {}

  void Replace(std::function<double()> read) {
    absl::MutexLock lock(&mu_);
    read_ = std::move(read);
  }

  std::string Signature() const override { return fmt::format("callback {}", TypeName(type())); }

 protected:
  bool AppendSamples(std::string* out) const override {
    std::function<double()> read;
    {
      absl::ReaderMutexLock lock(&mu_);
      read = read_;  // run the callback outside the lock; it may be slow
    }
    out->append(name()).push_back(' ');
    AppendDouble(out, read ? read() : std::nan(""));
    out->push_back('\n');
    return true;
  }

 private:
  mutable absl::Mutex mu_;
  std::function<double()> read_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

// ---- Counter, Gauge, Histogram -------------------------------------------------------

void Counter::Inc(double v) {
  if (!std::isfinite(v) || v < 0) return;
  value_.fetch_add(v, std::memory_order_relaxed);
}

void Gauge::Inc(double v) { value_.fetch_add(v, std::memory_order_relaxed); }

Histogram::Histogram(std::span<const double> bounds)
    : bounds_(bounds.begin(), bounds.end()),
      counts_(std::make_unique<std::atomic<uint64_t>[]>(bounds.size() + 1)) {}

void Histogram::Observe(double v) {
  if (std::isnan(v)) return;
  // First bound >= v: buckets are inclusive upper bounds; past the end is +Inf.
  const auto bucket = std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin();
  counts_[bucket].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot snapshot;
  snapshot.cumulative_counts.resize(bounds_.size() + 1);
  uint64_t total = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    total += counts_[i].load(std::memory_order_relaxed);
    snapshot.cumulative_counts[i] = total;
  }
  snapshot.count = total;
  snapshot.sum = sum_.load(std::memory_order_relaxed);
  return snapshot;
}

// ---- Families ----------------------------------------------------------------------

namespace internal {

MetricFamily::MetricFamily(std::string name, std::string help, MetricType type)
    : name_(std::move(name)), help_(std::move(help)), type_(type) {}

void MetricFamily::AppendText(std::string* out) const {
  const size_t start = out->size();
  out->append("# HELP ").append(name_);
  if (!help_.empty()) {
    out->push_back(' ');
    AppendEscaped(out, help_, /*escape_quote=*/false);
  }
  out->append("\n# TYPE ").append(name_).push_back(' ');
  out->append(TypeName(type_)).push_back('\n');
  if (!AppendSamples(out)) out->resize(start);
}

}  // namespace internal

template <typename Metric>
Family<Metric>::Family(std::string name, std::string help, std::vector<std::string> label_names,
                       std::vector<double> buckets)
    : MetricFamily(std::move(name), std::move(help), Metric::kType),
      label_names_(std::move(label_names)),
      buckets_(std::move(buckets)) {
  if (label_names_.empty()) {
    // Families without labels always render (as 0 until first updated) and Get() is
    // lock-free.
    absl::MutexLock lock(&mu_);
    auto& child = children_.try_emplace(std::vector<std::string>{}).first->second;
    child = NewChild<Metric>(buckets_);
    unlabelled_ = child.get();
  }
}

template <typename Metric>
template <typename Values>
Metric& Family<Metric>::FindOrCreate(const Values& values) {
  if (values.size() != label_names_.size()) {
    Die(fmt::format("metric \"{}\" has {} labels [{}] but got {} values", name(),
                    label_names_.size(), fmt::join(label_names_, ", "), values.size()));
  }
  {
    absl::ReaderMutexLock lock(&mu_);
    if (auto it = children_.find(values); it != children_.end()) return *it->second;
  }
  std::vector<std::string> key;
  key.reserve(values.size());
  for (std::string_view value : values) key.push_back(ToValidUtf8(value));
  absl::MutexLock lock(&mu_);
  // Another thread may have created it meanwhile, or an invalid-UTF-8 value may map to
  // an existing sanitized key; try_emplace handles both.
  auto [it, inserted] = children_.try_emplace(std::move(key));
  if (inserted) it->second = NewChild<Metric>(buckets_);
  return *it->second;
}

template <typename Metric>
Metric& Family<Metric>::WithLabels(std::initializer_list<std::string_view> values) {
  return FindOrCreate(values);
}

template <typename Metric>
Metric& Family<Metric>::WithLabels(std::span<const std::string> values) {
  return FindOrCreate(values);
}

template <typename Metric>
Metric& Family<Metric>::Get() {
  if (unlabelled_ == nullptr) {
    Die(fmt::format("metric \"{}\" has labels [{}]; use WithLabels() instead of Get()", name(),
                    fmt::join(label_names_, ", ")));
  }
  return *unlabelled_;
}

template <typename Metric>
std::string Family<Metric>::Signature() const {
  return common::Signature(Metric::kType, label_names_, buckets_);
}

template <typename Metric>
bool Family<Metric>::AppendSamples(std::string* out) const {
  absl::ReaderMutexLock lock(&mu_);
  if (children_.empty()) return false;
  if constexpr (std::is_same_v<Metric, Histogram>) {
    std::vector<std::string> les;
    les.reserve(buckets_.size() + 1);
    for (const double bound : buckets_) AppendDouble(&les.emplace_back(), bound);
    les.push_back("+Inf");
    for (const auto& [values, child] : children_) {
      const Histogram::Snapshot snapshot = child->Read();
      for (size_t i = 0; i < les.size(); ++i) {
        AppendSampleStart(out, name(), "_bucket", label_names_, values, les[i]);
        AppendUint(out, snapshot.cumulative_counts[i]);
        out->push_back('\n');
      }
      AppendSampleStart(out, name(), "_sum", label_names_, values);
      AppendDouble(out, snapshot.sum);
      out->push_back('\n');
      AppendSampleStart(out, name(), "_count", label_names_, values);
      AppendUint(out, snapshot.count);
      out->push_back('\n');
    }
  } else {
    for (const auto& [values, child] : children_) {
      AppendSampleStart(out, name(), "", label_names_, values);
      AppendDouble(out, child->Value());
      out->push_back('\n');
    }
  }
  return true;
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

// ---- Registry ----------------------------------------------------------------------

MetricsRegistry::MetricsRegistry() = default;
MetricsRegistry::~MetricsRegistry() = default;

void MetricsRegistry::ReserveNamesLocked(const std::string& name, MetricType type) {
  std::vector<std::string> samples;
  if (type == MetricType::kHistogram) {
    samples = {name + "_bucket", name + "_sum", name + "_count"};
  } else {
    samples = {name};
  }
  for (const std::string& sample : samples) {
    if (auto it = sample_names_.find(sample); it != sample_names_.end()) {
      Die(fmt::format("metric \"{}\" would expose sample \"{}\", as metric \"{}\" does", name,
                      sample, it->second));
    }
  }
  for (std::string& sample : samples) sample_names_.emplace(std::move(sample), name);
}

template <typename Metric>
Family<Metric>& MetricsRegistry::AddFamily(std::string name, std::string help,
                                           std::vector<std::string> label_names,
                                           std::vector<double> buckets) {
  ValidateMetricName(name, Metric::kType);
  ValidateLabelNames(name, label_names, Metric::kType);
  if constexpr (std::is_same_v<Metric, Histogram>) NormalizeBuckets(name, &buckets);

  absl::MutexLock lock(&mu_);
  if (auto it = families_.find(name); it != families_.end()) {
    auto* family = dynamic_cast<Family<Metric>*>(it->second.get());
    if (family == nullptr || family->label_names() != label_names || family->buckets() != buckets) {
      Die(fmt::format("metric \"{}\" is already registered as {}, not as {}", name,
                      it->second->Signature(), Signature(Metric::kType, label_names, buckets)));
    }
    return *family;
  }
  ReserveNamesLocked(name, Metric::kType);
  auto family = std::make_unique<Family<Metric>>(name, std::move(help), std::move(label_names),
                                                 std::move(buckets));
  Family<Metric>& result = *family;
  families_.emplace(std::move(name), std::move(family));
  return result;
}

Family<Counter>& MetricsRegistry::AddCounter(std::string name, std::string help,
                                             std::vector<std::string> label_names) {
  return AddFamily<Counter>(std::move(name), std::move(help), std::move(label_names), {});
}

Family<Gauge>& MetricsRegistry::AddGauge(std::string name, std::string help,
                                         std::vector<std::string> label_names) {
  return AddFamily<Gauge>(std::move(name), std::move(help), std::move(label_names), {});
}

Family<Histogram>& MetricsRegistry::AddHistogram(std::string name, std::string help,
                                                 std::vector<std::string> label_names,
                                                 std::vector<double> buckets) {
  return AddFamily<Histogram>(std::move(name), std::move(help), std::move(label_names),
                              std::move(buckets));
}

void MetricsRegistry::AddCallback(std::string name, std::string help, MetricType type,
                                  std::function<double()> read) {
  if (type != MetricType::kCounter && type != MetricType::kGauge) {
    Die(fmt::format("callback metric \"{}\" must be a counter or a gauge, not a {}", name,
                    TypeName(type)));
  }
  if (!read) Die(fmt::format("callback metric \"{}\" has an empty read function", name));
  ValidateMetricName(name, type);

  absl::MutexLock lock(&mu_);
  if (auto it = families_.find(name); it != families_.end()) {
    auto* family = dynamic_cast<CallbackFamily*>(it->second.get());
    if (family == nullptr || family->type() != type) {
      Die(fmt::format("metric \"{}\" is already registered as {}, not as callback {}", name,
                      it->second->Signature(), TypeName(type)));
    }
    family->Replace(std::move(read));
    return;
  }
  ReserveNamesLocked(name, type);
  auto family = std::make_unique<CallbackFamily>(name, std::move(help), type, std::move(read));
  families_.emplace(std::move(name), std::move(family));
}

void MetricsRegistry::SetCollector(std::string id, Collector collector) {
  absl::MutexLock lock(&collect_mu_);
  if (collector) {
    collectors_[std::move(id)] = std::move(collector);
  } else {
    collectors_.erase(id);
  }
}

std::string MetricsRegistry::RenderText() const {
  // Families are never removed, so the pointers outlive the lock; rendering outside it
  // lets callbacks be slow without blocking registration.
  std::vector<const internal::MetricFamily*> families;
  {
    absl::ReaderMutexLock lock(&mu_);
    families.reserve(families_.size());
    for (const auto& [name, family] : families_) families.push_back(family.get());
  }
  std::string out;
  out.reserve(families.size() * 256);
  for (const internal::MetricFamily* family : families) family->AppendText(&out);

  absl::MutexLock lock(&collect_mu_);
  if (collectors_.empty()) return out;
  const std::function<bool(std::string_view)> taken = [this](std::string_view name) {
    absl::ReaderMutexLock names_lock(&mu_);
    return families_.find(name) != families_.end() ||
           sample_names_.find(name) != sample_names_.end();
  };
  for (const auto& [id, collector] : collectors_) collector(taken, &out);
  return out;
}

MetricsRegistry& MetricsRegistry::Default() {
  // Leaked on purpose: threads still recording metrics during static destruction must
  // not touch a destroyed registry.
  static MetricsRegistry* const registry = new MetricsRegistry();
  return *registry;
}

// ---- Exposition helpers ------------------------------------------------------------

namespace exposition {

void AppendValue(std::string* out, double v) { AppendDouble(out, v); }

void AppendLabelValue(std::string* out, std::string_view s) {
  AppendEscaped(out, s, /*escape_quote=*/true);
}

void AppendHelp(std::string* out, std::string_view s) { AppendEscaped(out, s, /*escape_quote=*/false); }

std::string ToValidUtf8(std::string_view s) { return common::ToValidUtf8(s); }

}  // namespace exposition

// ---- Buckets -----------------------------------------------------------------------

std::vector<double> LatencyBucketsSeconds() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25,
          0.5,    0.75,  1,      2.5,   5,      7.5,  10,    20,   30,    60};
}

std::vector<double> ExponentialBuckets(double start, double factor, int count) {
  if (!(start > 0) || !(factor > 1) || count < 1 || !std::isfinite(start) ||
      !std::isfinite(factor)) {
    Die(fmt::format("ExponentialBuckets({}, {}, {}) requires start > 0, factor > 1, count >= 1",
                    start, factor, count));
  }
  std::vector<double> buckets;
  buckets.reserve(count);
  double next = start;
  for (int i = 0; i < count; ++i) {
    // Round to 15 significant digits so e.g. 0.001 * 10^k renders as "0.01", not
    // "0.010000000000000002".
    char buf[40];
    const auto printed =
        std::to_chars(buf, buf + sizeof(buf), next, std::chars_format::general, 15);
    double rounded = next;
    std::from_chars(buf, printed.ptr, rounded);
    buckets.push_back(rounded);
    next *= factor;
  }
  return buckets;
}

}  // namespace triplane::common
