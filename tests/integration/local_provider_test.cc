// The local provider and the reconciler with real `triplane engine` processes serving a
// tiny random model. Every test stops or kills what it started (the providers kill
// whatever is left when destroyed) and removes its temp dir.

#include "control/providers/local/local_provider.h"

#include <signal.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/http_client.h"
#include "common/sha256.h"
#include "control/deploy/reconciler.h"
#include "control/store/store_factory.h"
#include "fmt/format.h"
#include "gtest/gtest.h"
#include "testing/engine_process.h"
#include "testing/llama_cpp_source.h"

namespace triplane::control {
namespace {

using namespace std::chrono_literals;

// Polls `done` every 20 ms for up to a minute (CI machines are slow and shared).
bool WaitFor(const std::function<bool()>& done, std::chrono::seconds limit = 60s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

// Running, not a zombie: an adopted engine that exited stays a zombie of this test
// process (which spawned it) until reaped, and no longer runs.
bool ProcessExists(int64_t pid) {
  if (::kill(static_cast<pid_t>(pid), 0) != 0) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const size_t paren = text.rfind(')');
  return paren == std::string::npos || paren + 2 >= text.size() || text[paren + 2] != 'Z';
}

class LocalEngineTest : public ::testing::Test {
 protected:
  // One tiny model for the whole suite: writing it costs a process start.
  static void SetUpTestSuite() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "triplane-local-model-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    model_dir_ = new std::filesystem::path(pattern);
    testing::WriteTinyModel(testing::LlamaCppVocabPath("llama-spm"), *model_dir_ / "tiny.gguf");
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    std::filesystem::remove_all(*model_dir_, ec);
    delete model_dir_;
    model_dir_ = nullptr;
  }

  void SetUp() override {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "triplane-local-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }

  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  static std::string ModelPath() { return (*model_dir_ / "tiny.gguf").string(); }

  LocalProviderOptions ProviderOptions() const {
    return {.engine_binary = TRIPLANE_BINARY,
            .work_dir = (dir_ / "instances").string(),
            .extra_engine_args = {"--http-threads", "1", "--drain-timeout", "5"},
            .cores = 8,
            .memory_bytes = int64_t{64} << 30,
            .health_interval = absl::Milliseconds(100)};
  }

  static InstanceLaunch Launch(const std::string& id) {
    return {.id = id,
            .deployment = "chat",
            .model = "tiny",
            .version = "v1",
            .model_path = ModelPath(),
            .model_bytes = static_cast<int64_t>(std::filesystem::file_size(ModelPath()))};
  }

  static InstanceState StateOf(Provider& provider, const std::string& id) {
    absl::StatusOr<InstanceObservation> obs = provider.Observe(id);
    return obs.ok() ? obs->state : InstanceState::kStopped;
  }

  static bool WaitForState(Provider& provider, const std::string& id, InstanceState state) {
    return WaitFor([&] { return StateOf(provider, id) == state; });
  }

  static inline std::filesystem::path* model_dir_ = nullptr;
  std::filesystem::path dir_;
};

using LocalProviderTest = LocalEngineTest;

TEST_F(LocalProviderTest, StartedEngineBecomesReadyOnAFreePortAndStopsByDraining) {
  LocalProvider provider(ProviderOptions());
  InstanceLaunch launch = Launch("org/chat-abc123");
  launch.engine.kv_type = "q8_0";  // the deployment's engine settings reach the process
  absl::StatusOr<Instance> row = provider.Start(launch);
  ASSERT_TRUE(row.ok()) << row.status();
  EXPECT_EQ(row->state, InstanceState::kStarting);
  EXPECT_EQ(row->provider, "local");
  EXPECT_GT(row->pid, 0);
  const std::filesystem::path log = dir_ / "instances" / "org-chat-abc123.log";
  ASSERT_TRUE(WaitForState(provider, row->id, InstanceState::kReady))
      << testing::ReadWholeFile(log);

  const InstanceObservation obs = *provider.Observe(row->id);
  EXPECT_GT(obs.port, 0);
  EXPECT_EQ(obs.host, "127.0.0.1");
  EXPECT_EQ(obs.pid, row->pid);
  EXPECT_EQ(testing::ReadWholeFile(dir_ / "instances" / "org-chat-abc123.out"),
            fmt::format("http://127.0.0.1:{}\n", obs.port));
  common::HttpClient client;
  absl::StatusOr<common::HttpResponse> models =
      client.Send({.url = fmt::format("http://127.0.0.1:{}/v1/models", obs.port)});
  ASSERT_TRUE(models.ok()) << models.status();
  EXPECT_NE(models->body.find("\"tiny\""), std::string::npos) << models->body;
  const std::string cmdline = testing::ReadWholeFile(fmt::format("/proc/{}/cmdline", obs.pid));
  EXPECT_NE(cmdline.find(std::string("--instance-id\0org/chat-abc123", 29)), std::string::npos);
  EXPECT_NE(cmdline.find(std::string("--kv-type\0q8_0", 14)), std::string::npos);
  EXPECT_NE(testing::ReadWholeFile(log).find("q8_0 KV cache"), std::string::npos) << testing::ReadWholeFile(log);

  provider.Stop(row->id, absl::Seconds(30));
  EXPECT_EQ(StateOf(provider, row->id), InstanceState::kDraining);
  ASSERT_TRUE(WaitForState(provider, row->id, InstanceState::kStopped));
  EXPECT_EQ(provider.Observe(row->id)->last_error, "exit code 0");  // drained, not killed
  EXPECT_NE(testing::ReadWholeFile(log).find("stopped"), std::string::npos);
  EXPECT_FALSE(ProcessExists(obs.pid));
}

TEST_F(LocalProviderTest, KilledEngineIsFailedWithTheReason) {
  LocalProvider provider(ProviderOptions());
  absl::StatusOr<Instance> row = provider.Start(Launch("chat-kill01"));
  ASSERT_TRUE(row.ok()) << row.status();
  ASSERT_TRUE(WaitForState(provider, row->id, InstanceState::kReady));
  ASSERT_EQ(::kill(static_cast<pid_t>(row->pid), SIGKILL), 0);
  ASSERT_TRUE(WaitForState(provider, row->id, InstanceState::kFailed));
  EXPECT_EQ(provider.Observe(row->id)->last_error.rfind("killed by signal 9", 0), 0u)
      << provider.Observe(row->id)->last_error;
}

TEST_F(LocalProviderTest, EngineThatCannotLoadIsFailedWithItsLastLogLine) {
  LocalProvider provider(ProviderOptions());
  InstanceLaunch launch = Launch("chat-bad001");
  launch.model_path = (dir_ / "not-a-model.gguf").string();
  std::ofstream(launch.model_path) << "this is not a GGUF file";
  absl::StatusOr<Instance> row = provider.Start(launch);
  ASSERT_TRUE(row.ok()) << row.status();
  ASSERT_TRUE(WaitForState(provider, row->id, InstanceState::kFailed));
  const std::string error = provider.Observe(row->id)->last_error;
  EXPECT_EQ(error.rfind("exit code 1: triplane engine: ", 0), 0u) << error;
}

TEST_F(LocalProviderTest, ARestartedProviderAdoptsARunningInstanceByItsRow) {
  LocalProvider first(ProviderOptions());
  absl::StatusOr<Instance> row = first.Start(Launch("chat-adopt1"));
  ASSERT_TRUE(row.ok()) << row.status();
  ASSERT_TRUE(WaitForState(first, row->id, InstanceState::kReady));
  row->port = first.Observe(row->id)->port;

  LocalProvider second(ProviderOptions());  // the control plane after a restart
  Instance stranger = *row;
  stranger.id = "chat-other1";  // the pid runs another instance
  EXPECT_TRUE(absl::IsNotFound(second.Adopt(stranger)));
  Instance dead = *row;
  dead.pid = 999999999;
  EXPECT_TRUE(absl::IsNotFound(second.Adopt(dead)));

  ASSERT_TRUE(second.Adopt(*row).ok());
  const InstanceObservation obs = *second.Observe(row->id);
  EXPECT_EQ(obs.state, InstanceState::kReady);
  EXPECT_EQ(obs.port, row->port);
  EXPECT_EQ(obs.pid, row->pid);

  second.Stop(row->id, absl::Seconds(30));
  ASSERT_TRUE(WaitForState(second, row->id, InstanceState::kStopped));
  EXPECT_FALSE(ProcessExists(row->pid));
}

TEST_F(LocalProviderTest, StopAllDrainsEveryInstanceAndTheDestructorKillsTheRest) {
  std::vector<int64_t> pids;
  {
    LocalProvider provider(ProviderOptions());
    std::vector<std::string> ids = {"chat-all001", "chat-all002"};
    for (const std::string& id : ids) {
      absl::StatusOr<Instance> row = provider.Start(Launch(id));
      ASSERT_TRUE(row.ok()) << row.status();
      pids.push_back(row->pid);
    }
    for (const std::string& id : ids) ASSERT_TRUE(WaitForState(provider, id, InstanceState::kReady));
    provider.StopAll(absl::Seconds(30));
    for (const std::string& id : ids) {
      EXPECT_EQ(StateOf(provider, id), InstanceState::kStopped);
      EXPECT_EQ(provider.Observe(id)->last_error, "exit code 0");
    }
    absl::StatusOr<Instance> left = provider.Start(Launch("chat-left01"));
    ASSERT_TRUE(left.ok()) << left.status();
    pids.push_back(left->pid);
  }
  for (int64_t pid : pids) EXPECT_FALSE(ProcessExists(pid)) << pid;
}

TEST_F(LocalProviderTest, CapacityAndDemand) {
  LocalProviderOptions options = ProviderOptions();
  options.cores = 0;
  options.memory_bytes = 0;
  options.default_threads = 2;
  LocalProvider provider(options);
  const Resources capacity = provider.Capacity();
  EXPECT_GE(capacity.cores, 1);
  EXPECT_GT(capacity.memory_bytes, int64_t{64} << 20);
  InstanceLaunch launch = Launch("chat-demand");
  launch.model_bytes = int64_t{1} << 30;
  EXPECT_EQ(provider.Demand(launch),
            (Resources{.cores = 2, .memory_bytes = (int64_t{1} << 30) + (int64_t{320} << 20)}));
  launch.engine.threads = 3;
  EXPECT_EQ(provider.Demand(launch).cores, 3);
}

// ---- The reconciler with the local provider and a SQLite store ----

class ReconcilerLocalTest : public LocalEngineTest {
 protected:
  void SetUp() override {
    LocalEngineTest::SetUp();
    absl::StatusOr<std::unique_ptr<Store>> store =
        OpenStore("sqlite:" + (dir_ / "triplane.db").string(), dir_.string());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    ASSERT_TRUE(store_->CreateModel({.name = "tiny"}, {}).ok());
    absl::StatusOr<ModelVersion> version = store_->CreateModelVersion(
        {.model = "tiny",
         .version = "v1",
         .file_path = ModelPath(),
         .size_bytes = static_cast<int64_t>(std::filesystem::file_size(ModelPath())),
         .sha256 = common::Sha256Hex("tiny")},
        {});
    ASSERT_TRUE(version.ok()) << version.status();
  }

  static ReconcilerOptions Options() {
    return {.interval = absl::Milliseconds(100),
            .initial_backoff = absl::Seconds(1),
            .max_backoff = absl::Seconds(4),
            .drain_timeout = absl::Seconds(20)};
  }

  void Deploy(int32_t replicas, EngineSettings engine = {}) {
    const DeploymentSpec spec{.model = "tiny", .version = "v1", .replicas = replicas,
                              .engine = engine};
    const bool exists = store_->GetDeployment("chat").ok();
    absl::StatusOr<Deployment> d = exists ? store_->UpdateDeploymentSpec("chat", spec, 0, {})
                                          : store_->CreateDeployment("chat", spec, {});
    ASSERT_TRUE(d.ok()) << d.status();
  }

  Deployment Get() {
    absl::StatusOr<Deployment> d = store_->GetDeployment("chat");
    return d.ok() ? *d : Deployment{};
  }

  std::vector<Instance> Rows() {
    absl::StatusOr<std::vector<Instance>> rows = store_->ListInstances("chat");
    return rows.ok() ? *rows : std::vector<Instance>{};
  }

  // Waits until the deployment runs `replicas` ready instances and nothing else.
  bool WaitRunning(int32_t replicas) {
    return WaitFor([&] {
      const Deployment d = Get();
      return d.status.phase == DeploymentPhase::kRunning && d.status.ready_replicas == replicas &&
             static_cast<int32_t>(Rows().size()) == replicas;
    });
  }

  // Sets the replicas, wakes the reconciler and waits until they all run.
  void ScaleTo(Reconciler& reconciler, int32_t replicas) {
    Deploy(replicas);
    reconciler.Trigger();
    ASSERT_TRUE(WaitRunning(replicas)) << Get().status.reason;
  }

  std::unique_ptr<Store> store_;
};

TEST_F(ReconcilerLocalTest, ScalesOneToThreeToOneDrainingTheScaledDown) {
  LocalProvider provider(ProviderOptions());
  Reconciler reconciler(*store_, provider, Options());
  ASSERT_TRUE(reconciler.Start().ok());
  ASSERT_NO_FATAL_FAILURE(ScaleTo(reconciler, 1));

  ASSERT_NO_FATAL_FAILURE(ScaleTo(reconciler, 3));
  std::vector<Instance> three = Rows();
  for (const Instance& row : three) {
    EXPECT_EQ(row.state, InstanceState::kReady);
    EXPECT_GT(row.port, 0);
  }
  EXPECT_EQ(reconciler.ReadyEndpoints("tiny").size(), 3u);

  ASSERT_NO_FATAL_FAILURE(ScaleTo(reconciler, 1));
  const std::string kept = Rows().at(0).id;
  for (const Instance& row : three) {
    if (row.id == kept) continue;
    absl::StatusOr<InstanceObservation> obs = provider.Observe(row.id);
    ASSERT_TRUE(obs.ok());
    EXPECT_EQ(obs->state, InstanceState::kStopped);
    EXPECT_EQ(obs->last_error, "exit code 0") << row.id;  // SIGTERM and drained, no SIGKILL
  }
  reconciler.Stop(true);
  EXPECT_TRUE(Rows().empty());
  EXPECT_EQ(StateOf(provider, kept), InstanceState::kStopped);
}

TEST_F(ReconcilerLocalTest, AKilledEngineIsReplacedWithRestartsCounted) {
  LocalProvider provider(ProviderOptions());
  Reconciler reconciler(*store_, provider, Options());
  ASSERT_TRUE(reconciler.Start().ok());
  ASSERT_NO_FATAL_FAILURE(ScaleTo(reconciler, 1));
  const Instance first = Rows().at(0);
  ASSERT_EQ(::kill(static_cast<pid_t>(first.pid), SIGKILL), 0);

  Instance replacement;
  ASSERT_TRUE(WaitFor([&] {
    for (const Instance& row : Rows()) {
      if (row.id != first.id && row.state == InstanceState::kReady) replacement = row;
    }
    return !replacement.id.empty();
  })) << Get().status.reason;
  EXPECT_EQ(replacement.restarts, 1);
  absl::StatusOr<InstanceObservation> obs = provider.Observe(first.id);
  ASSERT_TRUE(obs.ok());
  EXPECT_EQ(obs->state, InstanceState::kFailed);
  EXPECT_EQ(obs->last_error.rfind("killed by signal 9", 0), 0u) << obs->last_error;
  ASSERT_TRUE(WaitRunning(1));
  reconciler.Stop(true);
}

TEST_F(ReconcilerLocalTest, ADeploymentThatDoesNotFitStaysPending) {
  LocalProvider provider(ProviderOptions());  // 8 cores
  Reconciler reconciler(*store_, provider, Options());
  Deploy(1, {.threads = 16});
  reconciler.ReconcileOnce();
  const Deployment d = Get();
  EXPECT_EQ(d.status.phase, DeploymentPhase::kPending);
  EXPECT_NE(d.status.reason.find("needs 16 cores"), std::string::npos) << d.status.reason;
  EXPECT_NE(d.status.reason.find("free: 8 cores"), std::string::npos) << d.status.reason;
  EXPECT_TRUE(Rows().empty());
}

TEST_F(ReconcilerLocalTest, ARestartedControlPlaneAdoptsItsInstances) {
  LocalProvider old_provider(ProviderOptions());
  std::string id;
  {
    Reconciler old_reconciler(*store_, old_provider, Options());
    ASSERT_TRUE(old_reconciler.Start().ok());
    ASSERT_NO_FATAL_FAILURE(ScaleTo(old_reconciler, 1));
    id = Rows().at(0).id;
    old_reconciler.Stop(false);  // the instance keeps running
  }
  LocalProvider provider(ProviderOptions());
  Reconciler reconciler(*store_, provider, Options());
  ASSERT_TRUE(reconciler.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return reconciler.ReadyEndpoints().size() == 1; }));
  EXPECT_EQ(reconciler.ReadyEndpoints()[0].instance_id, id);
  EXPECT_EQ(StateOf(provider, id), InstanceState::kReady);
  ASSERT_EQ(Rows().size(), 1u);  // adopted, nothing new started
  EXPECT_EQ(Rows()[0].id, id);
  reconciler.Stop(true);
  EXPECT_TRUE(Rows().empty());
  EXPECT_EQ(provider.Observe(id)->state, InstanceState::kStopped);
}

}  // namespace
}  // namespace triplane::control
