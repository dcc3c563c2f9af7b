#include "engine/server/api_error.h"

#include <charconv>
#include <optional>
#include <system_error>

#include "absl/strings/cord.h"
#include "common/openai_error.h"
#include "common/strings.h"

namespace triplane::engine::server {
namespace {

// Payload keys (absl wants URL-like type names).
constexpr char kParamKey[] = "type.triplane.dev/openai.param";
constexpr char kCodeKey[] = "type.triplane.dev/openai.code";
constexpr char kHttpStatusKey[] = "type.triplane.dev/openai.http_status";

std::string Payload(const absl::Status& status, const char* key) {
  auto value = status.GetPayload(key);  // absl::optional: not std::optional on Debian
  return value.has_value() ? std::string(*value) : std::string();
}

absl::StatusCode CodeForHttpStatus(int http_status) {
  switch (http_status) {
    case 400:
      return absl::StatusCode::kInvalidArgument;
    case 404:
      return absl::StatusCode::kNotFound;
    case 429:
      return absl::StatusCode::kResourceExhausted;
    case 503:
      return absl::StatusCode::kUnavailable;
    default:
      return http_status >= 500 ? absl::StatusCode::kInternal : absl::StatusCode::kInvalidArgument;
  }
}

}  // namespace

absl::Status InvalidParam(std::string_view param, std::string_view code, std::string_view message) {
  return ApiError(400, code, message, param);
}

absl::Status ApiError(int http_status, std::string_view code, std::string_view message,
                      std::string_view param) {
  absl::Status status(CodeForHttpStatus(http_status),
                      absl::string_view(message.data(), message.size()));
  if (!param.empty())
    status.SetPayload(kParamKey, absl::Cord(absl::string_view(param.data(), param.size())));
  if (!code.empty())
    status.SetPayload(kCodeKey, absl::Cord(absl::string_view(code.data(), code.size())));
  status.SetPayload(kHttpStatusKey, absl::Cord(std::to_string(http_status)));
  return status;
}

std::string ErrorParam(const absl::Status& status) { return Payload(status, kParamKey); }

std::string ErrorCode(const absl::Status& status) { return Payload(status, kCodeKey); }

int ErrorHttpStatus(const absl::Status& status) {
  const std::string text = Payload(status, kHttpStatusKey);
  int http_status = 0;
  if (!text.empty() &&
      std::from_chars(text.data(), text.data() + text.size(), http_status).ec == std::errc()) {
    return http_status;
  }
  return common::HttpStatusFromStatus(status);
}

common::HttpResponse ErrorResponse(const absl::Status& status) {
  const int http_status = ErrorHttpStatus(status);
  // A server error's message may name internals; the log has it, the client need not.
  const std::string_view message =
      http_status == 500 ? std::string_view("internal error") : common::ToStd(status.message());
  common::HttpResponse response =
      common::OpenAiErrorResponse(http_status, message, ErrorCode(status), ErrorParam(status));
  if (http_status == 503 || http_status == 429) response.headers.Set("Retry-After", "1");
  return response;
}

}  // namespace triplane::engine::server
