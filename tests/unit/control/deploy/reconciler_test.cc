// The reconciler against a fake provider (instances moved between states by hand) and a
// real SQLite store, with an injected clock for backoff and start timeouts.

#include "control/deploy/reconciler.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/sha256.h"
#include "control/deploy/provider.h"
#include "control/store/store_factory.h"
#include "fmt/format.h"
#include "gtest/gtest.h"

namespace triplane::control {
namespace {

#define TP_ASSERT_OK(expr)                       \
  do {                                           \
    const ::absl::Status tp_s_ = (expr);         \
    ASSERT_TRUE(tp_s_.ok()) << tp_s_.ToString(); \
  } while (false)

// A Provider whose instances are table rows the test moves between states by hand
// (ReadyAll, Set, FinishStops); every call is recorded. Thread-safe.

class FakeProvider : public Provider {
 public:
  static constexpr std::string_view kName = "fake";

  std::string_view name() const override { return kName; }

  Resources Capacity() const override {
    absl::MutexLock lock(&mu_);
    return capacity_;
  }

  // One core per thread (1 when unset) and the model's bytes.
  Resources Demand(const InstanceLaunch& launch) const override {
    return {.cores = launch.engine.threads > 0 ? launch.engine.threads : 1,
            .memory_bytes = launch.model_bytes};
  }

  absl::StatusOr<Instance> Start(const InstanceLaunch& launch) override {
    absl::MutexLock lock(&mu_);
    if (!start_error_.ok()) return start_error_;
    launches_.push_back(launch);
    const int32_t port = next_port_++;
    table_[launch.id] = {.state = InstanceState::kStarting, .host = "127.0.0.1", .port = port,
                         .pid = port};
    return Instance{.id = launch.id,
                    .deployment = launch.deployment,
                    .model = launch.model,
                    .version = launch.version,
                    .provider = std::string(kName),
                    .host = "127.0.0.1",
                    .port = port,
                    .pid = port,
                    .state = InstanceState::kStarting};
  }

  absl::StatusOr<InstanceObservation> Observe(std::string_view id) override {
    absl::MutexLock lock(&mu_);
    auto it = table_.find(std::string(id));
    if (it == table_.end()) return absl::NotFoundError(fmt::format("no instance {}", id));
    return it->second;
  }

  void Stop(std::string_view id, absl::Duration) override {
    absl::MutexLock lock(&mu_);
    stops_.emplace_back(id);
    auto it = table_.find(std::string(id));
    if (it != table_.end() && !Gone(it->second.state)) it->second.state = InstanceState::kDraining;
  }

  void Kill(std::string_view id) override {
    absl::MutexLock lock(&mu_);
    kills_.emplace_back(id);
    auto it = table_.find(std::string(id));
    if (it != table_.end()) it->second.state = InstanceState::kStopped;
  }

  absl::Status Adopt(const Instance& instance) override {
    absl::MutexLock lock(&mu_);
    adopt_calls_.push_back(instance.id);
    if (!adoptable_.contains(instance.id)) return absl::NotFoundError("gone");
    table_[instance.id] = {.state = InstanceState::kReady, .host = instance.host,
                           .port = instance.port, .pid = instance.pid};
    return absl::OkStatus();
  }

  void StopAll(absl::Duration) override {
    absl::MutexLock lock(&mu_);
    ++stop_all_calls_;
    for (auto& [id, obs] : table_) {
      if (!Gone(obs.state)) obs.state = InstanceState::kStopped;
    }
  }

  // ---- Test controls ----

  void SetCapacity(Resources capacity) {
    absl::MutexLock lock(&mu_);
    capacity_ = capacity;
  }
  void SetStartError(absl::Status status) {
    absl::MutexLock lock(&mu_);
    start_error_ = std::move(status);
  }
  void AllowAdoption(const std::string& id) {
    absl::MutexLock lock(&mu_);
    adoptable_.insert(id);
  }
  void Set(const std::string& id, InstanceState state, std::string last_error = "") {
    absl::MutexLock lock(&mu_);
    table_[id].state = state;
    table_[id].last_error = std::move(last_error);
  }
  void Forget(const std::string& id) {
    absl::MutexLock lock(&mu_);
    table_.erase(id);
  }
  // Every starting instance becomes ready.
  void ReadyAll() { Move(InstanceState::kStarting, InstanceState::kReady); }
  // Every draining instance has stopped.
  void FinishStops() { Move(InstanceState::kDraining, InstanceState::kStopped); }

