#include "cli/admin_client.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/time/time.h"
#include "common/http_client.h"
#include "common/strings.h"
#include "fmt/format.h"

namespace triplane::cli {
namespace {

absl::Status StatusForHttp(int status, std::string message) {
  switch (status) {
    case 400: return absl::InvalidArgumentError(message);
    case 401: return absl::UnauthenticatedError(message);
    case 403: return absl::PermissionDeniedError(message);
    case 404: return absl::NotFoundError(message);
    case 409: return absl::FailedPreconditionError(message);
    case 429: return absl::ResourceExhaustedError(message);
    case 503: return absl::UnavailableError(message);
    default: return absl::InternalError(message);
  }
}

// Terminal columns of one code point: 2 for East Asian wide and emoji ranges, else 1.
size_t Columns(char32_t c) {
  const bool wide = (c >= 0x1100 && c <= 0x115F) || (c >= 0x2E80 && c <= 0xA4CF) ||
                    (c >= 0xAC00 && c <= 0xD7A3) || (c >= 0xF900 && c <= 0xFAFF) ||
                    (c >= 0xFE30 && c <= 0xFE4F) || (c >= 0xFF00 && c <= 0xFF60) ||
                    (c >= 0xFFE0 && c <= 0xFFE6) || (c >= 0x1F300 && c <= 0x1F64F) ||
                    (c >= 0x1F900 && c <= 0x1F9FF) || (c >= 0x20000 && c <= 0x3FFFD);
  return wide ? 2 : 1;
}

// Display width of UTF-8 text (invalid bytes count one column each).
size_t Width(std::string_view text) {
  size_t width = 0;
  for (size_t i = 0; i < text.size();) {
    const auto lead = static_cast<unsigned char>(text[i]);
    const size_t length = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    if (i + length > text.size()) return width + (text.size() - i);
    char32_t c = length == 1 ? lead : lead & (0x7F >> length);
    for (size_t k = 1; k < length; ++k) c = (c << 6) | (static_cast<unsigned char>(text[i + k]) & 0x3F);
    width += Columns(c);
    i += length;
  }
  return width;
}

}  // namespace

void AddAdminFlags(CLI::App& app, AdminFlags& flags) {
  app.add_option("--server", flags.server, "URL of triplane serve or triplane control")
      ->capture_default_str();
  app.add_option("--admin-key", flags.admin_key,
                 "Admin API key (default: the one in DATA_DIR/admin.key)");
  app.add_option("--data-dir", flags.data_dir, "Data dir whose admin.key to use without --admin-key")
      ->capture_default_str();
  app.add_flag("--json", flags.json, "Print the API's JSON instead of a table");
}

AdminClient::AdminClient(const AdminFlags& flags) : flags_(flags) {}

absl::StatusOr<std::string> AdminClient::Key() const {
  if (!flags_.admin_key.empty()) return flags_.admin_key;
  const std::filesystem::path file = std::filesystem::path(flags_.data_dir) / "admin.key";
  std::ifstream in(file);
  std::string key;
  if (in && std::getline(in, key) && !absl::StripAsciiWhitespace(key).empty()) {
    return std::string(absl::StripAsciiWhitespace(key));
  }
  return absl::FailedPreconditionError(fmt::format(
      "no admin key: pass --admin-key or set TRIPLANE_ADMIN_KEY (triplane serve printed one at "
      "its first start and wrote it to {})",
      file.string()));
}

namespace {

common::HttpClient& Client() {
  static common::HttpClient client({.request_timeout = std::chrono::minutes(5)});
  return client;
}

// The answer's error message (an OpenAI-style body), as a status for its HTTP code.
absl::Status ErrorOf(const common::HttpResponse& response) {
  const nlohmann::json json = nlohmann::json::parse(response.body, nullptr, false);
  std::string message = fmt::format("HTTP {}", response.status);
  if (!json.is_discarded() && json.contains("error") && json["error"].is_object() &&
      json["error"].value("message", "") != "") {
    message = json["error"]["message"].get<std::string>();
  }
  return StatusForHttp(response.status, message);
}

}  // namespace

absl::StatusOr<common::HttpResponse> AdminClient::Exchange(common::HttpMethod method, const std::string& path,
                                                           const std::optional<nlohmann::json>& body) const {
  absl::StatusOr<std::string> key = Key();
  if (!key.ok()) return key.status();
  std::string base = flags_.server;
  while (!base.empty() && base.back() == '/') base.pop_back();
  common::HttpClientRequest request{.method = method, .url = base + path};
  request.headers.Set("authorization", "Bearer " + *key);
  if (body) {
    request.headers.Set("content-type", "application/json");
    request.body = body->dump();
  }
  absl::StatusOr<common::HttpResponse> response = Client().Send(std::move(request));
  if (!response.ok()) {
    return absl::UnavailableError(
        fmt::format("cannot reach {}: {}", base, std::string(response.status().message())));
  }
  if (response->status < 200 || response->status >= 300) return ErrorOf(*response);
  return response;
}

absl::StatusOr<nlohmann::json> AdminClient::Call(common::HttpMethod method, const std::string& path,
                                                 const std::optional<nlohmann::json>& body) const {
  absl::StatusOr<common::HttpResponse> response = Exchange(method, path, body);
  if (!response.ok()) return response.status();
  nlohmann::json json = nlohmann::json::parse(response->body, nullptr, false);
  if (json.is_discarded()) return absl::InternalError("the server answered something not JSON");
  return json;
}

absl::StatusOr<std::string> AdminClient::CallText(const std::string& path) const {
  absl::StatusOr<common::HttpResponse> response = Exchange(common::HttpMethod::kGet, path, std::nullopt);
  if (!response.ok()) return response.status();
  return std::move(response->body);
}

std::string PathSegment(std::string_view name) { return common::PercentEncode(name); }

std::pair<std::string, std::string> SplitModelVersion(std::string_view reference) {
  const size_t colon = reference.rfind(':');
  if (colon == std::string_view::npos) return {std::string(reference), ""};
  return {std::string(reference.substr(0, colon)), std::string(reference.substr(colon + 1))};
}

int CommandFailed(std::string_view command, const absl::Status& status) {
  std::fprintf(stderr, "triplane %.*s: %s\n", static_cast<int>(command.size()), command.data(),
               std::string(status.message()).c_str());
  return 1;
}

int PrintJson(const nlohmann::json& value) {
  std::printf("%s\n", value.dump(2).c_str());
  return 0;
}

std::string FormatTable(const std::vector<std::string>& header,
                        const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths(header.size(), 0);
  auto measure = [&](const std::vector<std::string>& row) {
    for (size_t i = 0; i < row.size() && i < widths.size(); ++i) {
      widths[i] = std::max(widths[i], Width(row[i]));
    }
  };
  measure(header);
  for (const auto& row : rows) measure(row);
  std::string out;
  auto append = [&](const std::vector<std::string>& row) {
    std::string line;
    for (size_t i = 0; i < widths.size(); ++i) {
      const std::string& cell = i < row.size() ? row[i] : std::string();
      line += cell;
      if (i + 1 < widths.size()) line += std::string(widths[i] - Width(cell) + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  };
  append(header);
  for (const auto& row : rows) append(row);
  return out;
}

std::string HumanBytes(int64_t bytes) {
  constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024 && unit < 4) value /= 1024, ++unit;
  return unit == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.1f} {}", value, kUnits[unit]);
}

std::string HumanCount(int64_t count) {
  if (count >= 1'000'000'000) return fmt::format("{:.1f}B", static_cast<double>(count) / 1e9);
  if (count >= 1'000'000) return fmt::format("{:.1f}M", static_cast<double>(count) / 1e6);
  if (count >= 1'000) return fmt::format("{:.1f}K", static_cast<double>(count) / 1e3);
  return fmt::format("{}", count);
}

std::string HumanAge(const nlohmann::json& time) {
  absl::Time t;
  std::string error;
  if (!time.is_string() || !absl::ParseTime(absl::RFC3339_full, time.get<std::string>(), &t, &error)) {
    return "-";
  }
  const int64_t seconds = std::max<int64_t>(0, absl::ToInt64Seconds(absl::Now() - t));
  if (seconds < 120) return fmt::format("{}s", seconds);
  if (seconds < 7200) return fmt::format("{}m", seconds / 60);
  if (seconds < 172800) return fmt::format("{}h", seconds / 3600);
  return fmt::format("{}d", seconds / 86400);
}

std::string Cell(const nlohmann::json& value) {
  if (value.is_null()) return "-";
  if (value.is_string()) return value.get<std::string>().empty() ? "-" : value.get<std::string>();
  return value.dump();
}

}  // namespace triplane::cli
