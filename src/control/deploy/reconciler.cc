#include "control/deploy/reconciler.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/strings.h"
#include "control/deploy/resources.h"
#include "fmt/format.h"
#include "spdlog/spdlog.h"

namespace triplane::control {
namespace {

bool IsTerminal(InstanceState state) {
  return state == InstanceState::kStopped || state == InstanceState::kFailed;
}

// Starting or ready: an instance that serves, or will, unless we stop it.
bool IsLive(InstanceState state) {
  return state == InstanceState::kStarting || state == InstanceState::kReady;
}

Resources Plus(const Resources& a, const Resources& b) {
  return {.cores = a.cores + b.cores, .memory_bytes = a.memory_bytes + b.memory_bytes};
}

Resources Minus(const Resources& a, const Resources& b) {
  return {.cores = std::max(0, a.cores - b.cores),
          .memory_bytes = std::max<int64_t>(0, a.memory_bytes - b.memory_bytes)};
}

bool Fits(const Resources& used, const Resources& demand, const Resources& capacity) {
  return used.cores + demand.cores <= capacity.cores &&
         used.memory_bytes + demand.memory_bytes <= capacity.memory_bytes;
}

std::string Message(const absl::Status& status) { return std::string(common::ToStd(status.message())); }

}  // namespace

class Reconciler::Impl {
 public:
  Impl(Store& store, Provider& provider, ReconcilerOptions options)
      : store_(store),
        provider_(provider),
        options_(std::move(options)),
        random_(std::random_device{}()) {
    if (!options_.clock) options_.clock = [] { return absl::Now(); };
  }

  ~Impl() { Stop(false); }

  absl::Status Start() {
    {
      absl::MutexLock lock(&loop_mu_);
      if (loop_.joinable() || stopping_)
        return absl::FailedPreconditionError("the reconciler was already started");
    }
    {
      absl::MutexLock pass(&pass_mu_);
      absl::StatusOr<std::vector<Instance>> rows = store_.ListInstances("");
      if (!rows.ok()) return rows.status();
      // Oldest first, so that scale-down still stops the newest.
      std::stable_sort(rows->begin(), rows->end(),
                       [](const Instance& a, const Instance& b) { return a.created_at < b.created_at; });
      for (const Instance& row : *rows) {
        if (row.provider == provider_.name()) AdoptRow(row);
      }
    }
    absl::MutexLock lock(&loop_mu_);
    loop_ = std::thread([this] { Loop(); });
    return absl::OkStatus();
  }

  void Trigger() {
    absl::MutexLock lock(&loop_mu_);
    triggered_ = true;
  }

  void Stop(bool stop_instances) {
    std::thread loop;
    {
      absl::MutexLock lock(&loop_mu_);
      stopping_ = true;
      loop = std::move(loop_);
    }
    if (loop.joinable()) loop.join();
    if (!stop_instances) return;
    absl::MutexLock pass(&pass_mu_);
    shut_down_ = true;
    provider_.StopAll(options_.drain_timeout);
    for (auto& [id, tracked] : instances_) deletes_.insert(id);
    instances_.clear();
    FlushRows();
    PublishEndpoints();
  }

  std::vector<Endpoint> ReadyEndpoints(std::string_view model) const {
    absl::MutexLock lock(&endpoints_mu_);
    if (model.empty()) return endpoints_;
    std::vector<Endpoint> out;
    for (const Endpoint& e : endpoints_) {
      if (e.model == model) out.push_back(e);
    }
    return out;
  }

  void ReconcileOnce() {
    absl::MutexLock pass(&pass_mu_);
    if (shut_down_) return;
    ObserveAll();
    absl::StatusOr<std::vector<Deployment>> deployments = store_.ListDeployments();
    if (deployments.ok()) {
      Resources used = UsedResources();
      std::set<std::string, std::less<>> names;
      for (const Deployment& d : *deployments) {
        names.insert(d.name);
        ReconcileDeployment(d, used);
      }
      StopOrphans(names);
      ForgetRemoved();
    } else {
      spdlog::warn("reconciler: cannot list deployments (retrying next pass): {}",
                   deployments.status().ToString());
    }
    FlushRows();
    // After the rows, so that a reader who sees a status finds the instances it counts.
    PublishEndpoints();
    WriteStatuses();
  }

