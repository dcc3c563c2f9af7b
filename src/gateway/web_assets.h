#pragma once

// The web UI: the chat page and the admin console, the files under web/ in the source
// tree, compiled into the binary at build time (cmake/TriplaneWebAssets.cmake).

#include <span>

#include "common/static_files.h"

namespace triplane::common {
class HttpRouter;
}

namespace triplane::gateway {

// Every embedded file, sorted by path ("/admin.html", "/index.html", ...). Defined in
// code generated from web/. Static storage: valid for the life of the process.
std::span<const common::StaticFile> WebAssets();

// Serves the chat page at "/", the admin console at "/admin", and every file of web/ at
// its own path, with the security headers of common::StaticFileResponse.
void AddWebRoutes(common::HttpRouter& router);

}  // namespace triplane::gateway
