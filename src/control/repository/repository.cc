#include "control/repository/repository.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/http_types.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "control/repository/model_pull.h"
#include "control/repository/repository_files.h"
#include "fmt/format.h"
#include "spdlog/spdlog.h"

namespace triplane::control {

using common::ToStd;
using namespace repository_internal;

namespace {

// Finished jobs kept for GetPull/ListPulls; older ones are forgotten.
constexpr size_t kMaxFinishedPulls = 100;

bool IsFinished(PullState state) {
  return state == PullState::kSucceeded || state == PullState::kFailed ||
         state == PullState::kCancelled;
}

// "host:port" → canonical "host:port"; IPv6 hosts may be bracketed.
std::string CanonicalHostPort(std::string_view host_port) {
  const size_t colon = host_port.rfind(':');
  if (colon == std::string_view::npos) return common::CanonicalHost(host_port);
  return fmt::format("{}:{}", common::CanonicalHost(host_port.substr(0, colon)),
                     host_port.substr(colon + 1));
}

// RFC 3339 UTC as the store's JSON shows times; null for "not yet".
nlohmann::json TimeOrNull(absl::Time t) {
  if (t == absl::InfinitePast()) return nullptr;
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", t, absl::UTCTimeZone());
}

// A reader's failure as the InvalidArgument the API promises, naming the file.
absl::Status NotGguf(const std::string& path, const absl::Status& status) {
  if (status.code() == absl::StatusCode::kInvalidArgument &&
      ToStd(status.message()).find(path) != std::string_view::npos) {
    return status;
  }
  return absl::InvalidArgumentError(
      fmt::format("{} is not a usable GGUF file: {}", path, ToStd(status.message())));
}

}  // namespace

std::string_view ToString(PullState state) {
  switch (state) {
    case PullState::kQueued:
      return "queued";
    case PullState::kRunning:
      return "running";
    case PullState::kSucceeded:
      return "succeeded";
    case PullState::kFailed:
      return "failed";
    case PullState::kCancelled:
      return "cancelled";
  }
  return "unknown";
}

nlohmann::json ToJson(const PullJob& job) {
  return {{"id", job.id},
          {"model", job.request.model},
          {"version", job.request.version},
          {"url", job.request.url},
          {"resolved_url", job.resolved_url},
          {"state", ToString(job.state)},
          {"bytes_done", job.bytes_done},
          {"bytes_total", job.bytes_total},
          {"error", job.error},
          {"result", job.version ? ToJson(*job.version) : nlohmann::json(nullptr)},
          {"actor", job.actor},
          {"started_at", TimeOrNull(job.started_at)},
          {"finished_at", TimeOrNull(job.finished_at)}};
}

class ModelRepository::Impl {
 public:
  Impl(Store& store, RepositoryOptions options)
      : store_(store), options_(std::move(options)), refused_hosts_(options_.refused_hosts) {
    std::error_code ec;
    models_dir_ = std::filesystem::absolute(options_.models_dir, ec).lexically_normal().string();
    if (!models_dir_.empty() && models_dir_.back() == '/') models_dir_.pop_back();
    incoming_dir_ = models_dir_ + "/" + kIncomingDir;
    if (absl::Status s = EnsureDirs(); !s.ok()) {
      spdlog::warn("model repository: {}", ToStd(s.message()));
    } else {
      RemoveStaleCopies();
    }
    for (int i = 0; i < std::max(1, options_.pull_threads); ++i) {
      workers_.emplace_back([this] { WorkLoop(); });
    }
  }

  ~Impl() {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
      for (auto& [n, entry] : jobs_) entry->cancel = true;
    }
    for (std::thread& t : workers_) t.join();
  }

  absl::StatusOr<ModelVersion> AddFromPath(const AddVersionRequest& request,
                                           const WriteOptions& options) {
    TP_RETURN_IF_ERROR(ValidateTarget(request.model, request.version));
    std::error_code ec;
    if (!std::filesystem::is_regular_file(request.path, ec)) {
      return absl::InvalidArgumentError(std::filesystem::exists(request.path, ec)
                                            ? fmt::format("not a regular file: {}", request.path)
                                            : fmt::format("no such file: {}", request.path));
    }
    // The metadata first: a file that is not GGUF is refused before any copying.
    absl::StatusOr<GgufSummary> summary = ReadGguf(request.path, request.path);
    if (!summary.ok()) return summary.status();
    TP_RETURN_IF_ERROR(EnsureDirs());
    TP_ASSIGN_OR_RETURN(CopiedFile copied, CopyAndHash(request.path, incoming_dir_));
    return Register({.model = request.model,
                     .version = request.version,
                     .description = request.description,
                     .source = request.path},
                    copied, *std::move(summary), options);
  }

