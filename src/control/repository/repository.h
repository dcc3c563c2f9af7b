#pragma once

// The model repository: models and their immutable versions (store.h) plus the files.
//
// A version's file lives at MODELS_DIR/<sha256>.gguf (content-addressed: two versions
// of the same bytes share one file). AddFromPath copies a local file there, hashing it
// while copying; a pull downloads into MODELS_DIR/.incoming/ with resume (model_pull.h)
// and moves the verified file into place. The GGUF metadata (architecture, parameters,
// types, context length, chat template) is read once, at registration, by the injected
// reader: the control plane does not link the engine; `triplane` passes one built on
// engine/gguf.
//
// Thread-safe. Pulls run on the repository's own threads and are kept in memory (a
// restarted control plane forgets finished jobs; an interrupted download resumes when
// the same URL is pulled again).

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "control/store/store.h"
#include "control/store/store_types.h"

namespace triplane::control {

// Reads a GGUF file's metadata; InvalidArgument when it is not a GGUF file.
using GgufSummaryReader = std::function<absl::StatusOr<GgufSummary>(const std::string& path)>;

struct RepositoryOptions {
  std::string models_dir;       // created if missing
  GgufSummaryReader read_gguf;  // required
  int pull_threads = 2;         // downloads running at once; more wait their turn
  // Pull URLs are refused when they point here (the control plane's own address),
  // e.g. "127.0.0.1:8080"; empty = no such check.
  std::vector<std::string> refused_hosts;
  // Extra trusted CA certificates (PEM) for https:// pulls, on top of the system store
  // (which also honours SSL_CERT_FILE); empty = the system store only.
  std::string ca_file;
};

struct AddVersionRequest {
  std::string model;        // created (with `description`) when it does not exist
  std::string version;      // empty: the store's number ("1", "2", …)
  std::string description;  // of a new model
  std::string path;         // a local GGUF file, readable by the control plane
};

struct PullRequest {
  std::string model;  // created when it does not exist
  std::string version;
  std::string description;
  std::string url;     // http(s):// or hf://ORG/REPO/FILE.gguf[@REVISION]
  std::string sha256;  // expected; empty = not checked (the computed one is recorded)
};

enum class PullState { kQueued, kRunning, kSucceeded, kFailed, kCancelled };
std::string_view ToString(PullState state);

struct PullJob {
  std::string id;  // "pull-<n>"
  PullRequest request;
  std::string resolved_url;
  PullState state = PullState::kQueued;
  int64_t bytes_done = 0;
  int64_t bytes_total = -1;  // -1 until the server says
  std::string error;         // when kFailed: the reason, for people
  std::optional<ModelVersion> version;  // when kSucceeded
  std::string actor;
  absl::Time started_at = absl::InfinitePast();
  absl::Time finished_at = absl::InfinitePast();  // InfinitePast while not finished
};

class ModelRepository {
 public:
  ModelRepository(Store& store, RepositoryOptions options);
  ~ModelRepository();  // Cancels running pulls and joins their threads.

  ModelRepository(const ModelRepository&) = delete;
  ModelRepository& operator=(const ModelRepository&) = delete;

  // Copies `request.path` in, reads its metadata and registers the version (and the
  // model when new), audited as `options.actor`. InvalidArgument for a missing,
  // unreadable or non-GGUF file; AlreadyExists for a taken version; ResourceExhausted
  // when the disk is full (nothing is left behind on any error).
  [[nodiscard]] absl::StatusOr<ModelVersion> AddFromPath(const AddVersionRequest& request,
                                                         const WriteOptions& options);

  // Validates the request (names, URL scheme, refused hosts, sha256 form, version not
  // taken) and queues the download; returns the job at once.
  [[nodiscard]] absl::StatusOr<PullJob> StartPull(const PullRequest& request,
                                                  const WriteOptions& options);
  // Adds "host:port" to RepositoryOptions::refused_hosts, e.g. once a server bound to
  // port 0 knows its port. Thread-safe.
  void RefusePullsFrom(std::string host_port);
  // True when host:port is one of the refused hosts above -- this server itself, in any
  // spelling of loopback ("localhost", "127.1", "[::1]", ...). Thread-safe.
  bool IsOwnAddress(std::string_view host, int port) const;
  [[nodiscard]] absl::StatusOr<PullJob> GetPull(std::string_view id) const;
  std::vector<PullJob> ListPulls() const;  // newest first
  // Stops a queued or running pull (its partial file is kept for a later resume).
  [[nodiscard]] absl::Status CancelPull(std::string_view id);

  // Deletes a version (FailedPrecondition while a deployment or instance uses it), then
  // its file unless another version shares it.
  [[nodiscard]] absl::Status DeleteVersion(std::string_view model, std::string_view version,
                                           const WriteOptions& options);
  // Deletes a model with all its versions and their files (same rule).
  [[nodiscard]] absl::Status DeleteModel(std::string_view model, const WriteOptions& options);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

nlohmann::json ToJson(const PullJob& job);

}  // namespace triplane::control
