#include "control/monitor/prometheus_text.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <set>

#include "common/metrics.h"
#include "common/strings.h"
#include "fmt/format.h"

namespace triplane::control {
namespace {

bool IsNameStart(char c, bool colon) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
}
bool IsNameChar(char c, bool colon) { return IsNameStart(c, colon) || (c >= '0' && c <= '9'); }

// Reads a name at `pos` ([a-zA-Z_:][a-zA-Z0-9_:]* for metrics, no colon for labels).
std::string_view ReadName(std::string_view line, size_t& pos, bool colon) {
  const size_t start = pos;
  if (pos >= line.size() || !IsNameStart(line[pos], colon)) return {};
  while (pos < line.size() && IsNameChar(line[pos], colon)) ++pos;
  return line.substr(start, pos - start);
}

void SkipBlanks(std::string_view line, size_t& pos) {
  while (pos < line.size() && (line[pos] == ' ' || line[pos] == '\t')) ++pos;
}

// A float as Go's strconv.ParseFloat reads the format's values: decimals, exponents,
// "+Inf", "-Inf", "Inf", "NaN" (any case).
std::optional<double> ParseValue(std::string_view text) {
  if (text.empty()) return std::nullopt;
  const std::string lower = common::AsciiToLower(text);
  if (lower == "nan") return std::numeric_limits<double>::quiet_NaN();
  if (lower == "+inf" || lower == "inf") return std::numeric_limits<double>::infinity();
  if (lower == "-inf") return -std::numeric_limits<double>::infinity();
  const bool plus = text.front() == '+';
  if (plus) text.remove_prefix(1);
  // Only digits from here: from_chars would also take "infinity" or "nan(...)".
  if (text.empty() || !(std::isdigit(static_cast<unsigned char>(text.front())) ||
                        text.front() == '.' || (!plus && text.front() == '-'))) {
    return std::nullopt;
  }
  double value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || !std::isfinite(value)) {
    return std::nullopt;
  }
  return value;
}

bool IsTimestamp(std::string_view text) {
  int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  return error == std::errc() && end == text.data() + text.size();
}

// Reads `"..."` at `pos` into `out`, undoing \\, \" and \n. False on a bad escape, a
// missing quote or invalid UTF-8.
bool ReadLabelValue(std::string_view line, size_t& pos, std::string& out) {
  if (pos >= line.size() || line[pos] != '"') return false;
  ++pos;
  while (pos < line.size() && line[pos] != '"') {
    char c = line[pos++];
    if (c == '\\') {
      if (pos >= line.size()) return false;
      const char e = line[pos++];
      if (e == 'n') {
        c = '\n';
      } else if (e == '\\' || e == '"') {
        c = e;
      } else {
        return false;
      }
    }
    out.push_back(c);
  }
  if (pos >= line.size()) return false;
  ++pos;  // the closing quote
  return common::exposition::ToValidUtf8(out) == out;
}

