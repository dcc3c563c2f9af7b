#include "common/http_types.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <charconv>
#include <cstring>

#include "common/strings.h"
#include "nlohmann/json.hpp"

namespace triplane::common {

std::string_view HttpMethodName(HttpMethod method) {
  switch (method) {
    case HttpMethod::kGet: return "GET";
    case HttpMethod::kHead: return "HEAD";
    case HttpMethod::kPost: return "POST";
    case HttpMethod::kPut: return "PUT";
    case HttpMethod::kPatch: return "PATCH";
    case HttpMethod::kDelete: return "DELETE";
    case HttpMethod::kOptions: return "OPTIONS";
    case HttpMethod::kOther: return "OTHER";
  }
  return "OTHER";
}

HttpMethod ParseHttpMethod(std::string_view name) {
  static constexpr HttpMethod kAll[] = {HttpMethod::kGet,   HttpMethod::kHead,   HttpMethod::kPost,
                                        HttpMethod::kPut,   HttpMethod::kPatch,  HttpMethod::kDelete,
                                        HttpMethod::kOptions};
  for (HttpMethod m : kAll) {
    if (HttpMethodName(m) == name) return m;
  }
  return HttpMethod::kOther;
}

std::string_view HttpReason(int status) {
  switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 499: return "Client Closed Request";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 507: return "Insufficient Storage";
    default: return "Unknown";
  }
}

std::optional<std::string_view> HttpHeaders::Get(std::string_view name) const {
  for (const auto& [k, v] : fields_) {
    if (EqualsIgnoreCase(k, name)) return std::string_view(v);
  }
  return std::nullopt;
}

void HttpHeaders::Set(std::string_view name, std::string_view value) {
  Remove(name);
  Add(name, value);
}

void HttpHeaders::Add(std::string_view name, std::string_view value) {
  fields_.emplace_back(std::string(name), std::string(value));
}

void HttpHeaders::Remove(std::string_view name) {
  std::erase_if(fields_, [&](const Field& f) { return EqualsIgnoreCase(f.first, name); });
}

std::string_view HttpRequest::PathParam(std::string_view name) const {
  for (const auto& [k, v] : path_params) {
    if (k == name) return v;
  }
  return {};
}

std::optional<std::string> HttpRequest::QueryParam(std::string_view name) const {
  std::string_view rest = query;
  while (!rest.empty()) {
    size_t amp = rest.find('&');
    std::string_view pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    size_t eq = pair.find('=');
    std::string key = PercentDecode(pair.substr(0, eq), /*plus_as_space=*/true);
    if (key != name) continue;
    if (eq == std::string_view::npos) return std::string();
    return PercentDecode(pair.substr(eq + 1), /*plus_as_space=*/true);
  }
  return std::nullopt;
}

HttpResponse HttpResponse::Json(int status, const nlohmann::json& body) {
  HttpResponse response;
  response.status = status;
  response.headers.Set("Content-Type", "application/json");
  // Replace invalid UTF-8 rather than throw: handlers may echo user input.
  response.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return response;
}

HttpResponse HttpResponse::Text(int status, std::string body, std::string_view content_type) {
  HttpResponse response;
  response.status = status;
  response.headers.Set("Content-Type", content_type);
  response.body = std::move(body);
  return response;
}

namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string PercentDecode(std::string_view text, bool plus_as_space) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%' && i + 2 < text.size()) {
      int hi = HexValue(text[i + 1]);
      int lo = HexValue(text[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(plus_as_space && c == '+' ? ' ' : c);
  }
  return out;
}

