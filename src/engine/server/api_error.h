#pragma once

// Errors of the engine API as absl::Status values that remember which request
// parameter they are about, so that parsing code can use TP_RETURN_IF_ERROR and the HTTP
// layer can still answer OpenAI's {"error": {"message", "type", "param", "code"}}.

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "common/http_types.h"

namespace triplane::engine::server {

// InvalidArgument (HTTP 400) about request parameter `param` (e.g. "temperature",
// "messages[2].content"), with an OpenAI error `code` such as "invalid_type",
// "invalid_value", "missing_required_parameter" or "context_length_exceeded".
[[nodiscard]] absl::Status InvalidParam(std::string_view param, std::string_view code,
                                        std::string_view message);

// An error with an explicit HTTP status (404 model_not_found, 503 queue full, ...).
[[nodiscard]] absl::Status ApiError(int http_status, std::string_view code,
                                    std::string_view message, std::string_view param = {});

// The parameter, code and HTTP status carried by `status` ("" / "" / the usual mapping of
// its code when it carries none).
std::string ErrorParam(const absl::Status& status);
std::string ErrorCode(const absl::Status& status);
int ErrorHttpStatus(const absl::Status& status);

// The OpenAI-style response for `status`. REQUIRES: !status.ok().
common::HttpResponse ErrorResponse(const absl::Status& status);

}  // namespace triplane::engine::server
