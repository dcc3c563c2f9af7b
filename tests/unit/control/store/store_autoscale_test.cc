// Autoscale settings in the store (migration 5): kept with the spec on both back ends,
// validated, turned off, and audited as part of the spec.

#include "gmock/gmock.h"
#include "unit/control/store/store_test_fixture.h"

namespace triplane::control {
namespace {

TEST_P(StoreTest, AutoscaleSettingsAreKeptWithTheSpec) {
  ASSERT_TRUE(store_->CreateModel({.name = "m"}, kNoAudit).ok());
  ASSERT_TRUE(store_->CreateModelVersion(MakeVersion("m", "v1"), kNoAudit).ok());
  DeploymentSpec spec{.model = "m", .version = "v1", .replicas = 1};
  spec.autoscale = AutoscaleSpec{.min_replicas = 0,
                                 .max_replicas = 5,
                                 .metric = AutoscaleMetric::kKvCache,
                                 .target = 0.7,
                                 .stable_window_seconds = 30,
                                 .panic_window_seconds = 5,
                                 .panic_threshold = 3,
                                 .scale_up_cooldown_seconds = 2,
                                 .scale_down_cooldown_seconds = 40,
                                 .max_step = 2,
                                 .scale_to_zero = true};
  ASSERT_TRUE(store_->CreateDeployment("d", spec, kAdmin).ok());
  absl::StatusOr<Deployment> got = store_->GetDeployment("d");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->spec, spec);

  // What the autoscaler does: replicas only, audited as its own.
  DeploymentSpec scaled = spec;
  scaled.replicas = 3;
  ASSERT_TRUE(store_->UpdateDeploymentSpec("d", scaled, got->generation, {.actor = "autoscaler"}).ok());
  absl::StatusOr<std::vector<AuditRecord>> rows = store_->ListAudit({.actor = "autoscaler"});
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].after["replicas"], 3);
  EXPECT_EQ((*rows)[0].after["autoscale"]["metric"], "kv_cache");

  DeploymentSpec bad = scaled;
  bad.autoscale->scale_to_zero = false;  // min 0 without scale_to_zero
  EXPECT_EQ(store_->UpdateDeploymentSpec("d", bad, 0, kAdmin).status().code(), absl::StatusCode::kInvalidArgument);

  DeploymentSpec off = scaled;
  off.autoscale.reset();
  ASSERT_TRUE(store_->UpdateDeploymentSpec("d", off, 0, kAdmin).ok());
  EXPECT_FALSE(store_->GetDeployment("d")->spec.autoscale.has_value());
}

}  // namespace
}  // namespace triplane::control