  absl::StatusOr<PullJob> StartPull(const PullRequest& request, const WriteOptions& options) {
    TP_RETURN_IF_ERROR(ValidateTarget(request.model, request.version));
    PullRequest normalized = request;
    if (!request.sha256.empty()) {
      normalized.sha256 = common::AsciiToLower(request.sha256);
      if (!IsSha256Hex(normalized.sha256)) {
        return absl::InvalidArgumentError(
            fmt::format("invalid sha256 '{}': expected 64 hex digits", request.sha256));
      }
    }
    TP_ASSIGN_OR_RETURN(std::string resolved, ResolveModelUrl(request.url));
    std::string url_error;
    const std::optional<common::HttpUrl> url = common::ParseHttpUrl(resolved, &url_error);
    if (!url) {
      return absl::InvalidArgumentError(
          fmt::format("invalid URL '{}': {}", request.url, url_error));
    }
    if (IsOwnAddress(url->host, url->port)) {
      return absl::InvalidArgumentError(fmt::format(
          "refusing to pull from {}: it is the control plane's own address", request.url));
    }
    absl::MutexLock lock(&mu_);
    if (stopping_) return absl::UnavailableError("the model repository is shutting down");
    for (const auto& [n, entry] : jobs_) {
      const PullJob& other = entry->job;
      if (IsFinished(other.state)) continue;
      if (other.resolved_url == resolved) {
        return absl::AlreadyExistsError(
            fmt::format("{} is already pulling {}", other.id, resolved));
      }
      if (!request.version.empty() && other.request.model == request.model &&
          other.request.version == request.version) {
        return absl::AlreadyExistsError(
            fmt::format("{} is already pulling {}:{}", other.id, request.model, request.version));
      }
    }
    const int64_t number = ++next_job_;
    auto entry = std::make_unique<JobEntry>();
    entry->job = PullJob{.id = fmt::format("pull-{}", number),
                         .request = std::move(normalized),
                         .resolved_url = std::move(resolved),
                         .actor = options.actor,
                         .started_at = absl::Now()};
    PullJob snapshot = entry->job;
    jobs_.emplace(number, std::move(entry));
    queue_.push_back(number);
    return snapshot;
  }

  void RefusePullsFrom(std::string host_port) {
    absl::MutexLock lock(&mu_);
    refused_hosts_.push_back(std::move(host_port));
  }

  bool IsOwnAddress(std::string_view host, int port) const {
    const std::string target = CanonicalHostPort(fmt::format("{}:{}", host, port));
    absl::MutexLock lock(&mu_);
    for (const std::string& refused : refused_hosts_) {
      if (CanonicalHostPort(refused) == target) return true;
    }
    return false;
  }

  // IsOwnAddress, or a host name that resolves to one of the refused addresses (a name
  // for 127.0.0.1 in /etc/hosts, say). Names resolve on the pull's own thread, before
  // each hop; the address each connection reached (asked on the HTTP client's I/O
  // thread) is a literal, judged without resolving.
  bool ResolvesToOwnAddress(std::string_view host, int port) const {
    if (IsOwnAddress(host, port)) return true;
    const std::string name(host);  // a bracketed IPv6 literal does not resolve: judged above
    in_addr v4{};
    in6_addr v6{};
    if (::inet_pton(AF_INET, name.c_str(), &v4) == 1 || ::inet_pton(AF_INET6, name.c_str(), &v6) == 1) {
      return false;  // a literal: IsOwnAddress judged it
    }
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (::getaddrinfo(name.c_str(), nullptr, &hints, &found) != 0) return false;  // the fetch reports it
    bool own = false;
    for (const addrinfo* a = found; a != nullptr && !own; a = a->ai_next) {
      char text[INET6_ADDRSTRLEN] = {};
      const void* address = a->ai_family == AF_INET6
                                ? static_cast<const void*>(&reinterpret_cast<const sockaddr_in6*>(a->ai_addr)->sin6_addr)
                                : static_cast<const void*>(&reinterpret_cast<const sockaddr_in*>(a->ai_addr)->sin_addr);
      if ((a->ai_family == AF_INET || a->ai_family == AF_INET6) &&
          ::inet_ntop(a->ai_family, address, text, sizeof(text)) != nullptr) {
        own = IsOwnAddress(text, port);
      }
    }
    ::freeaddrinfo(found);
    return own;
  }

