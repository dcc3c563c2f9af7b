#pragma once

// HTTP/1.1 wire framing shared by the server and the client: status/request lines,
// header blocks and chunked transfer encoding. Header fields with characters that
// could split a message (CR, LF, NUL, or an invalid name) are dropped, never sent.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "common/http_types.h"

namespace triplane::common {

inline constexpr std::string_view kLastChunk = "0\r\n\r\n";

// True for an RFC 9110 token (header name) / a value without CR, LF or NUL.
bool IsValidHeaderName(std::string_view name);
bool IsValidHeaderValue(std::string_view value);

// "HTTP/1.1 <status> <reason>\r\n<headers>\r\n". With `content_length` set, adds
// Content-Length; with nullopt, Transfer-Encoding: chunked. Existing Content-Length
// and Transfer-Encoding fields in `headers` are ignored.
std::string SerializeResponseHead(int status, const HttpHeaders& headers,
                                  std::optional<size_t> content_length);

// "<METHOD> <target> HTTP/1.1\r\nHost: ..\r\n<headers>Content-Length: n\r\n\r\n".
std::string SerializeRequestHead(std::string_view method, std::string_view target,
                                 std::string_view host, const HttpHeaders& headers,
                                 size_t content_length);

// Appends `data` framed as one chunk. REQUIRES: !data.empty() (empty ends the body).
void AppendChunk(std::string& out, std::string_view data);

}  // namespace triplane::common
