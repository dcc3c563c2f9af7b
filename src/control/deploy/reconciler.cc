#include "control/deploy/reconciler.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <optional>
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
    SendStops(options_.clock());
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
    WriteEvents();
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
    bool stop_called = false;  // provider_.Stop() was called (stop_sent: at stop_at)
    absl::Time stop_at = absl::InfiniteFuture();
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
        d.ok() && d->spec.model == row.model &&
        (d->spec.version == row.version || d->spec.canary_version == row.version)) {
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
        // Out of the routes, not yet told to stop: draining as far as anyone should know.
        next.state = t.stop_sent && !t.stop_called && IsLive(obs->state) ? InstanceState::kDraining : obs->state;
        next.host = obs->host;
        next.port = obs->port;
        next.pid = obs->pid;
        if (!obs->last_error.empty()) next.last_error = obs->last_error;
      } else {
        next.state = InstanceState::kFailed;
        next.last_error = fmt::format("the provider lost the instance: {}", Message(obs.status()));
      }
      if (next.state != t.row.state && (next.state == InstanceState::kReady || IsTerminal(next.state))) {
        Note(t.row.deployment, "instance",
             fmt::format("instance {} ({}) is {}{}", id, t.row.version, ToString(next.state),
                         next.state == InstanceState::kFailed && !t.stop_sent ? ": " + next.last_error : ""));
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

  // One set of instances a spec asks for: the deployed version's replicas, or a canary's.
  struct Target {
    std::string version;
    int32_t replicas = 0;
    std::optional<ModelVersion> file;  // set when the version can be served
    std::vector<Tracked*> current;     // live instances of this target
  };

  static bool Matches(const Tracked& t, const DeploymentSpec& spec, const std::string& version) {
    return t.launch.model == spec.model && t.launch.version == version && t.launch.engine == spec.engine;
  }

  // Canary instances: the canary's share of the replicas, at least one.
  static int32_t CanaryReplicas(const DeploymentSpec& spec) {
    return std::max(1, (std::max(0, spec.replicas) * spec.canary_percent + 99) / 100);
  }

  // Why `version` of the deployment cannot be served ("" when it can); nullopt when the
  // store could not be read (retry next pass).
  std::optional<std::string> Unservable(const Deployment& d, const std::string& version, Target& target)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(pass_mu_) {
    absl::StatusOr<ModelVersion> found = store_.GetModelVersion(d.spec.model, version);
    if (absl::IsNotFound(found.status())) {
      return fmt::format("model version {}:{} does not exist", d.spec.model, version);
    }
    if (!found.ok()) {
      spdlog::warn("reconciler: deployment {}: cannot read model version {}:{} (retrying): {}", d.name,
                   d.spec.model, version, found.status().ToString());
      return std::nullopt;
    }
    if (std::error_code ec; !std::filesystem::is_regular_file(found->file_path, ec)) {
      return fmt::format("the file of model version {}:{} is missing: {}", d.spec.model, version,
                         found->file_path);
    }
    target.file = *std::move(found);
    return std::string();
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

    // The deployed version's replicas, and a canary's next to them.
    std::vector<Target> targets;
    targets.push_back({.version = spec.version, .replicas = std::max(0, spec.replicas)});
    if (!spec.canary_version.empty()) {
      targets.push_back({.version = spec.canary_version, .replicas = CanaryReplicas(spec)});
    }
    // Why the deployed version cannot be served at all (phase kFailed), if so; a canary
    // that cannot be served only runs no instances.
    std::string blocked, canary_blocked;
    for (size_t i = 0; i < targets.size(); ++i) {
      std::optional<std::string> why = Unservable(d, targets[i].version, targets[i]);
      if (!why) return;
      (i == 0 ? blocked : canary_blocked) = *why;
    }

    std::vector<Tracked*> outdated;  // live, of an earlier spec
    for (Tracked* t : mine) {
      if (!IsLive(t->row.state) || t->stop_sent) continue;
      auto target = std::find_if(targets.begin(), targets.end(),
                                 [&](const Target& g) { return Matches(*t, spec, g.version); });
      (target != targets.end() ? target->current : outdated).push_back(t);
    }

    // Scale down: the surplus, not-ready ones first, then the newest.
    for (Target& target : targets) {
      std::vector<Tracked*>& current = target.current;
      if (static_cast<int32_t>(current.size()) <= target.replicas) continue;
      std::stable_sort(current.begin(), current.end(), [](const Tracked* a, const Tracked* b) {
        const bool a_ready = a->row.state == InstanceState::kReady;
        const bool b_ready = b->row.state == InstanceState::kReady;
        return a_ready != b_ready ? !a_ready : a->sequence > b->sequence;
      });
      while (static_cast<int32_t>(current.size()) > target.replicas) {
        StopInstance(*current.front(), &target == &targets[0] ? "scale-down" : "canary scale-down");
        current.erase(current.begin());
      }
    }

    // Scale up, as far as capacity allows and backoff permits.
    std::string pending;
    bool making_room = false;  // an outdated instance drains so that a new one fits
    bool backing_off = false;
    int32_t started = 0;
    for (Target& target : targets) {
      if (!target.file || !pending.empty() || backing_off) continue;
      for (int32_t i = static_cast<int32_t>(target.current.size()); i < target.replicas; ++i) {
        if (now < history.retry_at) {
          backing_off = true;
          break;
        }
        InstanceLaunch launch = MakeLaunch(d, target.version, *target.file);
        const Resources demand = provider_.Demand(launch);
        const Resources capacity = provider_.Capacity();
        if (!Fits(used, demand, capacity)) {
          if (&target == &targets[0] && MakeRoom(outdated, target.current, target.replicas, making_room)) break;
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
        target.current.push_back(t);
        ++started;
      }
    }
    const int32_t replicas = targets[0].replicas;
    std::vector<Tracked*>& current = targets[0].current;
    bool all_placed = true;
    for (const Target& target : targets) {
      all_placed = all_placed && (!target.file || static_cast<int32_t>(target.current.size()) >= target.replicas);
    }
    DropReplacedFailures(mine, started, all_placed);

    // Rollout: stop instances of an earlier spec once enough of the new one are ready,
    // keeping the ready count from falling below the replicas wanted.
    auto ready_count = [](const std::vector<Tracked*>& ts) {
      return static_cast<int32_t>(std::count_if(ts.begin(), ts.end(), [](const Tracked* t) {
        return t->row.state == InstanceState::kReady;
      }));
    };
    const int32_t ready_current = ready_count(current);
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
    const int32_t canary_wanted = targets.size() > 1 && targets[1].file ? targets[1].replicas : 0;
    const int32_t canary_ready = targets.size() > 1 ? ready_count(targets[1].current) : 0;

    DeploymentStatus status{.observed_generation = d.generation};
    int32_t starting = 0;
    bool draining = false;
    for (const Tracked* t : mine) {
      if (t->stop_sent && !IsTerminal(t->row.state)) draining = true;
    }
    for (const Target& target : targets) {
      for (const Tracked* t : target.current) starting += t->row.state == InstanceState::kStarting;
    }
    status.ready_replicas = ready_current + canary_ready;
    for (const Tracked* t : outdated) status.ready_replicas += t->row.state == InstanceState::kReady;

    const std::string failure =
        history.last_failure_reason.empty() ? "" : "; last failure: " + history.last_failure_reason;
    if (!blocked.empty()) {
      status.phase = DeploymentPhase::kFailed;
      status.reason = blocked;
    } else if (!pending.empty()) {
      status.phase = DeploymentPhase::kPending;
      status.reason = pending;
    } else if (ready_current == replicas && canary_ready == canary_wanted && outdated.empty() &&
               (replicas > 0 || !draining)) {
      status.phase = DeploymentPhase::kRunning;
      if (!canary_blocked.empty()) status.reason = "canary not started: " + canary_blocked;
      if (canary_wanted > 0) {
        status.reason = fmt::format("canary {}:{} takes {}% of the traffic", spec.model, spec.canary_version,
                                    spec.canary_percent);
      }
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
      } else if (canary_ready < canary_wanted) {
        status.reason = fmt::format("starting canary {}:{}: {} of {} ready", spec.model, spec.canary_version,
                                    canary_ready, canary_wanted);
      } else {
        status.reason = fmt::format("{} of {} replicas ready; {} starting", ready_current,
                                    replicas, starting);
      }
    }
    if (status.phase != d.status.phase) {
      Note(d.name, "status",
           fmt::format("{} → {}{}", ToString(d.status.phase), ToString(status.phase),
                       status.reason.empty() ? "" : ": " + status.reason));
    }
    if (status != d.status) statuses_.emplace_back(d.name, std::move(status));
  }

  void Note(const std::string& deployment, std::string kind, std::string message)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(pass_mu_) {
    events_.push_back({.deployment = deployment, .kind = std::move(kind), .message = std::move(message),
                       .actor = "reconciler"});
  }

  void WriteEvents() ABSL_EXCLUSIVE_LOCKS_REQUIRED(pass_mu_) {
    for (const DeploymentEvent& event : events_) {
      if (absl::StatusOr<DeploymentEvent> written = store_.AppendEvent(event); !written.ok()) {
        spdlog::warn("reconciler: cannot record an event of {}: {}", event.deployment,
                     written.status().ToString());
      }
    }
    events_.clear();
  }

  // A rollout with no room to start a new instance beside the old ones (surge) replaces
  // them one at a time instead: one outdated instance drains (the others keep serving)
  // and its room goes to a new one. Only with two replicas or more, so that one always
  // serves, and one at a time. True when one drains (or already was, for this reason).
  bool MakeRoom(std::vector<Tracked*>& outdated, const std::vector<Tracked*>& current, int32_t replicas,
                bool& making_room) ABSL_EXCLUSIVE_LOCKS_REQUIRED(pass_mu_) {
    if (replicas < 2 || outdated.empty()) return false;
    // One at a time: while an instance of this deployment drains, wait for it.
    for (const auto& [id, t] : instances_) {
      if (t.stop_sent && !IsTerminal(t.row.state) && t.row.deployment == outdated.front()->row.deployment) {
        making_room = true;
        return true;
      }
    }
    auto is_ready = [](const Tracked* t) { return t->row.state == InstanceState::kReady; };
    const auto serving = std::count_if(outdated.begin(), outdated.end(), is_ready) +
                         std::count_if(current.begin(), current.end(), is_ready);
    Tracked* victim = outdated.front();
    for (Tracked* t : outdated) {
      if (!is_ready(t)) victim = t;  // a not-ready one first
    }
    if (is_ready(victim) && serving < 2) return false;  // it is the last one serving
    StopInstance(*victim, "rollout: making room for the new version");
    outdated.erase(std::find(outdated.begin(), outdated.end(), victim));
    making_room = true;
    return true;
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

  InstanceLaunch MakeLaunch(const Deployment& d, const std::string& version_name, const ModelVersion& version) {
    // Ids are names (at most 128 bytes): leave room for the suffix.
    static constexpr std::string_view kAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
    std::string id = d.name.substr(0, 121) + "-";
    std::uniform_int_distribution<size_t> pick(0, kAlphabet.size() - 1);
    for (int i = 0; i < 6; ++i) id += kAlphabet[pick(random_)];
    return {.id = std::move(id),
            .deployment = d.name,
            .model = d.spec.model,
            .version = version_name,
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
    Note(launch.deployment, "instance",
         fmt::format("started instance {} ({}){}", row->id, launch.version,
                     history.restarts > 0 ? fmt::format(", restarts so far {}", history.restarts) : ""));
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
    Note(t.row.deployment, "instance", fmt::format("draining instance {} ({}): {}", t.row.id, t.row.version, why));
    t.stop_sent = true;
    t.row.state = InstanceState::kDraining;
    t.dirty = true;
    t.stop_at = options_.clock() + options_.unroute_delay;
    if (options_.unroute_delay <= absl::ZeroDuration()) SendStops(t.stop_at);
  }

  // Stops the instances taken out of the routes at least unroute_delay ago.
  void SendStops(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(pass_mu_) {
    for (auto& [id, t] : instances_) {
      if (!t.stop_sent || t.stop_called || now < t.stop_at) continue;
      provider_.Stop(id, options_.drain_timeout);
      t.stop_called = true;
    }
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
  // Deployment events of this pass, appended after the statuses.
  std::vector<DeploymentEvent> events_ ABSL_GUARDED_BY(pass_mu_);
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
