#pragma once

// The admin CLI's side of the admin API (docs/api.md "Admin API"): flags naming the
// server and the key, one call = one HTTP exchange, and the helpers every admin
// subcommand shares (tables for people, --json for scripts, one-line errors).

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "common/http_types.h"
#include "nlohmann/json.hpp"

namespace triplane::cli {

struct AdminFlags {
  std::string server = "http://127.0.0.1:8080";  // --server (env TRIPLANE_SERVER)
  std::string admin_key;                         // --admin-key (env TRIPLANE_ADMIN_KEY)
  std::string data_dir = "./triplane-data";      // where to find admin.key otherwise
  bool json = false;                             // --json: print the API's JSON as is
};

// Adds --server, --admin-key, --data-dir and --json to `app`.
void AddAdminFlags(CLI::App& app, AdminFlags& flags);

class AdminClient {
 public:
  explicit AdminClient(const AdminFlags& flags);

  // One call; a non-2xx answer is an error carrying the server's message and the HTTP
  // status (as the absl code of HttpStatusFromStatus's inverse). `path` starts with
  // "/admin/v1/".
  [[nodiscard]] absl::StatusOr<nlohmann::json> Call(
      common::HttpMethod method, const std::string& path,
      const std::optional<nlohmann::json>& body = std::nullopt) const;

  // GET `path` and return the body as text (CSV exports); errors as Call's.
  [[nodiscard]] absl::StatusOr<std::string> CallText(const std::string& path) const;

  // The key the calls use: --admin-key, else DATA_DIR/admin.key. FailedPrecondition
  // saying how to get one when there is none.
  [[nodiscard]] absl::StatusOr<std::string> Key() const;

 private:
  [[nodiscard]] absl::StatusOr<common::HttpResponse> Exchange(
      common::HttpMethod method, const std::string& path,
      const std::optional<nlohmann::json>& body) const;

  AdminFlags flags_;
};

// Percent-encodes a name for a path segment ("org/model" → "org%2Fmodel").
std::string PathSegment(std::string_view name);

// Splits "MODEL[:VERSION]".
std::pair<std::string, std::string> SplitModelVersion(std::string_view reference);

// Prints "triplane COMMAND: MESSAGE" to stderr; returns 1.
int CommandFailed(std::string_view command, const absl::Status& status);

// Prints `value` as indented JSON on stdout; returns 0.
int PrintJson(const nlohmann::json& value);

// A table with a header row, columns padded to their widest cell (in characters).
std::string FormatTable(const std::vector<std::string>& header,
                        const std::vector<std::vector<std::string>>& rows);

// "1.5 GiB", "312 KiB", "12 B".
std::string HumanBytes(int64_t bytes);
// "1.2B", "15.3M", "812K".
std::string HumanCount(int64_t count);
// "3s", "4m", "2h", "5d" since an RFC 3339 time; "-" when it cannot be read.
std::string HumanAge(const nlohmann::json& rfc3339_time);
// A JSON value as a table cell: strings bare, null as "-", anything else as JSON.
std::string Cell(const nlohmann::json& value);

// A deployment's "autoscale" for `ps`: "1-4 in_flight 4", "-" when off
// (cli/autoscale_command.cc).
std::string AutoscaleSummary(const nlohmann::json& autoscale);

}  // namespace triplane::cli
