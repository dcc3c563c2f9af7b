#include "common/openai_error.h"

#include "common/strings.h"
#include "nlohmann/json.hpp"

namespace triplane::common {

std::string_view OpenAiErrorType(int http_status) {
  switch (http_status) {
    case 400:
    case 405:
    case 409:
    case 411:
    case 413:
    case 415:
    case 422:
    case 431:
      return "invalid_request_error";
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 408: return "timeout_error";
    case 429: return "rate_limit_error";
    case 503: return "service_unavailable_error";
    default: return http_status >= 500 ? "server_error" : "invalid_request_error";
  }
}

nlohmann::json OpenAiErrorBody(int http_status, std::string_view message, std::string_view code,
                               std::string_view param) {
  nlohmann::json error = {
      {"message", message},
      {"type", OpenAiErrorType(http_status)},
      {"param", param.empty() ? nlohmann::json() : nlohmann::json(param)},
      {"code", code.empty() ? nlohmann::json() : nlohmann::json(code)},
  };
  return {{"error", std::move(error)}};
}

HttpResponse OpenAiErrorResponse(int http_status, std::string_view message, std::string_view code,
                                 std::string_view param) {
  return HttpResponse::Json(http_status, OpenAiErrorBody(http_status, message, code, param));
}

int HttpStatusFromStatus(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk: return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kFailedPrecondition:
      return 400;
    case absl::StatusCode::kUnauthenticated: return 401;
    case absl::StatusCode::kPermissionDenied: return 403;
    case absl::StatusCode::kNotFound: return 404;
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kAborted:
      return 409;
    case absl::StatusCode::kResourceExhausted: return 429;
    case absl::StatusCode::kCancelled: return 499;
    case absl::StatusCode::kUnimplemented: return 501;
    case absl::StatusCode::kUnavailable: return 503;
    case absl::StatusCode::kDeadlineExceeded: return 504;
    default: return 500;
  }
}

HttpResponse OpenAiErrorResponse(const absl::Status& status) {
  return OpenAiErrorResponse(HttpStatusFromStatus(status), ToStd(status.message()));
}

}  // namespace triplane::common