  absl::StatusOr<PullJob> GetPull(std::string_view id) const {
    absl::MutexLock lock(&mu_);
    TP_ASSIGN_OR_RETURN(const JobEntry* entry, Find(id));
    return entry->job;
  }

  std::vector<PullJob> ListPulls() const {
    absl::MutexLock lock(&mu_);
    std::vector<PullJob> jobs;
    for (auto it = jobs_.rbegin(); it != jobs_.rend(); ++it) jobs.push_back(it->second->job);
    return jobs;
  }

  absl::Status CancelPull(std::string_view id) {
    absl::MutexLock lock(&mu_);
    TP_ASSIGN_OR_RETURN(JobEntry * entry, Find(id));
    entry->cancel = true;
    if (entry->job.state == PullState::kQueued) {
      const int64_t number = JobNumber(id);
      queue_.erase(std::remove(queue_.begin(), queue_.end(), number), queue_.end());
      FinishLocked(*entry, PullState::kCancelled, "cancelled");
    }
    // A running job ends as cancelled when PullFile notices the flag.
    return absl::OkStatus();
  }

  absl::Status DeleteVersion(std::string_view model, std::string_view version,
                             const WriteOptions& options) {
    std::lock_guard files(files_mu_);
    TP_ASSIGN_OR_RETURN(ModelVersion doomed, store_.GetModelVersion(model, version));
    TP_RETURN_IF_ERROR(store_.DeleteModelVersion(model, version, options));
    RemoveUnusedFiles({doomed.file_path});
    return absl::OkStatus();
  }

  absl::Status DeleteModel(std::string_view model, const WriteOptions& options) {
    std::lock_guard files(files_mu_);
    TP_ASSIGN_OR_RETURN(std::vector<ModelVersion> versions, store_.ListModelVersions(model));
    TP_RETURN_IF_ERROR(store_.DeleteModel(model, options));
    std::vector<std::string> paths;
    for (const ModelVersion& v : versions) paths.push_back(v.file_path);
    RemoveUnusedFiles(paths);
    return absl::OkStatus();
  }

 private:
  struct JobEntry {
    PullJob job;
    std::atomic<bool> cancel{false};
  };

  struct Target {
    std::string model;
    std::string version;
    std::string description;
    std::string source;
  };

  absl::Status ValidateTarget(std::string_view model, std::string_view version) {
    TP_RETURN_IF_ERROR(ValidateName("model", model));
    if (version.empty()) return absl::OkStatus();
    TP_RETURN_IF_ERROR(ValidateName("version", version));
    // Checked early so that no file is copied or downloaded in vain; the store checks
    // again when registering.
    absl::StatusOr<ModelVersion> existing = store_.GetModelVersion(model, version);
    if (existing.ok()) {
      return absl::AlreadyExistsError(
          fmt::format("model {} already has a version {}", model, version));
    }
    if (existing.status().code() != absl::StatusCode::kNotFound) return existing.status();
    return absl::OkStatus();
  }

  // The metadata of `path`; errors name `shown` (what the caller gave us).
  absl::StatusOr<GgufSummary> ReadGguf(const std::string& path, const std::string& shown) const {
    if (!options_.read_gguf) return absl::InternalError("the model repository has no GGUF reader");
    absl::StatusOr<GgufSummary> summary = options_.read_gguf(path);
    if (!summary.ok()) return NotGguf(shown, summary.status());
    return summary;
  }

  absl::Status EnsureDirs() {
    std::error_code ec;
    std::filesystem::create_directories(incoming_dir_, ec);
    if (ec) {
      return absl::InternalError(
          fmt::format("cannot create the models directory {}: {}", incoming_dir_, ec.message()));
    }
    return absl::OkStatus();
  }