  std::vector<InstanceLaunch> launches() const {
    absl::MutexLock lock(&mu_);
    return launches_;
  }
  std::vector<std::string> stops() const {
    absl::MutexLock lock(&mu_);
    return stops_;
  }
  std::vector<std::string> kills() const {
    absl::MutexLock lock(&mu_);
    return kills_;
  }
  std::vector<std::string> adopt_calls() const {
    absl::MutexLock lock(&mu_);
    return adopt_calls_;
  }
  int stop_all_calls() const {
    absl::MutexLock lock(&mu_);
    return stop_all_calls_;
  }
  InstanceState state(const std::string& id) const {
    absl::MutexLock lock(&mu_);
    return table_.at(id).state;
  }

 private:
  static bool Gone(InstanceState s) {
    return s == InstanceState::kStopped || s == InstanceState::kFailed;
  }
  void Move(InstanceState from, InstanceState to) {
    absl::MutexLock lock(&mu_);
    for (auto& [id, obs] : table_) {
      if (obs.state == from) obs.state = to;
    }
  }

  mutable absl::Mutex mu_;
  Resources capacity_ ABSL_GUARDED_BY(mu_) = {.cores = 8, .memory_bytes = int64_t{64} << 30};
  absl::Status start_error_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, InstanceObservation> table_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> adoptable_ ABSL_GUARDED_BY(mu_);
  std::vector<InstanceLaunch> launches_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> stops_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> kills_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> adopt_calls_ ABSL_GUARDED_BY(mu_);
  int stop_all_calls_ ABSL_GUARDED_BY(mu_) = 0;
  int32_t next_port_ ABSL_GUARDED_BY(mu_) = 20000;
};


class ReconcilerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "triplane-reconciler-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    absl::StatusOr<std::unique_ptr<Store>> store =
        OpenStore("sqlite:" + (dir_ / "triplane.db").string(), dir_.string());
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = *std::move(store);
    ASSERT_TRUE(store_->CreateModel({.name = "m"}, {}).ok());
    for (const std::string version : {"v1", "v2"}) AddVersion(version);
  }

