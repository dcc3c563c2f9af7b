// "autoscale" on deployments: set, changed field by field, validated, turned off; the
// replicas follow the range at once; the audit row of the change; wake.

#include "unit/control/admin/admin_test_fixture.h"
#include "gtest/gtest.h"

namespace triplane::control {
namespace {

using nlohmann::json;

TEST_F(AdminApiTest, AutoscaleIsSetChangedAndTurnedOff) {
  AddVersion("m", "a");
  Response created = Post("/admin/v1/deployments",
                          {{"name", "d"}, {"model", "m"}, {"autoscale", {{"min_replicas", 2}, {"max_replicas", 4}}}});
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_EQ(created.body["replicas"], 2) << "brought within [min, max]";
  const json& a = created.body["autoscale"];
  EXPECT_EQ(a["metric"], "in_flight");
  EXPECT_EQ(a["target"], 4.0);
  EXPECT_EQ(a["stable_window_seconds"], 60);
  EXPECT_EQ(a["panic_window_seconds"], 10);
  EXPECT_EQ(a["panic_threshold"], 2.0);
  EXPECT_EQ(a["scale_up_cooldown_seconds"], 0);
  EXPECT_EQ(a["scale_down_cooldown_seconds"], 30);
  EXPECT_EQ(a["max_step"], 0);
  EXPECT_EQ(a["scale_to_zero"], false);

  Response changed = Patch("/admin/v1/deployments/d", {{"autoscale", {{"metric", "waiting"}, {"max_replicas", 6}}}});
  ASSERT_EQ(changed.status, 200) << changed.body;
  EXPECT_EQ(changed.body["autoscale"]["min_replicas"], 2) << "not given: kept";
  EXPECT_EQ(changed.body["autoscale"]["max_replicas"], 6);
  EXPECT_EQ(changed.body["autoscale"]["target"], 2.0) << "the waiting metric's default";
  EXPECT_EQ(Get("/admin/v1/deployments/d").body["autoscale"], changed.body["autoscale"]);

  Response zero_alone = Patch("/admin/v1/deployments/d", {{"autoscale", {{"min_replicas", 0}}}});
  EXPECT_EQ(zero_alone.status, 400);
  EXPECT_EQ(zero_alone.body["error"]["param"], "autoscale");
  EXPECT_EQ(Patch("/admin/v1/deployments/d", {{"autoscale", {{"metric", "gpu"}}}}).status, 400);
  EXPECT_EQ(Patch("/admin/v1/deployments/d", {{"autoscale", {{"target", "4"}}}}).status, 400);
  Response to_zero =
      Patch("/admin/v1/deployments/d", {{"autoscale", {{"min_replicas", 0}, {"scale_to_zero", true}}}});
  ASSERT_EQ(to_zero.status, 200) << to_zero.body;
  EXPECT_EQ(to_zero.body["autoscale"]["scale_to_zero"], true);

  Response wake = Post("/admin/v1/deployments/d/wake", json::object());
  EXPECT_EQ(wake.status, 200) << wake.body;
  EXPECT_EQ(Post("/admin/v1/deployments/none/wake", json::object()).status, 404);

  Response off = Patch("/admin/v1/deployments/d", {{"autoscale", nullptr}});
  ASSERT_EQ(off.status, 200) << off.body;
  EXPECT_TRUE(off.body["autoscale"].is_null());
  EXPECT_EQ(off.body["replicas"], 2) << "replicas stay where they were";

  // On again with one bound: the other follows it.
  Response min_only = Patch("/admin/v1/deployments/d", {{"autoscale", {{"min_replicas", 3}}}});
  ASSERT_EQ(min_only.status, 200) << min_only.body;
  EXPECT_EQ(min_only.body["autoscale"]["max_replicas"], 3);
  EXPECT_EQ(min_only.body["replicas"], 3);

  // The settings are part of the audited spec.
  Response audit = Get("/admin/v1/audit?action=deployment.update&target=deployment/d");
  ASSERT_FALSE(audit.body["data"].empty());
  EXPECT_TRUE(audit.body["data"][0]["after"]["autoscale"].is_object());
}

}  // namespace
}  // namespace triplane::control
