#pragma once

// Serving a fixed set of files from memory (the web console, embedded at build time):
// one exact route per file, so a request can only ever reach a file of the set, with an
// ETag for revalidation and the security headers a page needs.

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/http_types.h"

namespace triplane::common {

class HttpRouter;

// One file. Views into static storage (generated code): never owned, never freed.
struct StaticFile {
  std::string_view path;          // URL path, "/index.html"
  std::string_view content_type;  // "text/html; charset=utf-8"
  std::string_view sha256;        // lowercase hex digest of the bytes
  const unsigned char* data = nullptr;
  size_t size = 0;

  std::string_view bytes() const { return {reinterpret_cast<const char*>(data), size}; }
  // The strong ETag: the first 32 hex digits of the digest, quoted.
  std::string ETag() const;
};

struct StaticSiteOptions {
  // Further paths that serve a file of the set: {"/", "/index.html"}. An alias naming a
  // file that is not in the set aborts (a programming error).
  std::vector<std::pair<std::string, std::string>> aliases;
  // Content-Security-Policy of every answer. The default allows scripts, styles and
  // connections to this origin only: no inline script or style, no eval, no framing.
  std::string content_security_policy =
      "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
      "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
      "frame-ancestors 'none'";
};

// The answer to GET/HEAD of `file`: 200 with the bytes, or 304 without them when the
// request's If-None-Match names the file's ETag (or is "*"). Either way with ETag,
// Cache-Control no-cache (always revalidate: the paths are not content-hashed),
// Content-Security-Policy, X-Content-Type-Options nosniff, Referrer-Policy no-referrer
// and X-Frame-Options DENY.
HttpResponse StaticFileResponse(const StaticFile& file, const HttpRequest& request,
                                const StaticSiteOptions& options);

// Adds GET and HEAD routes for every file at its path and for every alias. REQUIRES:
// paths are distinct, well-formed router patterns without parameters, and not taken by
// other routes (the router aborts otherwise). `files` must outlive the router.
void AddStaticFileRoutes(HttpRouter& router, std::span<const StaticFile> files,
                         StaticSiteOptions options = {});

}  // namespace triplane::common