  void TearDown() override {
    reconciler_.reset();
    store_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  void AddVersion(const std::string& version) {
    ModelVersion v{.model = "m",
                   .version = version,
                   .file_path = (dir_ / (version + ".gguf")).string(),
                   .size_bytes = int64_t{1} << 30};
    std::ofstream(v.file_path) << "not really a model";
    v.sha256 = common::Sha256Hex(v.file_path);
    absl::StatusOr<ModelVersion> created = store_->CreateModelVersion(v, {});
    ASSERT_TRUE(created.ok()) << created.status().ToString();
  }

  Reconciler& reconciler() {
    if (reconciler_ == nullptr) {
      reconciler_ = std::make_unique<Reconciler>(
          *store_, provider_,
          ReconcilerOptions{.interval = absl::Hours(1),
                            .initial_backoff = absl::Seconds(10),
                            .max_backoff = absl::Seconds(40),
                            .start_timeout = absl::Seconds(300),
                            .clock = [this] {
                              absl::MutexLock lock(&clock_mu_);
                              return now_;
                            },
                            .unroute_delay = unroute_delay_});
    }
    return *reconciler_;
  }

  void Advance(absl::Duration d) {
    absl::MutexLock lock(&clock_mu_);
    now_ += d;
  }

  void Deploy(const std::string& name, int32_t replicas, const std::string& version = "v1",
              EngineSettings engine = {}) {
    DeploymentSpec spec{.model = "m", .version = version, .replicas = replicas, .engine = engine};
    if (store_->GetDeployment(name).ok()) {
      ASSERT_TRUE(store_->UpdateDeploymentSpec(name, spec, 0, {}).ok());
    } else {
      ASSERT_TRUE(store_->CreateDeployment(name, spec, {}).ok());
    }
  }

  Deployment Get(const std::string& name) {
    absl::StatusOr<Deployment> d = store_->GetDeployment(name);
    EXPECT_TRUE(d.ok()) << d.status().ToString();
    return d.ok() ? *d : Deployment{};
  }

  std::vector<Instance> Rows(const std::string& deployment = "") {
    absl::StatusOr<std::vector<Instance>> rows = store_->ListInstances(deployment);
    EXPECT_TRUE(rows.ok()) << rows.status().ToString();
    return rows.ok() ? *rows : std::vector<Instance>{};
  }

  Instance Row(const std::string& id) {
    absl::StatusOr<Instance> row = store_->GetInstance(id);
    EXPECT_TRUE(row.ok()) << id << ": " << row.status().ToString();
    return row.ok() ? *row : Instance{};
  }

  std::vector<std::string> LaunchIds() {
    std::vector<std::string> ids;
    for (const InstanceLaunch& l : provider_.launches()) ids.push_back(l.id);
    return ids;
  }

  // Deploys `replicas` of v1 and makes them all ready.
  void DeployReady(const std::string& name, int32_t replicas) {
    Deploy(name, replicas);
    reconciler().ReconcileOnce();
    provider_.ReadyAll();
    reconciler().ReconcileOnce();
  }

  // Instance `id` is recorded as failed with an error containing `error`; once the first
  // backoff has passed a replacement starts and the failed row goes.
  void ExpectFailedThenReplaced(const std::string& id, const std::string& error) {
    const Instance row = Row(id);
    EXPECT_EQ(row.state, InstanceState::kFailed);
    EXPECT_NE(row.last_error.find(error), std::string::npos) << row.last_error;
    const size_t launched = provider_.launches().size();
    Advance(absl::Seconds(10));
    reconciler().ReconcileOnce();
    EXPECT_EQ(provider_.launches().size(), launched + 1);
    EXPECT_FALSE(store_->GetInstance(id).ok());
  }

  std::filesystem::path dir_;
  std::unique_ptr<Store> store_;
  FakeProvider provider_;
  absl::Mutex clock_mu_;
  absl::Time now_ ABSL_GUARDED_BY(clock_mu_) = absl::FromUnixSeconds(1767225600);
  std::unique_ptr<Reconciler> reconciler_;
  absl::Duration unroute_delay_ = absl::ZeroDuration();
};

TEST_F(ReconcilerTest, StartsReplicasAndRunsOnceAllAreReady) {
  Deploy("chat", 2);
  reconciler().ReconcileOnce();
  ASSERT_EQ(provider_.launches().size(), 2u);
  const InstanceLaunch launch = provider_.launches()[0];
  EXPECT_EQ(launch.deployment, "chat");
  EXPECT_EQ(launch.model, "m");
  EXPECT_EQ(launch.version, "v1");
  EXPECT_EQ(launch.model_path, (dir_ / "v1.gguf").string());
  EXPECT_EQ(launch.model_bytes, int64_t{1} << 30);
  EXPECT_TRUE(std::regex_match(launch.id, std::regex("chat-[a-z0-9]{6}"))) << launch.id;
  EXPECT_NE(provider_.launches()[0].id, provider_.launches()[1].id);
  std::vector<Instance> rows = Rows("chat");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].state, InstanceState::kStarting);
  EXPECT_EQ(rows[0].provider, "fake");
  EXPECT_EQ(Get("chat").status.phase, DeploymentPhase::kProgressing);
  EXPECT_TRUE(reconciler().ReadyEndpoints().empty());

  provider_.ReadyAll();
  reconciler().ReconcileOnce();
  const Deployment d = Get("chat");
  EXPECT_EQ(d.status.phase, DeploymentPhase::kRunning);
  EXPECT_EQ(d.status.ready_replicas, 2);
  EXPECT_EQ(d.status.observed_generation, d.generation);
  EXPECT_EQ(d.status.reason, "");
  for (const Instance& row : Rows("chat")) EXPECT_EQ(row.state, InstanceState::kReady);
  std::vector<Endpoint> endpoints = reconciler().ReadyEndpoints("m");
  ASSERT_EQ(endpoints.size(), 2u);
  EXPECT_EQ(endpoints[0].url, fmt::format("http://127.0.0.1:{}", Row(endpoints[0].instance_id).port));
  EXPECT_EQ(endpoints[0].deployment, "chat");
  EXPECT_EQ(endpoints[0].version, "v1");
  EXPECT_TRUE(reconciler().ReadyEndpoints("other").empty());

  reconciler().ReconcileOnce();  // converged: nothing more happens
  EXPECT_EQ(provider_.launches().size(), 2u);
  EXPECT_TRUE(provider_.stops().empty());
}