 private:
  // An instance this reconciler manages: its row as it should be in the store, and
  // what it was started with.
  struct Tracked {
    Instance row;
    InstanceLaunch launch;   // for Demand() and to tell instances of an older spec
    absl::Time started;      // Start() or adoption, for start_timeout
    int64_t sequence = 0;    // start order: scale-down stops the newest
    bool stop_sent = false;  // we stopped it: its end is no failure
    bool counted = false;    // its failure has been counted for backoff
    bool dirty = true;       // the store's row is behind `row`
    bool remove = false;     // done with: forget it and delete its row after this pass
  };

  // What the reconciler remembers of a deployment between passes.
  struct History {
    int32_t restarts = 0;     // failures so far; the next replacement's `restarts`
    int32_t consecutive = 0;  // failures since it last ran fully for max_backoff
    absl::Duration backoff;   // the wait before retry_at
    absl::Time retry_at = absl::InfinitePast();
    absl::Time last_failure = absl::InfinitePast();
    std::string last_failure_reason;
  };

  void Loop() {
    while (true) {
      ReconcileOnce();
      absl::MutexLock lock(&loop_mu_);
      auto woken = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(loop_mu_) {
        return triggered_ || stopping_;
      };
      loop_mu_.AwaitWithTimeout(absl::Condition(&woken), options_.interval);
      if (stopping_) return;
      triggered_ = false;
    }
  }

  void AdoptRow(const Instance& row) ABSL_EXCLUSIVE_LOCKS_REQUIRED(pass_mu_) {
    if (absl::Status adopted = provider_.Adopt(row); !adopted.ok()) {
      spdlog::info("reconciler: instance {} is gone ({}); deleting its row", row.id,
                   Message(adopted));
      deletes_.insert(row.id);
      FlushRows();
      return;
    }
    InstanceLaunch launch{.id = row.id,
                          .deployment = row.deployment,
                          .model = row.model,
                          .version = row.version};
    // The engine settings it was started with are not recorded: assume the spec's when
    // the version matches, so that adoption alone never rolls instances.
    if (absl::StatusOr<Deployment> d = store_.GetDeployment(row.deployment);
        d.ok() && d->spec.model == row.model && d->spec.version == row.version) {
      launch.engine = d->spec.engine;
    }
    if (absl::StatusOr<ModelVersion> v = store_.GetModelVersion(row.model, row.version); v.ok()) {
      launch.model_path = v->file_path;
      launch.model_bytes = v->size_bytes;
      launch.gguf = v->gguf;
    }
    History& history = history_[row.deployment];
    history.restarts = std::max(history.restarts, row.restarts);
    spdlog::info("reconciler: adopted instance {} of {}", row.id, row.deployment);
    instances_[row.id] = Tracked{.row = row,
                                 .launch = std::move(launch),
                                 .started = options_.clock(),
                                 .sequence = ++sequence_,
                                 .dirty = false};
  }

  // Brings every row up to date with what the provider says.
  void ObserveAll() ABSL_EXCLUSIVE_LOCKS_REQUIRED(pass_mu_) {
    for (auto& [id, t] : instances_) {
      if (IsTerminal(t.row.state)) continue;
      absl::StatusOr<InstanceObservation> obs = provider_.Observe(id);
      Instance next = t.row;
      if (obs.ok()) {
        next.state = obs->state;
        next.host = obs->host;
        next.port = obs->port;
        next.pid = obs->pid;
        if (!obs->last_error.empty()) next.last_error = obs->last_error;
      } else {
        next.state = InstanceState::kFailed;
        next.last_error = fmt::format("the provider lost the instance: {}", Message(obs.status()));
      }
      if (next.state != t.row.state) {
        spdlog::info("reconciler: instance {} is {}{}", id, ToString(next.state),
                     IsTerminal(next.state) && !next.last_error.empty() ? " (" + next.last_error + ")"
                                                                      : "");
      }
      if (next.state != t.row.state || next.host != t.row.host || next.port != t.row.port ||
          next.pid != t.row.pid || next.last_error != t.row.last_error) {
        t.row = std::move(next);
        t.dirty = true;
      }
    }
  }

