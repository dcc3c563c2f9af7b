#pragma once

// Downloads a model file over HTTP or HTTPS with resume and integrity checking, for the
// model repository's `pull`.
//
// The file grows in DEST.part; a dropped connection or a server error is retried with
// `Range: bytes=N-` from what is already on disk (a server that ignores ranges is
// answered by starting over), with exponential backoff, up to `max_attempts` tries in a
// row without progress. A complete file is checked against the expected SHA-256 (when
// given; a mismatch deletes the partial file and is DataLoss) and renamed to DEST, so
// DEST only ever holds a whole, verified file. A later pull of the same URL into the same
// DEST continues an interrupted one.
//
// Redirects (301, 302, 303, 307, 308) are followed here, not in the HTTP client: up to
// `kMaxPullRedirects` hops per try, relative Locations resolved against the URL that
// answered, the Range header sent again to the new location, and a redirect from https://
// to http:// refused. Every try starts again at `url` (Hugging Face redirects to
// short-lived signed CDN URLs). https:// certificates are checked against the system CA
// store plus `ca_file`.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace triplane::control {

// Redirects followed within one try before the pull fails.
inline constexpr int kMaxPullRedirects = 5;

struct PullOptions {
  std::string url;            // http:// or https:// (for hf:// see ResolveModelUrl)
  std::string dest;           // final path; DEST.part while downloading
  std::string ca_file;        // extra trusted CA certificates (PEM) for https://; empty = system store
  std::string expected_sha256;  // lowercase or uppercase hex; empty = not checked
  // Bytes on disk so far and the total when the server said (-1 if unknown). Called
  // from the downloading thread, at most every `progress_interval`, and at the end.
  std::function<void(int64_t done, int64_t total)> progress;
  std::chrono::milliseconds progress_interval{200};
  int max_attempts = 6;                          // tries in a row without progress
  std::chrono::milliseconds initial_backoff{200};  // doubled per failed try, up to 10 s
  std::chrono::milliseconds stall_timeout{30'000};  // no byte for this long: retry
  const std::atomic<bool>* cancel = nullptr;     // set to stop (Cancelled; DEST.part kept)
  // Asked before every hop (the URL, then each redirect's target) with its host and port,
  // and after every connection with the address it reached; true refuses the hop
  // (InvalidArgument naming the URL, nothing requested from it).
  std::function<bool(std::string_view host, int port)> refuse;
};

struct PullResult {
  std::string path;    // DEST
  int64_t bytes = 0;
  std::string sha256;  // lowercase hex of the whole file
  int resumed = 0;     // times the download continued from a partial file
};

// InvalidArgument for a URL this cannot fetch or `refuse` turns down; NotFound / PermissionDenied /
// FailedPrecondition for a 404 / 401-403 / other 4xx answer (not retried);
// FailedPrecondition for a redirect without Location, to a non-http(s) URL, from https://
// to http://, or beyond kMaxPullRedirects hops; Unavailable when the retries ran out
// (an untrusted certificate too, with the TLS error); DataLoss on a checksum mismatch;
// Cancelled.
[[nodiscard]] absl::StatusOr<PullResult> PullFile(const PullOptions& options);

// Maps a model reference to a download URL: `hf://ORG/REPO/PATH/FILE.gguf[@REVISION]`
// becomes `https://huggingface.co/ORG/REPO/resolve/REVISION/PATH/FILE.gguf` (revision
// `main` by default); http(s) URLs are returned unchanged. InvalidArgument for any other
// scheme, a path with `..`, or a malformed hf:// reference.
[[nodiscard]] absl::StatusOr<std::string> ResolveModelUrl(std::string_view reference);

}  // namespace triplane::control