TEST_F(ReconcilerTest, InstanceIdsOfNestedDeploymentNamesAreValidNames) {
  Deploy("org/chat", 1);
  reconciler().ReconcileOnce();
  ASSERT_EQ(provider_.launches().size(), 1u);
  EXPECT_TRUE(std::regex_match(provider_.launches()[0].id, std::regex("org/chat-[a-z0-9]{6}")));
  EXPECT_EQ(Rows("org/chat").size(), 1u);
}

TEST_F(ReconcilerTest, NeverOvercommitsAndSaysWhatDoesNotFit) {
  provider_.SetCapacity({.cores = 3, .memory_bytes = int64_t{22} << 30});
  Deploy("big", 1, "v1", {.threads = 2});
  reconciler().ReconcileOnce();
  ASSERT_EQ(provider_.launches().size(), 1u);
  Deploy("small", 2, "v1", {.threads = 1});
  reconciler().ReconcileOnce();
  // 2 cores used by `big`: one instance of `small` fits, the second does not.
  EXPECT_EQ(provider_.launches().size(), 2u);
  const Deployment small = Get("small");
  EXPECT_EQ(small.status.phase, DeploymentPhase::kPending);
  EXPECT_EQ(small.status.reason,
            "instance needs 1 core and 1.0 GiB; free: 0 cores and 20.0 GiB of 3 cores and 22.0 GiB");
  reconciler().ReconcileOnce();
  EXPECT_EQ(provider_.launches().size(), 2u);

  // A draining instance still holds its resources until it has stopped.
  Deploy("big", 0, "v1", {.threads = 2});
  reconciler().ReconcileOnce();
  EXPECT_EQ(provider_.stops().size(), 1u);
  EXPECT_EQ(provider_.launches().size(), 2u);
  provider_.FinishStops();
  reconciler().ReconcileOnce();
  EXPECT_EQ(provider_.launches().size(), 3u);
  EXPECT_NE(Get("small").status.phase, DeploymentPhase::kPending);
  EXPECT_EQ(Get("big").status.phase, DeploymentPhase::kRunning);  // 0 replicas, none left
  EXPECT_TRUE(Rows("big").empty());
}

TEST_F(ReconcilerTest, ReplacesFailedInstancesWithExponentialBackoff) {
  DeployReady("chat", 1);
  const std::string first = LaunchIds().at(0);

  provider_.Set(first, InstanceState::kFailed, "killed by signal 9 (Killed): loading");
  reconciler().ReconcileOnce();
  Instance failed = Row(first);  // kept, with its error, until replaced
  EXPECT_EQ(failed.state, InstanceState::kFailed);
  EXPECT_EQ(failed.last_error, "killed by signal 9 (Killed): loading");
  EXPECT_EQ(provider_.launches().size(), 1u);
  Deployment d = Get("chat");
  EXPECT_EQ(d.status.phase, DeploymentPhase::kProgressing);
  EXPECT_NE(d.status.reason.find("restarting after a 10s backoff"), std::string::npos) << d.status.reason;
  EXPECT_NE(d.status.reason.find("killed by signal 9"), std::string::npos) << d.status.reason;
  EXPECT_TRUE(reconciler().ReadyEndpoints().empty());

  Advance(absl::Seconds(9));
  reconciler().ReconcileOnce();
  EXPECT_EQ(provider_.launches().size(), 1u);
  Advance(absl::Seconds(1));
  reconciler().ReconcileOnce();
  ASSERT_EQ(provider_.launches().size(), 2u);
  const std::string second = LaunchIds().at(1);
  EXPECT_EQ(Row(second).restarts, 1);
  EXPECT_FALSE(store_->GetInstance(first).ok());  // replaced: its row is gone

  // The second failure in a row waits twice as long.
  provider_.Set(second, InstanceState::kFailed, "exit code 1: bad");
  reconciler().ReconcileOnce();
  Advance(absl::Seconds(19));
  reconciler().ReconcileOnce();
  EXPECT_EQ(provider_.launches().size(), 2u);
  Advance(absl::Seconds(1));
  reconciler().ReconcileOnce();
  ASSERT_EQ(provider_.launches().size(), 3u);
  EXPECT_EQ(Row(LaunchIds().at(2)).restarts, 2);
}