  Resources UsedResources() ABSL_EXCLUSIVE_LOCKS_REQUIRED(pass_mu_) {
    Resources used;
    for (const auto& [id, t] : instances_) {
      if (!IsTerminal(t.row.state)) used = Plus(used, provider_.Demand(t.launch));
    }
    return used;
  }

  static bool MatchesSpec(const Tracked& t, const DeploymentSpec& spec) {
    return t.launch.model == spec.model && t.launch.version == spec.version &&
           t.launch.engine == spec.engine;
  }

  void ReconcileDeployment(const Deployment& d, Resources& used)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(pass_mu_) {
    const DeploymentSpec& spec = d.spec;
    History& history = history_[d.name];
    const absl::Time now = options_.clock();
    std::vector<Tracked*> mine;
    for (auto& [id, t] : instances_) {
      if (t.row.deployment == d.name && !t.remove) mine.push_back(&t);
    }
    std::sort(mine.begin(), mine.end(),
              [](const Tracked* a, const Tracked* b) { return a->sequence < b->sequence; });
    KillStartTimeouts(mine, now);
    CountFailures(mine, history, now);

    // Why the spec cannot be served at all (phase kFailed), if so.
    std::string blocked;
    absl::StatusOr<ModelVersion> version = store_.GetModelVersion(spec.model, spec.version);
    if (absl::IsNotFound(version.status())) {
      blocked = fmt::format("model version {}:{} does not exist", spec.model, spec.version);
    } else if (!version.ok()) {
      spdlog::warn("reconciler: deployment {}: cannot read model version {}:{} (retrying): {}",
                   d.name, spec.model, spec.version, version.status().ToString());
      return;
    } else if (std::error_code ec; !std::filesystem::is_regular_file(version->file_path, ec)) {
      blocked = fmt::format("the file of model version {}:{} is missing: {}", spec.model,
                            spec.version, version->file_path);
    }

    std::vector<Tracked*> current;   // live, of the spec
    std::vector<Tracked*> outdated;  // live, of an earlier spec
    for (Tracked* t : mine) {
      if (!IsLive(t->row.state) || t->stop_sent) continue;
      (MatchesSpec(*t, spec) ? current : outdated).push_back(t);
    }
    const int32_t replicas = std::max(0, spec.replicas);

    // Scale down: the surplus, not-ready ones first, then the newest.
    if (static_cast<int32_t>(current.size()) > replicas) {
      std::stable_sort(current.begin(), current.end(), [](const Tracked* a, const Tracked* b) {
        const bool a_ready = a->row.state == InstanceState::kReady;
        const bool b_ready = b->row.state == InstanceState::kReady;
        return a_ready != b_ready ? !a_ready : a->sequence > b->sequence;
      });
      while (static_cast<int32_t>(current.size()) > replicas) {
        StopInstance(*current.front(), "scale-down");
        current.erase(current.begin());
      }
    }

    // Scale up, as far as capacity allows and backoff permits.
    std::string pending;
    bool backing_off = false;
    int32_t started = 0;
    if (blocked.empty()) {
      for (int32_t i = static_cast<int32_t>(current.size()); i < replicas; ++i) {
        if (now < history.retry_at) {
          backing_off = true;
          break;
        }
        InstanceLaunch launch = MakeLaunch(d, *version);
        const Resources demand = provider_.Demand(launch);
        const Resources capacity = provider_.Capacity();
        if (!Fits(used, demand, capacity)) {
          pending = fmt::format("instance needs {}; free: {} of {}", FormatResources(demand),
                                FormatResources(Minus(capacity, used)), FormatResources(capacity));
          break;
        }
        Tracked* t = StartInstance(std::move(launch), history, now);
        if (t == nullptr) {  // counted as a failure: backoff
          backing_off = true;
          break;
        }
        used = Plus(used, demand);
        current.push_back(t);
        ++started;
      }
    }
    DropReplacedFailures(mine, started, static_cast<int32_t>(current.size()) >= replicas);

    // Rollout: stop instances of an earlier spec once enough of the new one are ready,
    // keeping the ready count from falling below the replicas wanted.
    const int32_t ready_current = static_cast<int32_t>(
        std::count_if(current.begin(), current.end(),
                      [](const Tracked* t) { return t->row.state == InstanceState::kReady; }));
    if (blocked.empty()) {
      std::stable_sort(outdated.begin(), outdated.end(), [](const Tracked* a, const Tracked* b) {
        return (a->row.state == InstanceState::kReady) > (b->row.state == InstanceState::kReady);
      });
      int32_t keep = std::max(0, replicas - ready_current);
      std::vector<Tracked*> kept;
      for (Tracked* t : outdated) {
        if (t->row.state == InstanceState::kReady && keep > 0) {
          --keep;
          kept.push_back(t);
        } else {
          StopInstance(*t, "rollout");
        }
      }
      outdated = std::move(kept);
    }

    DeploymentStatus status{.observed_generation = d.generation};
    int32_t starting = 0;
    bool draining = false;
    for (const Tracked* t : mine) {
      if (t->stop_sent && !IsTerminal(t->row.state)) draining = true;
    }
    for (const Tracked* t : current) starting += t->row.state == InstanceState::kStarting;
    status.ready_replicas = ready_current;
    for (const Tracked* t : outdated) status.ready_replicas += t->row.state == InstanceState::kReady;

    const std::string failure =
        history.last_failure_reason.empty() ? "" : "; last failure: " + history.last_failure_reason;
    if (!blocked.empty()) {
      status.phase = DeploymentPhase::kFailed;
      status.reason = blocked;
    } else if (!pending.empty()) {
      status.phase = DeploymentPhase::kPending;
      status.reason = pending;
    } else if (ready_current == replicas && outdated.empty() && (replicas > 0 || !draining)) {
      status.phase = DeploymentPhase::kRunning;
      if (now - history.last_failure >= options_.max_backoff) history.consecutive = 0;
    } else if (backing_off && status.ready_replicas > 0 && starting == 0 && outdated.empty()) {
      status.phase = DeploymentPhase::kDegraded;
      status.reason = fmt::format("{} of {} replicas ready; restarting after a {} backoff{}",
                                  status.ready_replicas, replicas,
                                  absl::FormatDuration(history.backoff), failure);
    } else {
      status.phase = DeploymentPhase::kProgressing;
      if (!outdated.empty()) {
        status.reason = fmt::format("rolling out {}:{}: {} of {} ready", spec.model,
                                    spec.version, ready_current, replicas);
      } else if (backing_off) {
        // The backoff, not the time left: a status that changes every pass would be
        // rewritten every pass.
        status.reason = fmt::format("restarting after a {} backoff{}",
                                    absl::FormatDuration(history.backoff), failure);
      } else if (replicas == 0) {
        status.reason = "stopping instances";
      } else {
        status.reason = fmt::format("{} of {} replicas ready; {} starting", ready_current,
                                    replicas, starting);
      }
    }
    if (status != d.status) statuses_.emplace_back(d.name, std::move(status));
  }