// HELP text escapes only backslash and newline; anything else after a backslash is kept.
std::string UnescapeHelp(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\' && i + 1 < text.size() && (text[i + 1] == '\\' || text[i + 1] == 'n')) {
      out.push_back(text[++i] == 'n' ? '\n' : '\\');
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

std::optional<SeriesType> ParseType(std::string_view text) {
  if (text == "counter") return SeriesType::kCounter;
  if (text == "gauge") return SeriesType::kGauge;
  if (text == "histogram") return SeriesType::kHistogram;
  if (text == "summary") return SeriesType::kSummary;
  if (text == "untyped") return SeriesType::kUntyped;
  return std::nullopt;
}

class Parser {
 public:
  Parser(ScrapedMetrics& out, std::map<std::string, size_t, std::less<>>& index,
         const ParseLimits& limits)
      : out_(out), index_(index), limits_(limits) {}

  void Line(std::string_view line, size_t number) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    std::string error;
    if (line.size() > limits_.max_line_bytes) {
      error = fmt::format("longer than {} bytes", limits_.max_line_bytes);
    } else if (!line.empty() && line.front() == '#') {
      error = Comment(line);
    } else if (line.find_first_not_of(" \t") != std::string_view::npos) {
      error = Sample(line);
    }
    if (error.empty()) return;
    if (out_.rejected_lines++ == 0) out_.first_error = fmt::format("line {}: {}", number, error);
  }

 private:
  // `# HELP name text`, `# TYPE name type`; other comments are ignored.
  std::string Comment(std::string_view line) {
    size_t pos = 1;
    SkipBlanks(line, pos);
    const size_t keyword_start = pos;
    while (pos < line.size() && line[pos] != ' ' && line[pos] != '\t') ++pos;
    const std::string_view keyword = line.substr(keyword_start, pos - keyword_start);
    if (keyword != "HELP" && keyword != "TYPE") return {};
    SkipBlanks(line, pos);
    const std::string_view name = ReadName(line, pos, /*colon=*/true);
    if (name.empty()) return fmt::format("# {} without a valid metric name", keyword);
    if (pos < line.size() && line[pos] != ' ' && line[pos] != '\t') {
      return fmt::format("# {}: invalid metric name", keyword);
    }
    SkipBlanks(line, pos);
    const std::string_view rest = line.substr(pos);
    if (keyword == "HELP") {
      ScrapedFamily& family = FamilyNamed(name);
      if (!family.help.empty()) return fmt::format("second HELP for {}", name);
      family.help = UnescapeHelp(rest);
      return {};
    }
    std::string_view type_text = rest;
    while (!type_text.empty() && (type_text.back() == ' ' || type_text.back() == '\t')) {
      type_text.remove_suffix(1);
    }
    const std::optional<SeriesType> type = ParseType(type_text);
    if (!type) return fmt::format("unknown type '{}' for {}", type_text, name);
    auto it = index_.find(name);
    if (it != index_.end()) {
      ScrapedFamily& family = out_.families[it->second];
      if (typed_.contains(family.name)) return fmt::format("second TYPE for {}", name);
      if (!family.samples.empty()) return fmt::format("TYPE for {} after its samples", name);
    }
    FamilyNamed(name).type = *type;
    typed_.insert(std::string(name));
    return {};
  }

  std::string Sample(std::string_view line) {
    size_t pos = 0;
    SkipBlanks(line, pos);
    ScrapedSample sample;
    sample.name = std::string(ReadName(line, pos, /*colon=*/true));
    if (sample.name.empty()) return "a sample line must start with a metric name";
    const size_t after_name = pos;
    SkipBlanks(line, pos);
    if (pos >= line.size() || line[pos] != '{') pos = after_name;  // no labels
    if (pos < line.size() && line[pos] == '{') {
      ++pos;
      while (true) {
        SkipBlanks(line, pos);
        if (pos < line.size() && line[pos] == '}') {
          ++pos;
          break;
        }
        const std::string_view label = ReadName(line, pos, /*colon=*/false);
        if (label.empty()) return "invalid label name";
        if (label.starts_with("__")) return fmt::format("reserved label name {}", label);
        SkipBlanks(line, pos);
        if (pos >= line.size() || line[pos] != '=') return fmt::format("no '=' after label {}", label);
        ++pos;
        SkipBlanks(line, pos);
        std::string value;
        if (!ReadLabelValue(line, pos, value)) return fmt::format("invalid value of label {}", label);
        if (sample.Label(label) != nullptr) return fmt::format("duplicate label {}", label);
        if (sample.labels.size() == limits_.max_labels) {
          return fmt::format("more than {} labels", limits_.max_labels);
        }
        sample.labels.emplace_back(std::string(label), std::move(value));
        SkipBlanks(line, pos);
        if (pos < line.size() && line[pos] == ',') {
          ++pos;
        } else if (pos >= line.size() || line[pos] != '}') {
          return "expected ',' or '}' in the label set";
        }
      }
    }
    if (pos >= line.size() || (line[pos] != ' ' && line[pos] != '\t')) {
      return "expected a blank before the value";
    }
    SkipBlanks(line, pos);
    const size_t value_end = std::min(line.find_first_of(" \t", pos), line.size());
    const std::optional<double> value = ParseValue(line.substr(pos, value_end - pos));
    if (!value) return "invalid value";
    sample.value = *value;
    pos = value_end;
    SkipBlanks(line, pos);
    if (pos < line.size()) {
      const size_t stamp_end = std::min(line.find_first_of(" \t", pos), line.size());
      if (!IsTimestamp(line.substr(pos, stamp_end - pos))) return "invalid timestamp";
      pos = stamp_end;
      SkipBlanks(line, pos);
      if (pos < line.size()) return "unexpected text after the timestamp";
    }
    return Add(std::move(sample));
  }

  // Files the sample under its family, checking what its type requires.
  std::string Add(ScrapedSample sample) {
    ScrapedFamily* family = FamilyOf(sample.name);
    const std::string_view suffix = std::string_view(sample.name).substr(family->name.size());
    switch (family->type) {
      case SeriesType::kHistogram:
        if (suffix == "_bucket") {
          const std::string* le = sample.Label("le");
          if (le == nullptr || !ParseValue(*le)) return "histogram bucket without a numeric 'le'";
        } else if (suffix != "_sum" && suffix != "_count") {
          return fmt::format("{} is not a sample name of histogram {}", sample.name, family->name);
        }
        break;
      case SeriesType::kSummary:
        if (suffix.empty()) {
          const std::string* quantile = sample.Label("quantile");
          if (quantile == nullptr || !ParseValue(*quantile)) return "summary sample without a numeric 'quantile'";
        } else if (suffix != "_sum" && suffix != "_count") {
          return fmt::format("{} is not a sample name of summary {}", sample.name, family->name);
        }
        break;
      default:
        break;
    }
    // The same series twice would make the re-export invalid: keep the first.
    std::vector<std::pair<std::string, std::string>> sorted = sample.labels;
    std::sort(sorted.begin(), sorted.end());
    std::string key = sample.name;
    for (const auto& [name, value] : sorted) key.append("\xff").append(name).append("\xfe").append(value);
    if (!series_.insert(std::move(key)).second) return fmt::format("duplicate series of {}", sample.name);
    if (samples_ == limits_.max_samples) {
      out_.truncated = true;
      return fmt::format("more than {} samples", limits_.max_samples);
    }
    ++samples_;
    family->samples.push_back(std::move(sample));
    return {};
  }

  // The family a sample name belongs to: its own, or a histogram's or summary's whose
  // name it extends with _bucket, _sum or _count; an untyped one of its own otherwise.
  ScrapedFamily* FamilyOf(std::string_view sample) {
    for (std::string_view suffix : {"_bucket", "_sum", "_count"}) {
      if (!sample.ends_with(suffix)) continue;
      auto it = index_.find(sample.substr(0, sample.size() - suffix.size()));
      if (it == index_.end()) continue;
      ScrapedFamily& family = out_.families[it->second];
      if (family.type == SeriesType::kHistogram ||
          (family.type == SeriesType::kSummary && suffix != "_bucket")) {
        return &family;
      }
    }
    return &FamilyNamed(sample);
  }

  ScrapedFamily& FamilyNamed(std::string_view name) {
    auto it = index_.find(name);
    if (it != index_.end()) return out_.families[it->second];
    index_.emplace(std::string(name), out_.families.size());
    out_.families.push_back({.name = std::string(name)});
    return out_.families.back();
  }

  ScrapedMetrics& out_;
  std::map<std::string, size_t, std::less<>>& index_;
  const ParseLimits& limits_;
  std::set<std::string, std::less<>> typed_;  // families with a TYPE line
  std::set<std::string> series_;              // name + sorted labels of every sample
  size_t samples_ = 0;
};

}  // namespace