TEST_F(ReconcilerTest, BackoffIsCappedAndResetAfterRunningForMaxBackoff) {
  Deploy("chat", 1);
  reconciler().ReconcileOnce();
  for (int failure = 1; failure <= 4; ++failure) {  // 10, 20, 40, 40 (capped) seconds
    provider_.Set(LaunchIds().back(), InstanceState::kFailed, "exit code 1");
    reconciler().ReconcileOnce();
    Advance(std::min(absl::Seconds(10) * (1 << (failure - 1)), absl::Seconds(40)));
    reconciler().ReconcileOnce();
    ASSERT_EQ(provider_.launches().size(), static_cast<size_t>(failure + 1)) << failure;
  }
  provider_.ReadyAll();
  Advance(absl::Seconds(40));
  reconciler().ReconcileOnce();  // running long enough after the last failure: reset
  EXPECT_EQ(Get("chat").status.phase, DeploymentPhase::kRunning);
  provider_.Set(LaunchIds().back(), InstanceState::kFailed, "exit code 1");
  reconciler().ReconcileOnce();
  Advance(absl::Seconds(10));
  reconciler().ReconcileOnce();
  EXPECT_EQ(provider_.launches().size(), 6u);
  EXPECT_EQ(Row(LaunchIds().back()).restarts, 5);
}

TEST_F(ReconcilerTest, DegradedWhileSomeReadyAndAFailedOneWaitsForBackoff) {
  DeployReady("chat", 2);
  provider_.Set(LaunchIds().at(0), InstanceState::kFailed, "exit code 3: oops");
  reconciler().ReconcileOnce();
  const Deployment d = Get("chat");
  EXPECT_EQ(d.status.phase, DeploymentPhase::kDegraded);
  EXPECT_EQ(d.status.ready_replicas, 1);
  EXPECT_NE(d.status.reason.find("1 of 2 replicas ready"), std::string::npos) << d.status.reason;
  EXPECT_EQ(reconciler().ReadyEndpoints().size(), 1u);
}

TEST_F(ReconcilerTest, ScaleDownStopsNotReadyFirstThenTheNewest) {
  DeployReady("chat", 2);
  Deploy("chat", 4);
  reconciler().ReconcileOnce();
  const std::vector<std::string> ids = LaunchIds();
  ASSERT_EQ(ids.size(), 4u);
  provider_.Set(ids[2], InstanceState::kReady);  // ids[3] is still starting

  Deploy("chat", 1);
  reconciler().ReconcileOnce();
  EXPECT_EQ(provider_.stops(), (std::vector<std::string>{ids[3], ids[2], ids[1]}));
  EXPECT_EQ(Row(ids[1]).state, InstanceState::kDraining);
  EXPECT_EQ(Get("chat").status.phase, DeploymentPhase::kRunning);
  ASSERT_EQ(reconciler().ReadyEndpoints().size(), 1u);
  EXPECT_EQ(reconciler().ReadyEndpoints()[0].instance_id, ids[0]);

  provider_.FinishStops();
  reconciler().ReconcileOnce();
  std::vector<Instance> rows = Rows("chat");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].id, ids[0]);
  EXPECT_EQ(provider_.launches().size(), 4u);  // a stop asked for is no failure
}

TEST_F(ReconcilerTest, VersionChangeStartsNewInstancesBeforeStoppingOldOnes) {
  DeployReady("chat", 2);
  const std::vector<std::string> old_ids = LaunchIds();

  Deploy("chat", 2, "v2");
  reconciler().ReconcileOnce();
  ASSERT_EQ(provider_.launches().size(), 4u);
  EXPECT_EQ(provider_.launches()[2].version, "v2");
  EXPECT_TRUE(provider_.stops().empty());
  Deployment d = Get("chat");
  EXPECT_EQ(d.status.phase, DeploymentPhase::kProgressing);
  EXPECT_EQ(d.status.ready_replicas, 2);
  EXPECT_EQ(reconciler().ReadyEndpoints().size(), 2u);

  // One new instance ready: one old one may go.
  provider_.Set(LaunchIds()[2], InstanceState::kReady);
  reconciler().ReconcileOnce();
  EXPECT_EQ(provider_.stops().size(), 1u);
  EXPECT_EQ(Get("chat").status.ready_replicas, 2);

  provider_.ReadyAll();
  reconciler().ReconcileOnce();
  std::vector<std::string> stops = provider_.stops();
  std::sort(stops.begin(), stops.end());
  std::vector<std::string> expected = old_ids;
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(stops, expected);
  for (const Endpoint& e : reconciler().ReadyEndpoints()) EXPECT_EQ(e.version, "v2");
  EXPECT_EQ(reconciler().ReadyEndpoints().size(), 2u);
  provider_.FinishStops();
  reconciler().ReconcileOnce();
  d = Get("chat");
  EXPECT_EQ(d.status.phase, DeploymentPhase::kRunning);
  EXPECT_EQ(d.status.observed_generation, 2);
  EXPECT_EQ(Rows("chat").size(), 2u);
}