  void WriteStatuses() ABSL_EXCLUSIVE_LOCKS_REQUIRED(pass_mu_) {
    for (const auto& [name, status] : statuses_) {
      if (absl::StatusOr<Deployment> written = store_.SetDeploymentStatus(name, status);
          !written.ok()) {
        spdlog::warn("reconciler: cannot write the status of {} (retrying next pass): {}", name,
                     written.status().ToString());
      }
    }
    statuses_.clear();
  }

  // Kills instances not ready start_timeout after their start: a failure.
  void KillStartTimeouts(const std::vector<Tracked*>& mine, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(pass_mu_) {
    for (Tracked* t : mine) {
      if (t->row.state != InstanceState::kStarting || t->stop_sent ||
          now - t->started < options_.start_timeout) {
        continue;
      }
      provider_.Kill(t->row.id);
      t->row.state = InstanceState::kFailed;
      t->row.last_error = fmt::format("not ready {} after its start; killed",
                                      absl::FormatDuration(options_.start_timeout));
      t->dirty = true;
      spdlog::warn("reconciler: instance {}: {}", t->row.id, t->row.last_error);
    }
  }

  // Counts each instance that ended without being asked to once, and sets the backoff.
  void CountFailures(const std::vector<Tracked*>& mine, History& history, absl::Time now) {
    for (Tracked* t : mine) {
      if (!IsTerminal(t->row.state) || t->counted) continue;
      t->counted = true;
      if (t->stop_sent) {
        t->remove = true;  // stopped as asked: nothing to replace
        continue;
      }
      RecordFailure(history, fmt::format("{}: {}", t->row.id, t->row.last_error), now);
    }
  }

  void RecordFailure(History& history, std::string reason, absl::Time now) {
    ++history.restarts;
    ++history.consecutive;
    absl::Duration backoff = options_.initial_backoff;
    for (int32_t i = 1; i < history.consecutive && backoff < options_.max_backoff; ++i) backoff *= 2;
    backoff = std::min(backoff, options_.max_backoff);
    history.backoff = backoff;
    history.retry_at = now + backoff;
    history.last_failure = now;
    history.last_failure_reason = std::move(reason);
  }

  // Failed instances stay (rows visible with their error) until replaced: one row per
  // replacement started, all of them once no replacement is needed.
  void DropReplacedFailures(const std::vector<Tracked*>& mine, int32_t replaced, bool all)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(pass_mu_) {
    for (Tracked* t : mine) {
      if (t->remove || !IsTerminal(t->row.state) || t->stop_sent) continue;
      if (!all && replaced-- <= 0) break;
      t->remove = true;
    }
  }

  InstanceLaunch MakeLaunch(const Deployment& d, const ModelVersion& version) {
    // Ids are names (at most 128 bytes): leave room for the suffix.
    static constexpr std::string_view kAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
    std::string id = d.name.substr(0, 121) + "-";
    std::uniform_int_distribution<size_t> pick(0, kAlphabet.size() - 1);
    for (int i = 0; i < 6; ++i) id += kAlphabet[pick(random_)];
    return {.id = std::move(id),
            .deployment = d.name,
            .model = d.spec.model,
            .version = d.spec.version,
            .model_path = version.file_path,
            .model_bytes = version.size_bytes,
            .engine = d.spec.engine,
            .gguf = version.gguf};
  }

  Tracked* StartInstance(InstanceLaunch launch, History& history, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(pass_mu_) {
    absl::StatusOr<Instance> row = provider_.Start(launch);
    if (!row.ok()) {
      spdlog::warn("reconciler: cannot start an instance of {}: {}", launch.deployment,
                   row.status().ToString());
      RecordFailure(history, fmt::format("cannot start: {}", Message(row.status())), now);
      return nullptr;
    }
    row->restarts = history.restarts;
    spdlog::info("reconciler: started instance {} of {} ({}:{}, restarts {})", row->id,
                 launch.deployment, launch.model, launch.version, row->restarts);
    const std::string id = row->id;
    deletes_.erase(id);
    Tracked& t = instances_[id] = Tracked{.row = *std::move(row),
                                          .launch = std::move(launch),
                                          .started = now,
                                          .sequence = ++sequence_};
    return &t;
  }

  void StopInstance(Tracked& t, std::string_view why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(pass_mu_) {
    spdlog::info("reconciler: stopping instance {} of {} ({})", t.row.id, t.row.deployment, why);
    provider_.Stop(t.row.id, options_.drain_timeout);
    t.stop_sent = true;
    t.row.state = InstanceState::kDraining;
    t.dirty = true;
  }

  // Instances whose deployment is gone: stop them, forget them once stopped.
  void StopOrphans(const std::set<std::string, std::less<>>& names)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(pass_mu_) {
    for (auto& [id, t] : instances_) {
      if (names.contains(t.row.deployment)) continue;
      if (IsTerminal(t.row.state)) {
        t.remove = true;
      } else if (!t.stop_sent) {
        StopInstance(t, "deployment deleted");
      }
    }
    for (auto it = history_.begin(); it != history_.end();) {
      it = names.contains(it->first) ? std::next(it) : history_.erase(it);
    }
  }

  void ForgetRemoved() ABSL_EXCLUSIVE_LOCKS_REQUIRED(pass_mu_) {
    for (auto it = instances_.begin(); it != instances_.end();) {
      if (it->second.remove) {
        deletes_.insert(it->first);
        it = instances_.erase(it);
      } else {
        ++it;
      }
    }
  }

  // Writes changed rows and deletes removed ones; what fails is retried next pass.
  void FlushRows() ABSL_EXCLUSIVE_LOCKS_REQUIRED(pass_mu_) {
    for (auto& [id, t] : instances_) {
      if (!t.dirty) continue;
      if (absl::StatusOr<Instance> put = store_.PutInstance(t.row); put.ok()) {
        t.dirty = false;
      } else {
        spdlog::warn("reconciler: cannot write instance {} (retrying next pass): {}", id,
                     put.status().ToString());
      }
    }
    for (auto it = deletes_.begin(); it != deletes_.end();) {
      absl::Status deleted = store_.DeleteInstance(*it);
      if (deleted.ok() || absl::IsNotFound(deleted)) {
        it = deletes_.erase(it);
      } else {
        spdlog::warn("reconciler: cannot delete instance {} (retrying next pass): {}", *it,
                     deleted.ToString());
        ++it;
      }
    }
  }

  void PublishEndpoints() ABSL_EXCLUSIVE_LOCKS_REQUIRED(pass_mu_) {
    std::vector<Endpoint> endpoints;
    for (const auto& [id, t] : instances_) {
      if (t.row.state != InstanceState::kReady || t.stop_sent) continue;
      endpoints.push_back({.instance_id = id,
                           .deployment = t.row.deployment,
                           .model = t.row.model,
                           .version = t.row.version,
                           .url = fmt::format("http://{}:{}", t.row.host, t.row.port)});
    }
    {
      absl::MutexLock lock(&endpoints_mu_);
      if (endpoints_ == endpoints) return;
      endpoints_ = std::move(endpoints);
    }
    if (options_.on_endpoints_changed) options_.on_endpoints_changed();
  }

  Store& store_;
  Provider& provider_;
  ReconcilerOptions options_;

  // Held for a whole pass (and adoption, shutdown): passes never overlap.
  absl::Mutex pass_mu_;
  std::map<std::string, Tracked, std::less<>> instances_ ABSL_GUARDED_BY(pass_mu_);
  std::set<std::string, std::less<>> deletes_ ABSL_GUARDED_BY(pass_mu_);  // rows to delete
  // Statuses that changed in this pass, written after the instance rows.
  std::vector<std::pair<std::string, DeploymentStatus>> statuses_ ABSL_GUARDED_BY(pass_mu_);
  std::map<std::string, History, std::less<>> history_ ABSL_GUARDED_BY(pass_mu_);
  int64_t sequence_ ABSL_GUARDED_BY(pass_mu_) = 0;
  std::mt19937_64 random_ ABSL_GUARDED_BY(pass_mu_);
  bool shut_down_ ABSL_GUARDED_BY(pass_mu_) = false;

  absl::Mutex loop_mu_;
  std::thread loop_ ABSL_GUARDED_BY(loop_mu_);
  bool triggered_ ABSL_GUARDED_BY(loop_mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(loop_mu_) = false;

  mutable absl::Mutex endpoints_mu_;
  std::vector<Endpoint> endpoints_ ABSL_GUARDED_BY(endpoints_mu_);
};

Reconciler::Reconciler(Store& store, Provider& provider, ReconcilerOptions options)
    : impl_(std::make_unique<Impl>(store, provider, std::move(options))) {}
Reconciler::~Reconciler() = default;

absl::Status Reconciler::Start() { return impl_->Start(); }
void Reconciler::ReconcileOnce() { impl_->ReconcileOnce(); }
void Reconciler::Trigger() { impl_->Trigger(); }
void Reconciler::Stop(bool stop_instances) { impl_->Stop(stop_instances); }
std::vector<Endpoint> Reconciler::ReadyEndpoints(std::string_view model) const {
  return impl_->ReadyEndpoints(model);
}

}  // namespace triplane::control
