#pragma once

// OpenAI-style error bodies: {"error": {"message", "type", "param", "code"}}, the shape
// every Triplane HTTP API answers errors with, and the mapping from absl::Status.

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "common/http_types.h"
#include "nlohmann/json_fwd.hpp"

namespace triplane::common {

// The OpenAI `type` for an HTTP status: 400 "invalid_request_error",
// 401 "authentication_error", 403 "permission_error", 404 "not_found_error",
// 429 "rate_limit_error", 503 "service_unavailable_error", other 5xx "server_error".
std::string_view OpenAiErrorType(int http_status);

// An error response with the right status, JSON body and Content-Type. `code` and
// `param` are omitted from the body (null) when empty.
HttpResponse OpenAiErrorResponse(int http_status, std::string_view message,
                                 std::string_view code = {}, std::string_view param = {});

// The error body alone, e.g. for an SSE error event in the middle of a stream.
nlohmann::json OpenAiErrorBody(int http_status, std::string_view message,
                               std::string_view code = {}, std::string_view param = {});

// HTTP status for a Status code: InvalidArgument/OutOfRange/FailedPrecondition 400,
// Unauthenticated 401, PermissionDenied 403, NotFound 404, AlreadyExists/Aborted 409,
// ResourceExhausted 429, Unavailable 503, DeadlineExceeded 504, Cancelled 499,
// Unimplemented 501, everything else 500.
int HttpStatusFromStatus(const absl::Status& status);

// OpenAiErrorResponse(HttpStatusFromStatus(status), status.message()).
// REQUIRES: !status.ok().
HttpResponse OpenAiErrorResponse(const absl::Status& status);

}  // namespace triplane::common
