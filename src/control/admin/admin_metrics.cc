// Admin API: the monitoring center's recent series (docs/api.md, "Metrics"), for the
// console's live charts.

#include <cmath>
#include <functional>

#include "common/status_macros.h"
#include "control/admin/admin_internal.h"

namespace triplane::control::admin_internal {

using common::HttpMethod;
using nlohmann::json;

namespace {

constexpr int64_t kDefaultWindowSeconds = 900;
constexpr int64_t kMaxWindowSeconds = 7 * 24 * 3600;  // asked for; served up to the retention

json Seconds(absl::Duration d) {
  const double seconds = absl::ToDoubleSeconds(d);
  if (seconds == std::floor(seconds)) return static_cast<int64_t>(seconds);
  return seconds;
}

json Points(const std::vector<MetricsPoint>& points) {
  json out = json::array();
  for (const MetricsPoint& point : points) out.push_back(ToJson(point));
  return out;
}

// {"instance" (instances only), "deployment", "model", "version", "interval_seconds", "points"}
json SeriesJson(const MetricsSeries& series, const MetricsHistory& metrics) {
  json out = json::object();
  if (!series.labels.instance.empty()) out["instance"] = series.labels.instance;
  out["deployment"] = series.labels.deployment;
  out["model"] = series.labels.model;
  out["version"] = series.labels.version;
  out["interval_seconds"] = Seconds(metrics.interval());
  out["points"] = Points(series.points);
  return out;
}

absl::StatusOr<absl::Duration> Window(const MetricsHistory& metrics, const Call& call) {
  TP_ASSIGN_OR_RETURN(std::optional<int64_t> seconds,
                      QueryInt(call.request, "window", 1, kMaxWindowSeconds));
  return std::min(absl::Seconds(seconds.value_or(kDefaultWindowSeconds)), metrics.retention());
}

Result ListDeployments(const MetricsHistory& metrics) {
  json data = json::array();
  for (const DeploymentMetricsSummary& d : metrics.Deployments()) {
    data.push_back({{"deployment", d.labels.deployment},
                    {"model", d.labels.model},
                    {"version", d.labels.version},
                    {"instances", d.instances},
                    {"latest", d.latest ? ToJson(*d.latest) : json(nullptr)}});
  }
  return Ok({{"interval_seconds", Seconds(metrics.interval())}, {"data", std::move(data)}});
}

// The series `find` returns for the query's window. When it has none, `stored` looks the
// object up in the store: one made since the last round has no points yet, an unknown
// one is a 404.
Result SeriesReply(const MetricsHistory& metrics, const Call& call,
                   const std::function<std::optional<MetricsSeries>(absl::Duration)>& find,
                   const std::function<absl::StatusOr<SeriesLabels>()>& stored) {
  TP_ASSIGN_OR_RETURN(absl::Duration window, Window(metrics, call));
  std::optional<MetricsSeries> series = find(window);
  if (!series) {
    TP_ASSIGN_OR_RETURN(SeriesLabels labels, stored());
    series = MetricsSeries{.labels = std::move(labels)};
  }
  return Ok(SeriesJson(*series, metrics));
}

Result DeploymentSeries(Store& store, const MetricsHistory& metrics, const Call& call) {
  const std::string name = PathParam(call, "name");
  return SeriesReply(
      metrics, call, [&](absl::Duration window) { return metrics.Deployment(name, window, absl::Now()); },
      [&]() -> absl::StatusOr<SeriesLabels> {
        TP_ASSIGN_OR_RETURN(Deployment d, store.GetDeployment(name));
        return SeriesLabels{.deployment = d.name, .model = d.spec.model, .version = d.spec.version};
      });
}

Result InstanceSeries(Store& store, const MetricsHistory& metrics, const Call& call) {
  const std::string id = PathParam(call, "id");
  return SeriesReply(
      metrics, call, [&](absl::Duration window) { return metrics.Instance(id, window, absl::Now()); },
      [&]() -> absl::StatusOr<SeriesLabels> {
        TP_ASSIGN_OR_RETURN(Instance i, store.GetInstance(id));
        return SeriesLabels{.deployment = i.deployment, .model = i.model, .version = i.version, .instance = i.id};
      });
}

}  // namespace

std::vector<Route> MetricsRoutes(const Services& services) {
  if (services.metrics == nullptr) return {};
  Store& store = services.store;
  const MetricsHistory& metrics = *services.metrics;
  return {
      {HttpMethod::kGet, "/admin/v1/metrics/deployments",
       [&metrics](const Call&) { return ListDeployments(metrics); }},
      {HttpMethod::kGet, "/admin/v1/metrics/deployments/{name}",
       [&store, &metrics](const Call& call) { return DeploymentSeries(store, metrics, call); }},
      {HttpMethod::kGet, "/admin/v1/metrics/instances/{id}",
       [&store, &metrics](const Call& call) { return InstanceSeries(store, metrics, call); }},
  };
}

}  // namespace triplane::control::admin_internal