  // Copies left by a process that died mid-copy can never be finished; partial
  // downloads (*.part) are kept for a resume.
  void RemoveStaleCopies() {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(incoming_dir_, ec)) {
      if (entry.path().filename().string().starts_with(kCopyPrefix)) {
        RemoveQuietly(entry.path().string());
      }
    }
  }

  std::string FinalPath(const std::string& sha256) const {
    return fmt::format("{}/{}.gguf", models_dir_, sha256);
  }

  // Moves `file` (in .incoming) to its content-addressed place and registers the version,
  // creating the model when new. On failure the file is removed unless another version
  // already used those bytes.
  absl::StatusOr<ModelVersion> Register(const Target& target, const CopiedFile& file,
                                        GgufSummary summary, const WriteOptions& options) {
    std::lock_guard files(files_mu_);
    const std::string final_path = FinalPath(file.sha256);
    std::error_code ec;
    const bool existed = std::filesystem::exists(final_path, ec);
    if (existed) {
      RemoveQuietly(file.temp_path);  // the same bytes are already in place
    } else if (absl::Status s = MoveIntoPlace(file.temp_path, final_path); !s.ok()) {
      RemoveQuietly(file.temp_path);
      return s;
    }
    absl::StatusOr<ModelVersion> created =
        CreateVersion(target, file, final_path, std::move(summary), options);
    if (!created.ok() && !existed) RemoveUnusedFiles({final_path});
    return created;
  }

  absl::StatusOr<ModelVersion> CreateVersion(const Target& target, const CopiedFile& file,
                                             const std::string& final_path, GgufSummary summary,
                                             const WriteOptions& options) {
    bool created_model = false;
    if (absl::StatusOr<Model> model = store_.GetModel(target.model); !model.ok()) {
      if (model.status().code() != absl::StatusCode::kNotFound) return model.status();
      absl::StatusOr<Model> made =
          store_.CreateModel({.name = target.model, .description = target.description}, options);
      // AlreadyExists: another request created it meanwhile, which is just as good.
      if (!made.ok() && made.status().code() != absl::StatusCode::kAlreadyExists) {
        return made.status();
      }
      created_model = made.ok();
    }
    absl::StatusOr<ModelVersion> version = store_.CreateModelVersion({.model = target.model,
                                                                      .version = target.version,
                                                                      .file_path = final_path,
                                                                      .size_bytes = file.size_bytes,
                                                                      .sha256 = file.sha256,
                                                                      .source = target.source,
                                                                      .gguf = std::move(summary)},
                                                                     options);
    if (!version.ok() && created_model) {
      // Leave no empty model behind for a version that never came to be.
      if (absl::Status s = store_.DeleteModel(target.model, options); !s.ok()) {
        spdlog::warn("cannot remove model {} after a failed add: {}", target.model,
                     ToStd(s.message()));
      }
    }
    return version;
  }

  // Removes each of `paths` that no remaining version refers to.
  // REQUIRES: files_mu_ held, so that no Register can adopt the file meanwhile.
  void RemoveUnusedFiles(const std::vector<std::string>& paths) {
    absl::StatusOr<std::vector<ModelVersion>> all = store_.ListModelVersions("");
    if (!all.ok()) {
      spdlog::warn("keeping model files: cannot list versions: {}", ToStd(all.status().message()));
      return;
    }
    for (const std::string& path : paths) {
      const bool used = std::any_of(all->begin(), all->end(),
                                    [&](const ModelVersion& v) { return v.file_path == path; });
      if (!used) RemoveQuietly(path);
    }
  }

  // ---- Pull jobs ----

  static int64_t JobNumber(std::string_view id) {
    if (!id.starts_with("pull-")) return -1;
    int64_t n = 0;
    for (char c : id.substr(5)) {
      if (c < '0' || c > '9' || n > (INT64_MAX - 9) / 10) return -1;
      n = n * 10 + (c - '0');
    }
    return id.size() > 5 ? n : -1;
  }

  absl::StatusOr<JobEntry*> Find(std::string_view id) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const auto it = jobs_.find(JobNumber(id));
    if (it == jobs_.end()) return absl::NotFoundError(fmt::format("no pull job '{}'", id));
    return it->second.get();
  }

  void FinishLocked(JobEntry& entry, PullState state, std::string error)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    entry.job.state = state;
    entry.job.error = std::move(error);
    entry.job.finished_at = absl::Now();
    // Forget the oldest finished jobs beyond the limit (map order = creation order).
    size_t finished = 0;
    for (const auto& [n, e] : jobs_) finished += IsFinished(e->job.state) ? 1 : 0;
    for (auto it = jobs_.begin(); it != jobs_.end() && finished > kMaxFinishedPulls;) {
      if (IsFinished(it->second->job.state) && it->second.get() != &entry) {
        it = jobs_.erase(it);
        --finished;
      } else {
        ++it;
      }
    }
  }

  void WorkLoop() {
    while (true) {
      JobEntry* entry = nullptr;
      {
        absl::MutexLock lock(&mu_);
        auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return stopping_ || !queue_.empty();
        };
        mu_.Await(absl::Condition(&ready));
        if (stopping_) return;
        entry = jobs_.at(queue_.front()).get();
        queue_.pop_front();
        entry->job.state = PullState::kRunning;
      }
      // Only this worker finishes a running job, so `entry` stays valid until then.
      Run(*entry);
    }
  }

  void Run(JobEntry& entry) {
    PullRequest request;
    std::string url;
    {
      absl::MutexLock lock(&mu_);
      request = entry.job.request;
      url = entry.job.resolved_url;
    }
    absl::StatusOr<ModelVersion> version = Download(entry, request, url);
    absl::MutexLock lock(&mu_);
    if (version.ok()) {
      entry.job.version = *std::move(version);
      FinishLocked(entry, PullState::kSucceeded, "");
    } else if (version.status().code() == absl::StatusCode::kCancelled) {
      FinishLocked(entry, PullState::kCancelled, "cancelled");
    } else {
      spdlog::warn("{} of {} failed: {}", entry.job.id, url, ToStd(version.status().message()));
      FinishLocked(entry, PullState::kFailed, std::string(ToStd(version.status().message())));
    }
  }

  absl::StatusOr<ModelVersion> Download(JobEntry& entry, const PullRequest& request,
                                        const std::string& url) {
    TP_RETURN_IF_ERROR(EnsureDirs());
    // Named after the URL, so that pulling the same URL again resumes the partial file.
    const std::string dest = fmt::format("{}/{}.gguf", incoming_dir_, common::Sha256Hex(url));
    TP_ASSIGN_OR_RETURN(PullResult pulled,
                        PullFile({.url = url,
                                  .dest = dest,
                                  .ca_file = options_.ca_file,
                                  .expected_sha256 = request.sha256,
                                  .progress =
                                      [this, &entry](int64_t done, int64_t total) {
                                        absl::MutexLock lock(&mu_);
                                        entry.job.bytes_done = done;
                                        entry.job.bytes_total = total;
                                      },
                                  .cancel = &entry.cancel,
                                  .refuse = [this](std::string_view host, int port) {
                                    return ResolvesToOwnAddress(host, port);
                                  }}));
    absl::StatusOr<GgufSummary> summary = ReadGguf(dest, request.url);
    if (!summary.ok()) {
      RemoveQuietly(dest);
      return summary.status();
    }
    return Register({.model = request.model,
                     .version = request.version,
                     .description = request.description,
                     .source = request.url},
                    {.temp_path = dest, .sha256 = pulled.sha256, .size_bytes = pulled.bytes},
                    *std::move(summary), {.actor = entry.job.actor});
  }

  Store& store_;
  const RepositoryOptions options_;
  std::string models_dir_;
  std::string incoming_dir_;

  // Serialises moving files into place, registering them and deleting them, so that a
  // file is never removed while a new version is about to refer to it.
  std::mutex files_mu_;

  mutable absl::Mutex mu_;
  std::map<int64_t, std::unique_ptr<JobEntry>> jobs_ ABSL_GUARDED_BY(mu_);
  std::deque<int64_t> queue_ ABSL_GUARDED_BY(mu_);
  int64_t next_job_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::string> refused_hosts_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> workers_;
};