std::string_view SeriesTypeName(SeriesType type) {
  switch (type) {
    case SeriesType::kCounter:
      return "counter";
    case SeriesType::kGauge:
      return "gauge";
    case SeriesType::kHistogram:
      return "histogram";
    case SeriesType::kSummary:
      return "summary";
    case SeriesType::kUntyped:
      break;
  }
  return "untyped";
}

const std::string* ScrapedSample::Label(std::string_view name) const {
  for (const auto& [label, value] : labels) {
    if (label == name) return &value;
  }
  return nullptr;
}

const ScrapedFamily* ScrapedMetrics::Find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &families[it->second];
}

std::optional<double> ScrapedMetrics::Sum(std::string_view family) const {
  const ScrapedFamily* found = Find(family);
  if (found == nullptr) return std::nullopt;
  std::optional<double> sum;
  for (const ScrapedSample& sample : found->samples) {
    if (sample.name == found->name) sum = sum.value_or(0) + sample.value;
  }
  return sum;
}

ScrapedMetrics ParsePrometheusText(std::string_view text, const ParseLimits& limits) {
  ScrapedMetrics out;
  Parser parser(out, out.index_, limits);
  size_t number = 0;
  while (!text.empty() && !out.truncated) {
    const size_t end = std::min(text.find('\n'), text.size());
    parser.Line(text.substr(0, end), ++number);
    text.remove_prefix(std::min(end + 1, text.size()));
  }
  return out;
}

}  // namespace triplane::control