std::string PercentEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (IsAsciiAlnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::optional<HttpUrl> ParseHttpUrl(std::string_view url, std::string* error) {
  auto fail = [&](std::string_view why) -> std::optional<HttpUrl> {
    if (error) *error = std::string(why);
    return std::nullopt;
  };
  HttpUrl out;
  size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return fail("URL has no scheme (expected http://)");
  out.scheme = AsciiToLower(url.substr(0, scheme_end));
  if (out.scheme == "http") {
    out.port = 80;
  } else if (out.scheme == "https") {
    out.port = 443;
  } else {
    return fail("unsupported URL scheme '" + out.scheme + "' (expected http or https)");
  }
  std::string_view rest = url.substr(scheme_end + 3);
  size_t path_start = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, path_start);
  std::string_view target =
      path_start == std::string_view::npos ? std::string_view() : rest.substr(path_start);
  if (authority.find('@') != std::string_view::npos) return fail("URL must not carry credentials");
  if (authority.empty()) return fail("URL has no host");
  std::string_view host = authority;
  std::string_view port_text;
  if (authority.front() == '[') {  // [::1]:8080
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return fail("URL has an unterminated IPv6 address");
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty() && after.front() != ':') return fail("URL has junk after the IPv6 address");
    if (!after.empty()) port_text = after.substr(1);
    if (!after.empty() && port_text.empty()) return fail("URL has an invalid port");
  } else if (size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port_text = authority.substr(colon + 1);
    if (port_text.empty()) return fail("URL has an invalid port");
  }
  if (!port_text.empty()) {
    unsigned port = 0;
    auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || ptr != port_text.data() + port_text.size() || port == 0 ||
        port > 65535) {
      return fail("URL has an invalid port");
    }
    out.port = static_cast<uint16_t>(port);
  }
  if (host.empty()) return fail("URL has no host");
  for (char c : host) {
    if (!(IsAsciiAlnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':' ||
          c == '_')) {
      return fail("URL host has invalid characters");
    }
  }
  out.host = std::string(host);
  size_t hash = target.find('#');
  if (hash != std::string_view::npos) target = target.substr(0, hash);
  out.target = target.empty() || target.front() != '/' ? "/" + std::string(target) : std::string(target);
  for (unsigned char c : out.target) {
    if (c <= 0x20 || c == 0x7f) return fail("URL path has spaces or control characters");
  }
  return out;
}

std::string_view PresentedApiKey(const HttpRequest& request) {
  if (std::optional<std::string_view> auth = request.headers.Get("authorization")) {
    std::string_view value = *auth;
    constexpr std::string_view kBearer = "bearer ";
    if (value.size() > kBearer.size() && EqualsIgnoreCase(value.substr(0, kBearer.size()), kBearer)) {
      value.remove_prefix(kBearer.size());
      while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      return value;
    }
  }
  return request.headers.Get("x-api-key").value_or("");
}

bool PresentsApiKey(const HttpRequest& request, std::string_view key) {
  const std::string_view presented = PresentedApiKey(request);
  if (presented.size() != key.size()) return false;
  volatile unsigned char difference = 0;
  for (size_t i = 0; i < key.size(); ++i) {
    difference = difference | static_cast<unsigned char>(presented[i] ^ key[i]);
  }
  return difference == 0;
}

std::string CanonicalHost(std::string_view host) {
  std::string h = AsciiToLower(host);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  if (h == "localhost") return "127.0.0.1";
  in_addr v4{};
  in6_addr v6{};
  if (::inet_pton(AF_INET6, h.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6) || IN6_IS_ADDR_UNSPECIFIED(&v6)) return "127.0.0.1";
    if (!IN6_IS_ADDR_V4MAPPED(&v6)) return h;
    std::memcpy(&v4, &v6.s6_addr[12], sizeof(v4));
  } else if (::inet_aton(h.c_str(), &v4) == 0) {
    return h;
  }
  const uint32_t address = ntohl(v4.s_addr);
  if ((address >> 24) == 127 || address == 0) return "127.0.0.1";
  char text[INET_ADDRSTRLEN] = {};
  return ::inet_ntop(AF_INET, &v4, text, sizeof(text)) != nullptr ? std::string(text) : h;
}

}  // namespace triplane::common