TEST_F(ReconcilerTest, ACanaryRunsNextToTheReplicasAndGoesAwayWhenAborted) {
  DeployReady("chat", 4);
  DeploymentSpec spec = Get("chat").spec;
  spec.canary_version = "v2";
  spec.canary_percent = 10;  // 10% of 4, rounded up: one instance
  ASSERT_TRUE(store_->UpdateDeploymentSpec("chat", spec, 0, {}).ok());
  reconciler().ReconcileOnce();
  ASSERT_EQ(provider_.launches().size(), 5u);
  EXPECT_EQ(provider_.launches()[4].version, "v2");
  EXPECT_TRUE(provider_.stops().empty());
  EXPECT_EQ(Get("chat").status.phase, DeploymentPhase::kProgressing);
  provider_.ReadyAll();
  reconciler().ReconcileOnce();
  Deployment d = Get("chat");
  EXPECT_EQ(d.status.phase, DeploymentPhase::kRunning);
  EXPECT_EQ(d.status.ready_replicas, 5);
  EXPECT_NE(d.status.reason.find("10%"), std::string::npos) << d.status.reason;
  int v2 = 0;
  for (const Endpoint& e : reconciler().ReadyEndpoints()) v2 += e.version == "v2";
  EXPECT_EQ(v2, 1);

  // Aborted: the canary instance drains; the four others stay.
  spec.canary_version.clear();
  spec.canary_percent = 0;
  ASSERT_TRUE(store_->UpdateDeploymentSpec("chat", spec, 0, {}).ok());
  reconciler().ReconcileOnce();
  ASSERT_EQ(provider_.stops().size(), 1u);
  EXPECT_EQ(provider_.stops()[0], LaunchIds()[4]);
  EXPECT_EQ(provider_.launches().size(), 5u);
  absl::StatusOr<std::vector<DeploymentEvent>> events = store_->ListEvents("chat", 0, 100);
  ASSERT_TRUE(events.ok());
  bool drained = false;
  for (const DeploymentEvent& e : *events) drained |= e.message.find("draining instance " + LaunchIds()[4]) == 0;
  EXPECT_TRUE(drained);
}

TEST_F(ReconcilerTest, PromotingACanaryKeepsItsInstanceAndRollsTheRest) {
  DeployReady("chat", 2);
  DeploymentSpec spec = Get("chat").spec;
  spec.canary_version = "v2";
  spec.canary_percent = 50;
  ASSERT_TRUE(store_->UpdateDeploymentSpec("chat", spec, 0, {}).ok());
  reconciler().ReconcileOnce();
  provider_.ReadyAll();
  reconciler().ReconcileOnce();
  ASSERT_EQ(provider_.launches().size(), 3u);
  // Promoted: the canary instance is now one of the replicas; one more v2 starts, and the
  // v1 instances go as v2 ones become ready.
  spec.version = "v2";
  spec.canary_version.clear();
  spec.canary_percent = 0;
  ASSERT_TRUE(store_->UpdateDeploymentSpec("chat", spec, 0, {}).ok());
  reconciler().ReconcileOnce();
  ASSERT_EQ(provider_.launches().size(), 4u);
  EXPECT_EQ(provider_.stops().size(), 1u);  // the canary's readiness lets one v1 go
  provider_.ReadyAll();
  reconciler().ReconcileOnce();
  EXPECT_EQ(provider_.stops().size(), 2u);
  for (const Endpoint& e : reconciler().ReadyEndpoints()) EXPECT_EQ(e.version, "v2");
  EXPECT_EQ(Get("chat").previous_version, "v1");
}

TEST_F(ReconcilerTest, AnInstanceLeavesTheRoutesBeforeItIsToldToDrain) {
  unroute_delay_ = absl::Seconds(2);
  DeployReady("chat", 2);
  Deploy("chat", 1);
  reconciler().ReconcileOnce();
  EXPECT_EQ(reconciler().ReadyEndpoints().size(), 1u);  // routed to no more...
  EXPECT_TRUE(provider_.stops().empty());               // ...but not stopped yet
  Advance(absl::Seconds(1));
  reconciler().ReconcileOnce();
  EXPECT_TRUE(provider_.stops().empty());
  Advance(absl::Seconds(1));
  reconciler().ReconcileOnce();
  EXPECT_EQ(provider_.stops().size(), 1u);
}

