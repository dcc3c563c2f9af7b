// `triplane autoscale NAME --min 1 --max 4 [--metric in_flight] [--target 4] …` turns a
// deployment's autoscaling on or changes it (only the flags given change); `--off` turns
// it off (the replicas stay where the autoscaler left them). A thin client of PATCH
// /admin/v1/deployments/{name} with "autoscale" (docs/api.md).

#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include "cli/admin_client.h"
#include "cli/commands.h"
#include "fmt/format.h"

namespace triplane::cli {
namespace {

using nlohmann::json;

struct AutoscaleArgs {
  std::string name;
  bool off = false;
  std::optional<int32_t> min, max, stable_window, panic_window, up_cooldown, down_cooldown, max_step;
  std::optional<std::string> metric;
  std::optional<double> target, panic_threshold;
  bool scale_to_zero = false;
};

// The PATCH body: only what the flags give.
json AutoscaleBody(const AutoscaleArgs& a) {
  if (a.off) return {{"autoscale", nullptr}};
  json settings = json::object();
  auto put = [&settings](const char* field, const auto& value) {
    if (value) settings[field] = *value;
  };
  put("min_replicas", a.min);
  put("max_replicas", a.max);
  put("metric", a.metric);
  put("target", a.target);
  put("stable_window_seconds", a.stable_window);
  put("panic_window_seconds", a.panic_window);
  put("panic_threshold", a.panic_threshold);
  put("scale_up_cooldown_seconds", a.up_cooldown);
  put("scale_down_cooldown_seconds", a.down_cooldown);
  put("max_step", a.max_step);
  // Zero replicas and scaling to zero go together: either flag says both.
  if (a.scale_to_zero) {
    settings["scale_to_zero"] = true;
    settings["min_replicas"] = 0;
  } else if (a.min) {
    settings["scale_to_zero"] = *a.min == 0;
  }
  return {{"autoscale", settings}};
}

}  // namespace

std::string AutoscaleSummary(const json& autoscale) {
  if (!autoscale.is_object()) return "-";
  return fmt::format("{}-{} {} {:g}{}", autoscale.value("min_replicas", 0), autoscale.value("max_replicas", 0),
                     autoscale.value("metric", ""), autoscale.value("target", 0.0),
                     autoscale.value("scale_to_zero", false) ? " (to zero)" : "");
}

Command AddAutoscaleCommand(CLI::App& root) {
  auto args = std::make_shared<AutoscaleArgs>();
  auto flags = std::make_shared<AdminFlags>();
  CLI::App* app = root.add_subcommand("autoscale", "Turn a deployment's autoscaling on, change it, or --off");
  app->add_option("NAME", args->name, "Deployment name")->required();
  app->add_flag("--off", args->off, "Turn autoscaling off (replicas stay as they are)");
  app->add_option("--min", args->min, "Fewest replicas (0 scales to zero)")->check(CLI::Range(0, 1000));
  app->add_option("--max", args->max, "Most replicas")->check(CLI::Range(1, 1000));
  app->add_option("--metric", args->metric, "What to watch: in_flight (default), waiting or kv_cache")
      ->check(CLI::IsMember({"in_flight", "waiting", "kv_cache"}));
  app->add_option("--target", args->target, "Per replica: requests (in_flight, waiting) or a fraction (kv_cache)");
  app->add_option("--stable-window", args->stable_window, "Seconds averaged for normal decisions (60)");
  app->add_option("--panic-window", args->panic_window, "Seconds averaged in a burst (10)");
  app->add_option("--panic-threshold", args->panic_threshold, "Burst: demand this × capacity (2.0)");
  app->add_option("--scale-up-cooldown", args->up_cooldown, "Seconds after a change before scaling up (0)");
  app->add_option("--scale-down-cooldown", args->down_cooldown, "Seconds after a change before scaling down (30)");
  app->add_option("--max-step", args->max_step, "Most replicas changed per decision (0: no limit)");
  app->add_flag("--scale-to-zero", args->scale_to_zero,
                "Scale to zero when idle (the gateway holds requests until an instance is ready)");
  AddAdminFlags(*app, *flags);
  return {app, [args, flags] {
            AdminClient client(*flags);
            absl::StatusOr<json> d = client.Call(common::HttpMethod::kPatch,
                                                 "/admin/v1/deployments/" + PathSegment(args->name),
                                                 AutoscaleBody(*args));
            if (!d.ok()) return CommandFailed("autoscale", d.status());
            if (flags->json) return PrintJson(*d);
            const json& a = (*d)["autoscale"];
            if (!a.is_object()) {
              std::printf("deployment %s: autoscaling off (replicas stay at %d)\n", args->name.c_str(),
                          d->value("replicas", 0));
            } else {
              std::printf("deployment %s: %d to %d replicas, %s target %g per replica%s; now %d\n",
                          args->name.c_str(), a.value("min_replicas", 0), a.value("max_replicas", 0),
                          a.value("metric", "").c_str(), a.value("target", 0.0),
                          a.value("scale_to_zero", false) ? ", scales to zero" : "", d->value("replicas", 0));
            }
            return 0;
          }};
}

}  // namespace triplane::cli
