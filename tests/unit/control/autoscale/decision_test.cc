// DecideReplicas with a fake clock and made-up samples: stable and panic windows, panic
// (entered at 2× capacity, never scaling down inside it), cooldowns, max step, clamps,
// and zero both ways.

#include "control/autoscale/decision.h"

#include <gtest/gtest.h>

namespace triplane::control {
namespace {

const absl::Time kStart = absl::FromUnixSeconds(1'800'000'000);

class DecisionTest : public ::testing::Test {
 protected:
  DecisionTest() {
    spec_.min_replicas = 1;
    spec_.max_replicas = 10;
    spec_.target = 4;
    spec_.stable_window_seconds = 60;
    spec_.panic_window_seconds = 10;
    spec_.scale_up_cooldown_seconds = 0;
    spec_.scale_down_cooldown_seconds = 0;
  }

  // One sample a second of `value` for `seconds`, then a decision at the last one.
  AutoscaleDecision Run(double value, int seconds, bool woken = false) {
    AutoscaleDecision decision;
    for (int i = 0; i < seconds; ++i) {
      now_ += absl::Seconds(1);
      samples_.push_back({.time = now_, .value = value});
      decision = DecideReplicas({.spec = &spec_,
                                 .now = now_,
                                 .replicas = replicas_,
                                 .ready_replicas = ready_ >= 0 ? ready_ : replicas_,
                                 .samples = &samples_,
                                 .woken = woken},
                                state_);
      replicas_ = decision.replicas;
    }
    return decision;
  }

  AutoscaleSpec spec_;
  AutoscaleState state_;
  std::deque<DemandSample> samples_;
  absl::Time now_ = kStart;
  int32_t replicas_ = 1;
  int32_t ready_ = -1;  // ready replicas; -1: all of them (instances start at once)
};

TEST_F(DecisionTest, StableDemandSetsReplicasAtTheTargetPerReplica) {
  // 6 in flight with target 4 is under the panic threshold (2 × 4 for one replica).
  AutoscaleDecision d = Run(6, 70);
  EXPECT_EQ(d.replicas, 2);
  EXPECT_FALSE(d.panic);
  EXPECT_EQ(replicas_, 2);
}

TEST_F(DecisionTest, ReasonNamesTheMetricTheWindowAndTheTarget) {
  AutoscaleDecision d;
  for (int i = 0; i < 3; ++i) {
    now_ += absl::Seconds(1);
    samples_.push_back({.time = now_, .value = 6});
  }
  d = DecideReplicas({.spec = &spec_, .now = now_, .replicas = 1, .ready_replicas = 1, .samples = &samples_}, state_);
  EXPECT_EQ(d.replicas, 2);
  EXPECT_EQ(d.reason, "in-flight 6.0 over 60 s, target 4 per replica");
}

TEST_F(DecisionTest, PanicStartsAtTwiceTheCapacityAndScalesByThePanicWindow) {
  ready_ = 1;  // the new replicas are still starting
  // 7 on one ready replica is below 2 × 4: no panic, the stable window decides.
  AutoscaleDecision d = Run(7, 3);
  EXPECT_FALSE(d.panic);
  EXPECT_EQ(d.replicas, 2);
  // A burst: the panic window's mean (7, 7, 7, 40: 15.25) is over 8, so panic, and
  // the panic window decides: ceil(15.25 / 4) = 4 replicas.
  d = Run(40, 1);
  EXPECT_TRUE(d.panic);
  EXPECT_EQ(d.replicas, 4);
  EXPECT_NE(d.reason.find("in panic"), std::string::npos) << d.reason;
}

TEST_F(DecisionTest, NeverScalesDownInPanic) {
  ready_ = 1;
  Run(40, 3);  // panic: 10 replicas
  ASSERT_EQ(replicas_, 10);
  // Demand drops to nothing: still in panic for a stable window, replicas stay.
  AutoscaleDecision d = Run(0, 59);
  EXPECT_TRUE(d.panic);
  EXPECT_EQ(d.replicas, 10);
  // A whole stable window after the last over-threshold sample, panic is over and the
  // stable window (all zeros now, plus the burst gone) brings it down to the minimum.
  d = Run(0, 62);
  EXPECT_FALSE(d.panic);
  EXPECT_EQ(d.replicas, 1);
}

TEST_F(DecisionTest, ScaleDownWaitsUntilTheStableWindowIsCovered) {
  replicas_ = 3;
  // No demand, but only 30 s of samples: too little known to scale down.
  AutoscaleDecision d = Run(0, 30);
  EXPECT_EQ(d.replicas, 3);
  d = Run(0, 31);
  EXPECT_EQ(d.replicas, 1);
}

TEST_F(DecisionTest, CooldownsHoldChangesBack) {
  spec_.scale_up_cooldown_seconds = 20;
  spec_.scale_down_cooldown_seconds = 30;
  state_.last_change = kStart;  // just changed
  AutoscaleDecision d = Run(6, 10);
  EXPECT_EQ(d.replicas, 1) << "within the scale-up cooldown";
  d = Run(6, 11);
  EXPECT_EQ(d.replicas, 2);
  // Demand gone: the stable window must be covered and 30 s pass since the change.
  d = Run(0, 25);
  EXPECT_EQ(d.replicas, 2) << "within the scale-down cooldown";
  d = Run(0, 60);
  EXPECT_EQ(d.replicas, 1);
}

TEST_F(DecisionTest, MaxStepLimitsEachDecision) {
  spec_.max_step = 2;
  spec_.panic_threshold = 100;  // no panic: the stable window decides
  AutoscaleDecision d = Run(40, 1);
  EXPECT_EQ(d.replicas, 3);
  d = Run(40, 1);
  EXPECT_EQ(d.replicas, 5);
}

TEST_F(DecisionTest, ClampsToMinAndMax) {
  spec_.min_replicas = 2;
  spec_.max_replicas = 4;
  replicas_ = 2;
  AutoscaleDecision d = Run(400, 5);
  EXPECT_EQ(d.replicas, 4);
  d = Run(0, 130);
  EXPECT_EQ(d.replicas, 2);
  // Settings changed under a running deployment: out of range is corrected at once.
  spec_.max_replicas = 1;
  spec_.min_replicas = 1;
  state_.last_change = now_;
  spec_.scale_down_cooldown_seconds = 600;
  d = Run(0, 1);
  EXPECT_EQ(d.replicas, 1);
}

TEST_F(DecisionTest, NoZeroWithoutScaleToZero) {
  AutoscaleDecision d = Run(0, 200);
  EXPECT_EQ(d.replicas, 1);
}

TEST_F(DecisionTest, ScalesToZeroOnlyAfterAWholeStableWindowWithoutDemand) {
  spec_.min_replicas = 0;
  spec_.scale_to_zero = true;
  Run(1, 30);
  ASSERT_EQ(replicas_, 1);
  // 59 s without demand: the window still holds the last request.
  AutoscaleDecision d = Run(0, 59);
  EXPECT_EQ(d.replicas, 1);
  d = Run(0, 2);
  EXPECT_EQ(d.replicas, 0);
  EXPECT_EQ(d.reason, "no demand for 60 s");
}

TEST_F(DecisionTest, WakesFromZeroAtOnceWhateverTheCooldown) {
  spec_.min_replicas = 0;
  spec_.scale_to_zero = true;
  spec_.scale_up_cooldown_seconds = 600;
  replicas_ = 0;
  Run(0, 100);
  ASSERT_EQ(replicas_, 0);
  state_.last_change = now_;
  AutoscaleDecision d = Run(0, 1, /*woken=*/true);
  EXPECT_EQ(d.replicas, 1);
  EXPECT_EQ(d.reason, "woken by a request");
}

TEST_F(DecisionTest, WokenDeploymentIsNotPutBackToSleep) {
  spec_.min_replicas = 0;
  spec_.scale_to_zero = true;
  Run(0, 100, /*woken=*/true);
  EXPECT_EQ(replicas_, 1);
}

TEST_F(DecisionTest, NoSamplesNoChange) {
  replicas_ = 3;
  now_ += absl::Seconds(100);
  AutoscaleDecision d = DecideReplicas(
      {.spec = &spec_, .now = now_, .replicas = 3, .ready_replicas = 3, .samples = &samples_}, state_);
  EXPECT_EQ(d.replicas, 3);
}

TEST(AutoscaleSpecTest, ValidatesRangesAndScaleToZero) {
  AutoscaleSpec spec{.min_replicas = 1, .max_replicas = 3};
  EXPECT_TRUE(ValidateAutoscale(spec).ok());
  spec.min_replicas = 0;
  EXPECT_FALSE(ValidateAutoscale(spec).ok()) << "zero needs scale_to_zero";
  spec.scale_to_zero = true;
  EXPECT_TRUE(ValidateAutoscale(spec).ok());
  spec.min_replicas = 4;
  EXPECT_FALSE(ValidateAutoscale(spec).ok());
  spec = {.min_replicas = 1, .max_replicas = 2, .metric = AutoscaleMetric::kKvCache, .target = 1.5};
  EXPECT_FALSE(ValidateAutoscale(spec).ok()) << "a KV target is a fraction";
  spec = {.min_replicas = 1, .max_replicas = 2, .panic_window_seconds = 61};
  EXPECT_FALSE(ValidateAutoscale(spec).ok()) << "panic window longer than the stable one";
}

TEST(AutoscaleSpecTest, JsonChangesOnlyTheFieldsGiven) {
  AutoscaleSpec spec{.min_replicas = 1, .max_replicas = 3, .target = 6};
  ASSERT_TRUE(ApplyAutoscaleJson({{"max_replicas", 5}, {"stable_window_seconds", 20}}, spec).ok());
  EXPECT_EQ(spec.max_replicas, 5);
  EXPECT_EQ(spec.stable_window_seconds, 20);
  EXPECT_EQ(spec.target, 6);
  ASSERT_TRUE(ApplyAutoscaleJson({{"metric", "kv_cache"}}, spec).ok());
  EXPECT_EQ(spec.metric, AutoscaleMetric::kKvCache);
  EXPECT_DOUBLE_EQ(spec.target, 0.8) << "a new metric without a target gets its default";
  EXPECT_FALSE(ApplyAutoscaleJson({{"metric", "gpu_utilization"}}, spec).ok());
  EXPECT_FALSE(ApplyAutoscaleJson({{"max_replicas", "3"}}, spec).ok());
  EXPECT_FALSE(ApplyAutoscaleJson({{"replicas", 3}}, spec).ok());
  AutoscaleSpec round_trip;
  ASSERT_TRUE(ApplyAutoscaleJson(ToJson(spec), round_trip).ok());
  EXPECT_EQ(round_trip, spec);
}

}  // namespace
}  // namespace triplane::control
