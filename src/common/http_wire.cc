#include "common/http_wire.h"

#include "common/strings.h"
#include "fmt/format.h"

namespace triplane::common {

namespace {

bool IsTokenChar(unsigned char c) {
  if (c >= '0' && c <= '9') return true;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

bool IsFramingHeader(std::string_view name) {
  return EqualsIgnoreCase(name, "Content-Length") || EqualsIgnoreCase(name, "Transfer-Encoding");
}

void AppendHeaders(std::string& out, const HttpHeaders& headers) {
  for (const auto& [name, value] : headers.fields()) {
    if (IsFramingHeader(name) || !IsValidHeaderName(name) || !IsValidHeaderValue(value)) continue;
    fmt::format_to(std::back_inserter(out), "{}: {}\r\n", name, value);
  }
}

}  // namespace

bool IsValidHeaderName(std::string_view name) {
  if (name.empty()) return false;
  for (unsigned char c : name) {
    if (!IsTokenChar(c)) return false;
  }
  return true;
}

bool IsValidHeaderValue(std::string_view value) {
  return value.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

std::string SerializeResponseHead(int status, const HttpHeaders& headers,
                                  std::optional<size_t> content_length) {
  std::string out = fmt::format("HTTP/1.1 {} {}\r\n", status, HttpReason(status));
  AppendHeaders(out, headers);
  if (content_length) {
    fmt::format_to(std::back_inserter(out), "Content-Length: {}\r\n\r\n", *content_length);
  } else {
    out.append("Transfer-Encoding: chunked\r\n\r\n");
  }
  return out;
}

std::string SerializeRequestHead(std::string_view method, std::string_view target,
                                 std::string_view host, const HttpHeaders& headers,
                                 size_t content_length) {
  std::string out = fmt::format("{} {} HTTP/1.1\r\n", method, target);
  if (!headers.Has("Host")) fmt::format_to(std::back_inserter(out), "Host: {}\r\n", host);
  AppendHeaders(out, headers);
  if (content_length > 0 || method == "POST" || method == "PUT" || method == "PATCH") {
    fmt::format_to(std::back_inserter(out), "Content-Length: {}\r\n", content_length);
  }
  out.append("\r\n");
  return out;
}

void AppendChunk(std::string& out, std::string_view data) {
  fmt::format_to(std::back_inserter(out), "{:x}\r\n", data.size());
  out.append(data);
  out.append("\r\n");
}

}  // namespace triplane::common
