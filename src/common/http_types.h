#pragma once

// Transport-neutral HTTP request/response types shared by the server, the client and
// every handler. Deliberately free of Boost: only http_server.cc and http_client.cc
// include Beast, so most of the code base compiles fast.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "nlohmann/json_fwd.hpp"

namespace triplane::common {

enum class HttpMethod { kGet, kHead, kPost, kPut, kPatch, kDelete, kOptions, kOther };

std::string_view HttpMethodName(HttpMethod method);
HttpMethod ParseHttpMethod(std::string_view name);  // unknown names -> kOther

// Standard reason phrase for `status` ("Not Found"); "Unknown" for unlisted codes.
std::string_view HttpReason(int status);

// An ordered multimap of header fields with case-insensitive names.
class HttpHeaders {
 public:
  using Field = std::pair<std::string, std::string>;

  // First value of `name`, if present. Cost: linear in the number of fields.
  std::optional<std::string_view> Get(std::string_view name) const;
  bool Has(std::string_view name) const { return Get(name).has_value(); }
  // Replaces every field named `name` with one field.
  void Set(std::string_view name, std::string_view value);
  // Appends a field, keeping existing ones (e.g. Set-Cookie).
  void Add(std::string_view name, std::string_view value);
  void Remove(std::string_view name);

  const std::vector<Field>& fields() const { return fields_; }
  bool empty() const { return fields_.empty(); }

 private:
  std::vector<Field> fields_;
};

// A request as a handler sees it. The server fills everything; the router fills
// `path_params`. Owned by the server for the lifetime of the exchange.
struct HttpRequest {
  HttpMethod method = HttpMethod::kGet;
  std::string method_name;  // as sent, e.g. "GET"
  std::string target;       // raw request target, e.g. "/v1/models?limit=2"
  std::string path;         // percent-decoded path without the query, e.g. "/v1/models"
  std::string query;        // raw query string without '?', e.g. "limit=2"
  HttpHeaders headers;
  std::string body;
  std::vector<std::pair<std::string, std::string>> path_params;  // {"name", "llama"}
  std::string route;          // the matched route pattern, e.g. "/v1/models/{id}"
  std::string request_id;     // from a valid x-request-id header, or generated
  std::string remote_address; // "127.0.0.1:54321"

  // Value of path parameter `name` ("" when absent).
  std::string_view PathParam(std::string_view name) const;
  // First value of query parameter `name`, percent-decoded; nullopt when absent.
  std::optional<std::string> QueryParam(std::string_view name) const;
};

// The API key a request presents: `Authorization: Bearer KEY` (the scheme in any case),
// else `x-api-key: KEY`; "" when it presents none. A view into the request's headers.
std::string_view PresentedApiKey(const HttpRequest& request);

// True when the request presents exactly `key`; compared in constant time (no timing
// depends on how much of a guess matches).
bool PresentsApiKey(const HttpRequest& request, std::string_view key);

// A complete (non-streamed) response.
struct HttpResponse {
  int status = 200;
  HttpHeaders headers;
  std::string body;

  static HttpResponse Json(int status, const nlohmann::json& body);
  static HttpResponse Text(int status, std::string body,
                           std::string_view content_type = "text/plain; charset=utf-8");
};

// Decodes %XX escapes (and '+' as space when `plus_as_space`). Invalid escapes are
// kept verbatim; never fails.
std::string PercentDecode(std::string_view text, bool plus_as_space = false);
// Escapes every byte outside RFC 3986 "unreserved".
std::string PercentEncode(std::string_view text);

// A parsed http:// URL. Only plain HTTP is supported by the client for now.
struct HttpUrl {
  std::string scheme;  // "http"
  std::string host;    // "127.0.0.1"
  uint16_t port = 80;
  std::string target;  // "/v1/models?x=1" (always starts with '/')
};

// Parses an absolute http(s) URL; on failure returns nullopt and says why in `error`.
std::optional<HttpUrl> ParseHttpUrl(std::string_view url, std::string* error = nullptr);

// One spelling per host for "is this the same server" checks: "localhost", 127.x.y.z, ::1
// and the wildcard addresses all reach this machine's loopback-bound servers and become
// "127.0.0.1". IPv4 addresses are read as the resolver reads them (inet_aton: "127.1",
// "2130706433", "0x7f000001" are 127.0.0.1), IPv6 ones with their IPv4-mapped forms;
// other names are compared as written (lowercase, brackets dropped).
std::string CanonicalHost(std::string_view host);

}  // namespace triplane::common