TEST_F(ReconcilerTest, ARolloutWithNoRoomForASurgeReplacesOneInstanceAtATime) {
  provider_.SetCapacity({.cores = 2, .memory_bytes = int64_t{64} << 30});
  DeployReady("chat", 2);
  Deploy("chat", 2, "v2");
  reconciler().ReconcileOnce();
  ASSERT_EQ(provider_.stops().size(), 1u);  // one v1 drains to make room
  EXPECT_EQ(provider_.launches().size(), 2u);
  EXPECT_EQ(reconciler().ReadyEndpoints().size(), 1u);  // the other keeps serving
  provider_.FinishStops();
  reconciler().ReconcileOnce();
  ASSERT_EQ(provider_.launches().size(), 3u);
  EXPECT_EQ(provider_.launches()[2].version, "v2");
  provider_.ReadyAll();
  reconciler().ReconcileOnce();
  EXPECT_EQ(provider_.stops().size(), 2u);  // the v2 one is ready: the last v1 makes room
  provider_.FinishStops();
  reconciler().ReconcileOnce();
  provider_.ReadyAll();
  reconciler().ReconcileOnce();
  EXPECT_EQ(provider_.launches().size(), 4u);
  for (const Endpoint& e : reconciler().ReadyEndpoints()) EXPECT_EQ(e.version, "v2");
  EXPECT_EQ(Get("chat").status.phase, DeploymentPhase::kRunning);
}

TEST_F(ReconcilerTest, EngineSettingsChangeRollsInstancesToo) {
  DeployReady("chat", 1);
  Deploy("chat", 1, "v1", {.context_length = 2048});
  reconciler().ReconcileOnce();
  ASSERT_EQ(provider_.launches().size(), 2u);
  EXPECT_EQ(provider_.launches()[1].engine.context_length, 2048);
  provider_.ReadyAll();
  reconciler().ReconcileOnce();
  EXPECT_EQ(provider_.stops(), std::vector<std::string>{LaunchIds()[0]});
}

TEST_F(ReconcilerTest, StopsInstancesOfDeletedDeploymentsAndDeletesTheirRows) {
  DeployReady("chat", 2);
  ASSERT_TRUE(store_->DeleteDeployment("chat", {}).ok());
  reconciler().ReconcileOnce();
  EXPECT_EQ(provider_.stops().size(), 2u);
  for (const Instance& row : Rows("chat")) EXPECT_EQ(row.state, InstanceState::kDraining);
  EXPECT_TRUE(reconciler().ReadyEndpoints().empty());
  provider_.FinishStops();
  reconciler().ReconcileOnce();
  EXPECT_TRUE(Rows("chat").empty());
  EXPECT_EQ(provider_.launches().size(), 2u);
}

TEST_F(ReconcilerTest, FailsWhenTheVersionFileIsMissing) {
  std::filesystem::remove(dir_ / "v2.gguf");
  Deploy("chat", 1, "v2");
  reconciler().ReconcileOnce();
  const Deployment d = Get("chat");
  EXPECT_EQ(d.status.phase, DeploymentPhase::kFailed);
  EXPECT_NE(d.status.reason.find("missing"), std::string::npos) << d.status.reason;
  EXPECT_NE(d.status.reason.find("v2.gguf"), std::string::npos) << d.status.reason;
  EXPECT_TRUE(provider_.launches().empty());
}

TEST_F(ReconcilerTest, ProviderStartErrorsBackOff) {
  provider_.SetStartError(absl::FailedPreconditionError("no such binary"));
  Deploy("chat", 1);
  reconciler().ReconcileOnce();
  Deployment d = Get("chat");
  EXPECT_EQ(d.status.phase, DeploymentPhase::kProgressing);
  EXPECT_NE(d.status.reason.find("no such binary"), std::string::npos) << d.status.reason;
  provider_.SetStartError(absl::OkStatus());
  reconciler().ReconcileOnce();
  EXPECT_TRUE(provider_.launches().empty());  // still backing off
  Advance(absl::Seconds(10));
  reconciler().ReconcileOnce();
  ASSERT_EQ(provider_.launches().size(), 1u);
  EXPECT_EQ(Row(LaunchIds()[0]).restarts, 1);
}

