#include "common/static_files.h"

#include <cstdio>
#include <cstdlib>
#include <memory>

#include "common/http_router.h"

namespace triplane::common {
namespace {

// Whether an If-None-Match header value (a list of entity tags, or "*") names `etag`.
// Weak comparison, as RFC 9110 asks for If-None-Match: W/"x" matches "x".
bool NoneMatchNames(std::string_view header, std::string_view etag) {
  while (!header.empty()) {
    const size_t comma = header.find(',');
    std::string_view tag = header.substr(0, comma);
    header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);
    while (!tag.empty() && (tag.front() == ' ' || tag.front() == '\t')) tag.remove_prefix(1);
    while (!tag.empty() && (tag.back() == ' ' || tag.back() == '\t')) tag.remove_suffix(1);
    if (tag == "*") return true;
    if (tag.starts_with("W/")) tag.remove_prefix(2);
    if (tag == etag) return true;
  }
  return false;
}

}  // namespace

std::string StaticFile::ETag() const {
  return "\"" + std::string(sha256.substr(0, 32)) + "\"";
}

HttpResponse StaticFileResponse(const StaticFile& file, const HttpRequest& request,
                                const StaticSiteOptions& options) {
  HttpResponse response;
  const std::string etag = file.ETag();
  const std::optional<std::string_view> none_match = request.headers.Get("if-none-match");
  if (none_match && NoneMatchNames(*none_match, etag)) {
    response.status = 304;
  } else {
    response.status = 200;
    response.body = std::string(file.bytes());
  }
  HttpHeaders& h = response.headers;
  h.Set("content-type", file.content_type);
  h.Set("etag", etag);
  h.Set("cache-control", "no-cache");
  h.Set("content-security-policy", options.content_security_policy);
  h.Set("x-content-type-options", "nosniff");
  h.Set("referrer-policy", "no-referrer");
  h.Set("x-frame-options", "DENY");
  return response;
}

void AddStaticFileRoutes(HttpRouter& router, std::span<const StaticFile> files,
                         StaticSiteOptions options) {
  auto shared = std::make_shared<const StaticSiteOptions>(std::move(options));
  auto add = [&](std::string_view path, const StaticFile& file) {
    HttpSyncHandler handler = [&file, shared](const HttpRequest& request) {
      return StaticFileResponse(file, request, *shared);
    };
    router.Add(HttpMethod::kGet, path, handler);
    router.Add(HttpMethod::kHead, path, handler);
  };
  for (const StaticFile& file : files) add(file.path, file);
  for (const auto& [alias, target] : shared->aliases) {
    const StaticFile* found = nullptr;
    for (const StaticFile& file : files) {
      if (file.path == target) found = &file;
    }
    if (found == nullptr) {
      std::fprintf(stderr, "static files: alias %s names no file (%s)\n", alias.c_str(), target.c_str());
      std::abort();
    }
    add(alias, *found);
  }
}

}  // namespace triplane::common