ModelRepository::ModelRepository(Store& store, RepositoryOptions options)
    : impl_(std::make_unique<Impl>(store, std::move(options))) {}

ModelRepository::~ModelRepository() = default;

absl::StatusOr<ModelVersion> ModelRepository::AddFromPath(const AddVersionRequest& request,
                                                          const WriteOptions& options) {
  return impl_->AddFromPath(request, options);
}

absl::StatusOr<PullJob> ModelRepository::StartPull(const PullRequest& request,
                                                   const WriteOptions& options) {
  return impl_->StartPull(request, options);
}

void ModelRepository::RefusePullsFrom(std::string host_port) {
  impl_->RefusePullsFrom(std::move(host_port));
}

bool ModelRepository::IsOwnAddress(std::string_view host, int port) const {
  return impl_->IsOwnAddress(host, port);
}

absl::StatusOr<PullJob> ModelRepository::GetPull(std::string_view id) const {
  return impl_->GetPull(id);
}

std::vector<PullJob> ModelRepository::ListPulls() const { return impl_->ListPulls(); }

absl::Status ModelRepository::CancelPull(std::string_view id) { return impl_->CancelPull(id); }

absl::Status ModelRepository::DeleteVersion(std::string_view model, std::string_view version,
                                            const WriteOptions& options) {
  return impl_->DeleteVersion(model, version, options);
}

absl::Status ModelRepository::DeleteModel(std::string_view model, const WriteOptions& options) {
  return impl_->DeleteModel(model, options);
}

}  // namespace triplane::control
