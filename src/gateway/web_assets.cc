#include "gateway/web_assets.h"

#include "common/http_router.h"

namespace triplane::gateway {

void AddWebRoutes(common::HttpRouter& router) {
  common::AddStaticFileRoutes(router, WebAssets(),
                              {.aliases = {{"/", "/index.html"}, {"/admin", "/admin.html"}}});
}

}  // namespace triplane::gateway
