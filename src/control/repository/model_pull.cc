#include "control/repository/model_pull.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "common/http_client.h"
#include "common/http_types.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "fmt/format.h"

namespace triplane::control {

namespace {

using Clock = std::chrono::steady_clock;

int64_t FileSize(const std::string& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  return ec ? 0 : static_cast<int64_t>(size);
}

int64_t ParseInt(std::string_view text) {
  int64_t value = -1;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc() && end == text.data() + text.size() ? value : -1;
}

// "bytes START-END/TOTAL": START and TOTAL (-1 when "*" or malformed).
std::pair<int64_t, int64_t> ParseContentRange(std::string_view value) {
  if (!value.starts_with("bytes ")) return {-1, -1};
  value.remove_prefix(6);
  const size_t dash = value.find('-'), slash = value.find('/');
  if (dash == std::string_view::npos || slash == std::string_view::npos || dash > slash) return {-1, -1};
  return {ParseInt(value.substr(0, dash)), ParseInt(value.substr(slash + 1))};
}

// One HTTP attempt appending to `part`.
struct Attempt {
  absl::Status status;   // transport / body outcome
  int http_status = 0;
  int64_t total = -1;    // whole file size, when known
  bool restarted = false;  // the server sent the whole file (200), not the range
  std::string location;    // a redirect's Location header
};

bool IsRedirect(int status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

// `location` resolved against `base` (an absolute http(s) URL): absolute URLs as they are,
// "//host/path" with base's scheme, "/path" on base's origin, anything else relative to
// base's directory.
std::string ResolveLocation(std::string_view base, std::string_view location) {
  const std::string lower = common::AsciiToLower(location.substr(0, 8));
  if (lower.starts_with("http://") || lower.starts_with("https://")) return std::string(location);
  const size_t scheme_end = base.find("://");
  if (location.starts_with("//")) return fmt::format("{}:{}", base.substr(0, scheme_end), location);
  const size_t origin_end = std::min(base.find_first_of("/?#", scheme_end + 3), base.size());
  if (location.starts_with("/")) return fmt::format("{}{}", base.substr(0, origin_end), location);
  const std::string_view path = base.substr(0, std::min(base.find_first_of("?#", origin_end), base.size()));
  const size_t slash = path.rfind('/');
  const std::string_view directory = slash >= origin_end && slash != std::string_view::npos
                                         ? path.substr(0, slash + 1)
                                         : std::string_view();
  return directory.empty() ? fmt::format("{}/{}", path, location) : fmt::format("{}{}", directory, location);
}

// Where a redirect from `from` leads, or why it is not followed.
absl::StatusOr<std::string> NextHop(const std::string& from, const std::string& location, int hops) {
  if (hops > kMaxPullRedirects) {
    return absl::FailedPreconditionError(fmt::format("too many redirects (more than {}) at {}", kMaxPullRedirects, from));
  }
  if (location.empty()) return absl::FailedPreconditionError(fmt::format("{} redirected without a Location", from));
  std::string next = ResolveLocation(from, location);
  std::string url_error;
  const std::optional<common::HttpUrl> parsed = common::ParseHttpUrl(next, &url_error);
  if (!parsed) {
    return absl::FailedPreconditionError(fmt::format("{} redirected to '{}': {}", from, next, url_error));
  }
  if (from.starts_with("https://") && parsed->scheme == "http") {
    return absl::FailedPreconditionError(
        fmt::format("refusing the redirect from {} to {}: it downgrades https to http", from, next));
  }
  return next;
}

Attempt Fetch(common::HttpClient& client, const std::string& url, const PullOptions& options, const std::string& part,
              int64_t have, int64_t* written, const std::function<void()>& on_bytes) {
  Attempt attempt;
  common::HttpClientRequest request;
  request.url = url;
  if (have > 0) request.headers.Set("Range", fmt::format("bytes={}-", have));
  absl::Mutex mu;
  bool done = false;
  std::FILE* file = nullptr;
  auto handle = client.Stream(
      std::move(request),
      {.on_head =
           [&](int status, const common::HttpHeaders& headers) {
             attempt.http_status = status;
             if (IsRedirect(status)) attempt.location = std::string(headers.Get("Location").value_or(""));
             const std::optional<std::string_view> length = headers.Get("Content-Length");
             if (status == 206 && have > 0) {
               const auto range = headers.Get("Content-Range");
               const auto [start, total] =
                   range ? ParseContentRange(*range) : std::pair<int64_t, int64_t>{-1, -1};
               if (start != have) {
                 attempt.http_status = 0;
                 attempt.status = absl::DataLossError("the server resumed at the wrong offset");
                 return;
               }
               attempt.total = total;
               file = std::fopen(part.c_str(), "ab");
             } else if (status == 200) {
               attempt.restarted = have > 0;
               attempt.total = length ? ParseInt(*length) : -1;
               file = std::fopen(part.c_str(), "wb");
               *written = 0;
             }
             if ((status == 200 || status == 206) && file == nullptr) {
               attempt.status = absl::InternalError(fmt::format("cannot write {}: {}", part, std::strerror(errno)));
             }
           },
       .on_data =
           [&](std::string_view data) {
             if (file == nullptr) return true;  // an error page: read and drop it
             if (std::fwrite(data.data(), 1, data.size(), file) != data.size()) {
               attempt.status = absl::InternalError(fmt::format("cannot write {}: {}", part, std::strerror(errno)));
               return false;
             }
             *written += static_cast<int64_t>(data.size());
             on_bytes();
             return !(options.cancel && options.cancel->load());
           },
       .on_done =
           [&](absl::Status status) {
             absl::MutexLock lock(&mu);
             if (attempt.status.ok()) attempt.status = std::move(status);
             done = true;
           }});
  {
    absl::MutexLock lock(&mu);
    mu.Await(absl::Condition(&done));
  }
  if (file != nullptr && std::fclose(file) != 0 && attempt.status.ok()) {
    attempt.status = absl::InternalError(fmt::format("cannot write {}: {}", part, std::strerror(errno)));
  }
  return attempt;
}

absl::Status HttpStatusError(int status, const std::string& url) {
  const std::string message = fmt::format("{} answered HTTP {}", url, status);
  if (status == 404 || status == 410) return absl::NotFoundError(message);
  if (status == 401 || status == 403) return absl::PermissionDeniedError(message);
  return absl::FailedPreconditionError(message);
}

}  // namespace

absl::StatusOr<PullResult> PullFile(const PullOptions& options) {
  if (!options.url.starts_with("http://") && !options.url.starts_with("https://")) {
    return absl::InvalidArgumentError(
        fmt::format("cannot download '{}': only http:// and https:// URLs are supported", options.url));
  }
  if (options.dest.empty()) return absl::InvalidArgumentError("no destination path");
  const std::string part = options.dest + ".part";
  // `refuse` judges each hop's host before it is requested and, through the client,
  // the address every connection actually reached (a name that resolves elsewhere when
  // checked and to a refused address when connected is caught there).
  common::HttpClient client({.request_timeout = options.stall_timeout,
                             .max_idle_per_host = 1,
                             .ca_file = options.ca_file,
                             .refuse_peer = options.refuse});
  PullResult result;
  result.path = options.dest;
  int64_t total = -1;
  int failures = 0;
  auto backoff = options.initial_backoff;
  Clock::time_point last_report{};
  int64_t have = FileSize(part);
  std::string url = options.url;  // this try's current hop
  int redirects = 0;
  while (true) {
    if (options.cancel && options.cancel->load()) return absl::CancelledError("pull cancelled");
    if (have > 0 && redirects == 0) ++result.resumed;
    int64_t written = have;
    auto report = [&] {
      if (!options.progress) return;
      const auto now = Clock::now();
      if (now - last_report < options.progress_interval) return;
      last_report = now;
      options.progress(written, total);
    };
    if (options.refuse) {
      const std::optional<common::HttpUrl> hop = common::ParseHttpUrl(url, nullptr);
      if (hop && options.refuse(hop->host, hop->port)) {
        return absl::InvalidArgumentError(
            fmt::format("refusing to pull from {}: it is the control plane's own address", url));
      }
    }
    const Attempt attempt = Fetch(client, url, options, part, have, &written, report);
    if (attempt.status.code() == absl::StatusCode::kPermissionDenied) {  // only the peer check says this
      return absl::InvalidArgumentError(fmt::format("refusing to pull from {}: {}", url,
                                                    common::ToStd(attempt.status.message())));
    }
    if (IsRedirect(attempt.http_status)) {
      TP_ASSIGN_OR_RETURN(url, NextHop(url, attempt.location, ++redirects));
      continue;
    }
    url = options.url;
    redirects = 0;
    if (attempt.total >= 0) total = attempt.total;
    if (attempt.http_status == 416 && have > 0) {  // the range starts at or past the end
      std::filesystem::remove(part);
      have = 0;
      continue;
    }
    if (attempt.http_status >= 400 && attempt.http_status < 500 && attempt.http_status != 408 &&
        attempt.http_status != 429) {
      return HttpStatusError(attempt.http_status, options.url);
    }
    if (options.cancel && options.cancel->load()) return absl::CancelledError("pull cancelled");
    const bool complete = attempt.status.ok() && (attempt.http_status == 200 || attempt.http_status == 206) &&
                          (total < 0 || written == total);
    if (complete) {
      have = written;
      break;
    }
    if (attempt.status.code() == absl::StatusCode::kInternal) return attempt.status;  // local disk
    const bool progressed = written > have;
    have = FileSize(part);
    failures = progressed ? 1 : failures + 1;
    if (failures >= options.max_attempts) {
      return absl::UnavailableError(fmt::format(
          "download of {} failed after {} tries without progress: {}", options.url, failures,
          attempt.status.ok() ? fmt::format("HTTP {}", attempt.http_status)
                              : common::ToStd(attempt.status.message())));
    }
    if (progressed) backoff = options.initial_backoff;
    std::this_thread::sleep_for(backoff);
    backoff = std::min<std::chrono::milliseconds>(backoff * 2, std::chrono::seconds(10));
  }
  if (options.progress) options.progress(have, total < 0 ? have : total);

  absl::StatusOr<std::string> sha = common::Sha256OfFile(part);
  if (!sha.ok()) return sha.status();
  std::string expected = options.expected_sha256;
  std::transform(expected.begin(), expected.end(), expected.begin(), [](unsigned char c) { return std::tolower(c); });
  if (!expected.empty() && *sha != expected) {
    std::filesystem::remove(part);
    return absl::DataLossError(fmt::format("checksum mismatch for {}: expected sha256 {}, got {}; the download was discarded",
                                           options.url, expected, *sha));
  }
  std::error_code ec;
  std::filesystem::rename(part, options.dest, ec);
  if (ec) return absl::InternalError(fmt::format("cannot move {} to {}: {}", part, options.dest, ec.message()));
  result.bytes = have;
  result.sha256 = *std::move(sha);
  return result;
}

absl::StatusOr<std::string> ResolveModelUrl(std::string_view reference) {
  if (reference.starts_with("http://") || reference.starts_with("https://")) return std::string(reference);
  if (!reference.starts_with("hf://")) {
    return absl::InvalidArgumentError(fmt::format(
        "unsupported model reference '{}': use http://, https:// or hf://ORG/REPO/FILE.gguf", reference));
  }
  std::string_view rest = reference.substr(5);
  std::string revision = "main";
  if (const size_t at = rest.rfind('@'); at != std::string_view::npos) {
    revision = std::string(rest.substr(at + 1));
    rest = rest.substr(0, at);
  }
  // ORG / REPO / PATH...: at least three non-empty segments, none "." or "..".
  std::vector<std::string_view> parts;
  for (size_t start = 0; start <= rest.size();) {
    const size_t slash = std::min(rest.find('/', start), rest.size());
    parts.push_back(rest.substr(start, slash - start));
    start = slash + 1;
  }
  const bool bad_part = std::any_of(parts.begin(), parts.end(), [](std::string_view p) {
    return p.empty() || p == "." || p == ".." ||
           p.find_first_of("?#%\\ ") != std::string_view::npos;
  });
  if (parts.size() < 3 || bad_part || revision.empty() || revision.find_first_of("/?#% ") != std::string::npos) {
    return absl::InvalidArgumentError(fmt::format(
        "malformed Hugging Face reference '{}': expected hf://ORG/REPO/FILE.gguf[@REVISION]", reference));
  }
  std::string path;
  for (size_t i = 2; i < parts.size(); ++i) path += (i > 2 ? "/" : "") + std::string(parts[i]);
  return fmt::format("https://huggingface.co/{}/{}/resolve/{}/{}", parts[0], parts[1], revision, path);
}

}  // namespace triplane::control