TEST_F(ReconcilerTest, KillsInstancesThatDoNotBecomeReadyInTime) {
  Deploy("chat", 1);
  reconciler().ReconcileOnce();
  const std::string id = LaunchIds().at(0);
  Advance(absl::Seconds(299));
  reconciler().ReconcileOnce();
  EXPECT_TRUE(provider_.kills().empty());
  Advance(absl::Seconds(1));
  reconciler().ReconcileOnce();
  EXPECT_EQ(provider_.kills(), std::vector<std::string>{id});
  ExpectFailedThenReplaced(id, "not ready 5m after its start; killed");
}

TEST_F(ReconcilerTest, AnInstanceTheProviderForgotIsReplaced) {
  DeployReady("chat", 1);
  const std::string id = LaunchIds().at(0);
  provider_.Forget(id);
  reconciler().ReconcileOnce();
  ExpectFailedThenReplaced(id, "the provider lost the instance");
}

TEST_F(ReconcilerTest, AdoptsRecordedInstancesAtStartAndDeletesRowsOfGoneOnes) {
  Deploy("chat", 2);
  for (const std::string id : {"chat-aaaaaa", "chat-bbbbbb"}) {
    ASSERT_TRUE(store_->PutInstance({.id = id, .deployment = "chat", .model = "m",
                                     .version = "v1", .provider = "fake", .host = "127.0.0.1",
                                     .port = 3000, .pid = 42, .state = InstanceState::kReady,
                                     .restarts = 3})
                    .ok());
  }
  ASSERT_TRUE(store_->PutInstance({.id = "chat-cccccc", .deployment = "chat", .model = "m",
                                   .version = "v1", .provider = "kubernetes"})
                  .ok());
  provider_.AllowAdoption("chat-aaaaaa");
  TP_ASSERT_OK(reconciler().Start());
  reconciler().Stop(false);  // only the adoption and the loop's first pass ran

  EXPECT_EQ(provider_.adopt_calls(), (std::vector<std::string>{"chat-aaaaaa", "chat-bbbbbb"}));
  EXPECT_FALSE(store_->GetInstance("chat-bbbbbb").ok());
  EXPECT_TRUE(store_->GetInstance("chat-cccccc").ok());  // another provider's
  EXPECT_EQ(Row("chat-aaaaaa").state, InstanceState::kReady);
  // The adopted instance counts toward the replicas: one more was started.
  ASSERT_EQ(provider_.launches().size(), 1u);
  EXPECT_EQ(Row(LaunchIds()[0]).restarts, 3);  // the failures so far carry over
  EXPECT_EQ(reconciler().ReadyEndpoints().size(), 1u);
  EXPECT_EQ(reconciler().ReadyEndpoints()[0].url, "http://127.0.0.1:3000");
  EXPECT_TRUE(provider_.stops().empty());  // Stop(false) leaves instances running
}

TEST_F(ReconcilerTest, StopWithInstancesStopsEverythingAndDeletesTheRows) {
  Deploy("chat", 2);
  TP_ASSERT_OK(reconciler().Start());
  reconciler().ReconcileOnce();
  EXPECT_EQ(Rows("chat").size(), 2u);
  reconciler().Stop(true);
  EXPECT_EQ(provider_.stop_all_calls(), 1);
  EXPECT_TRUE(Rows("chat").empty());
  EXPECT_TRUE(reconciler().ReadyEndpoints().empty());
  reconciler().ReconcileOnce();  // after shutdown a pass starts nothing
  EXPECT_EQ(provider_.launches().size(), 2u);
}

TEST_F(ReconcilerTest, TriggerRunsAPassSoon) {
  TP_ASSERT_OK(reconciler().Start());  // interval: an hour
  Deploy("chat", 1);
  reconciler().Trigger();
  for (int i = 0; i < 3000 && provider_.launches().empty(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(provider_.launches().size(), 1u);
}

TEST_F(ReconcilerTest, PassesFromManyThreadsNeverOverlap) {
  Deploy("chat", 3);
  TP_ASSERT_OK(reconciler().Start());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20; ++i) {
        reconciler().Trigger();
        reconciler().ReconcileOnce();
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(provider_.launches().size(), 3u);  // overlapping passes would start more
  EXPECT_EQ(Rows("chat").size(), 3u);
}

}  // namespace
}  // namespace triplane::control
