#include "control/admin/admin_internal.h"

#include <charconv>
#include <limits>

#include "absl/strings/cord.h"
#include "common/json.h"
#include "common/openai_error.h"
#include "common/strings.h"
#include "fmt/format.h"
#include "spdlog/spdlog.h"

namespace triplane::control::admin_internal {

using common::ToStd;
using nlohmann::json;

namespace {

// Status payloads naming the offending field and the error code, read back by
// ErrorResponse.
constexpr const char* kParamPayload = "triplane.admin/param";
constexpr const char* kCodePayload = "triplane.admin/code";

absl::Status WithCode(absl::Status status, std::string_view code) {
  status.SetPayload(kCodePayload, absl::Cord(std::string(code)));
  return status;
}

std::string TypeName(const json& value) { return value.type_name(); }

absl::Status WrongType(const std::string& param, std::string_view expected, const json& value) {
  return BadParam(param,
                  fmt::format("Invalid type for '{}': expected {}, but got {} instead.", param,
                              expected, TypeName(value)),
                  "invalid_type");
}

struct HttpError {
  int status;
  std::string_view type;
};

// docs/api.md, Admin API: how store and repository errors reach clients.
HttpError HttpErrorFor(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return {400, "invalid_request_error"};
    case absl::StatusCode::kUnauthenticated:
      return {401, "authentication_error"};
    case absl::StatusCode::kPermissionDenied:
      return {403, "permission_error"};
    case absl::StatusCode::kNotFound:
      return {404, "not_found_error"};
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kAborted:
      return {409, "conflict_error"};
    // The store and the repository say ResourceExhausted only for a full disk.
    case absl::StatusCode::kResourceExhausted:
      return {507, "server_error"};
    case absl::StatusCode::kUnavailable:
      return {503, "service_unavailable_error"};
    default:
      return {500, "server_error"};
  }
}

}  // namespace

Reply Ok(json body, int status) { return Reply{.status = status, .body = std::move(body)}; }

Reply List(json items) { return Ok({{"object", "list"}, {"data", std::move(items)}}); }

Reply Deleted() { return Ok({{"deleted", true}}); }

absl::Status BadParam(std::string_view param, std::string_view message, std::string_view code) {
  absl::Status status = absl::InvalidArgumentError(std::string(message));
  status.SetPayload(kParamPayload, absl::Cord(std::string(param)));
  return WithCode(std::move(status), code);
}

common::HttpResponse ErrorResponse(const absl::Status& status) {
  const HttpError error = HttpErrorFor(status.code());
  std::string message(ToStd(status.message()));
  if (error.status == 500) {
    spdlog::error("admin API: {}", status.ToString());
    message = "internal error; see the control plane's log";
  }
  std::string param;
  if (auto payload = status.GetPayload(kParamPayload)) {
    param = std::string(*payload);
  }
  std::string code;
  if (auto payload = status.GetPayload(kCodePayload)) {
    code = std::string(*payload);
  }
  json body = common::OpenAiErrorBody(error.status, message, code, param);
  body["error"]["type"] = error.type;
  return common::HttpResponse::Json(error.status, body);
}

std::string TimeText(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", t, absl::UTCTimeZone());
}

absl::StatusOr<json> ParseBody(const common::HttpRequest& request) {
  absl::StatusOr<json> body = common::ParseJson(request.body);
  if (!body.ok()) {
    return WithCode(absl::InvalidArgumentError(fmt::format("The body is not valid JSON: {}",
                                                           ToStd(body.status().message()))),
                    "invalid_json");
  }
  if (!body->is_object()) {
    return WithCode(absl::InvalidArgumentError(
                        fmt::format("The body must be a JSON object, not {}.", TypeName(*body))),
                    "invalid_json");
  }
  return body;
}

const json* Fields::Raw(std::string_view name) const {
  const auto it = object_.find(name);
  return it == object_.end() ? nullptr : &*it;
}

const json* Fields::Present(std::string_view name) const {
  const json* value = Raw(name);
  return value == nullptr || value->is_null() ? nullptr : value;
}

absl::StatusOr<std::optional<std::string>> Fields::String(std::string_view name) const {
  const json* value = Present(name);
  if (value == nullptr) return std::nullopt;
  if (!value->is_string()) return WrongType(Param(name), "a string", *value);
  return value->get<std::string>();
}

absl::StatusOr<std::string> Fields::RequiredString(std::string_view name) const {
  absl::StatusOr<std::optional<std::string>> value = String(name);
  if (!value.ok()) return value.status();
  if (!value->has_value() || (*value)->empty()) {
    return BadParam(Param(name), fmt::format("Missing required parameter '{}'.", Param(name)),
                    "missing_required_parameter");
  }
  return **value;
}

absl::StatusOr<std::optional<int64_t>> Fields::Int(std::string_view name, int64_t min,
                                                   int64_t max) const {
  const json* value = Present(name);
  if (value == nullptr) return std::nullopt;
  if (!value->is_number_integer()) return WrongType(Param(name), "an integer", *value);
  // Unsigned values above int64's range are out of every range we accept.
  const int64_t n = value->is_number_unsigned() && value->get<uint64_t>() > INT64_MAX
                        ? std::numeric_limits<int64_t>::max()
                        : value->get<int64_t>();
  if (n < min || n > max) {
    return BadParam(Param(name), fmt::format("'{}' must be between {} and {}, got {}.", Param(name),
                                             min, max, value->dump()));
  }
  return n;
}

absl::StatusOr<std::optional<std::vector<std::string>>> Fields::StringArray(
    std::string_view name) const {
  const json* value = Present(name);
  if (value == nullptr) return std::nullopt;
  if (!value->is_array()) return WrongType(Param(name), "an array of strings", *value);
  std::vector<std::string> out;
  for (size_t i = 0; i < value->size(); ++i) {
    const json& item = (*value)[i];
    if (!item.is_string())
      return WrongType(fmt::format("{}[{}]", Param(name), i), "a string", item);
    out.push_back(item.get<std::string>());
  }
  return out;
}

absl::StatusOr<std::optional<absl::Time>> Fields::Time(std::string_view name) const {
  absl::StatusOr<std::optional<std::string>> text = String(name);
  if (!text.ok()) return text.status();
  if (!text->has_value()) return std::nullopt;
  absl::Time t;
  std::string error;
  if (!absl::ParseTime(absl::RFC3339_full, **text, &t, &error)) {
    return BadParam(Param(name), fmt::format("'{}' must be an RFC 3339 time such as "
                                             "2026-01-31T12:00:00Z, got '{}'.",
                                             Param(name), **text));
  }
  return t;
}

absl::StatusOr<const json*> Fields::Object(std::string_view name) const {
  const json* value = Present(name);
  if (value != nullptr && !value->is_object()) return WrongType(Param(name), "an object", *value);
  return value;
}

std::string PathParam(const Call& call, std::string_view name) {
  return std::string(call.request.PathParam(name));
}

absl::StatusOr<std::optional<int64_t>> QueryInt(const common::HttpRequest& request,
                                                std::string_view name, int64_t min, int64_t max) {
  const std::optional<std::string> text = request.QueryParam(name);
  if (!text.has_value() || text->empty()) return std::nullopt;
  int64_t value = 0;
  const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (ec != std::errc() || end != text->data() + text->size() || value < min || value > max) {
    return BadParam(name, fmt::format("'{}' must be an integer between {} and {}, got '{}'.", name,
                                      min, max, *text));
  }
  return value;
}

}  // namespace triplane::control::admin_internal
