#pragma once

// Routing by method and path pattern. Patterns are literal segments and `{name}`
// parameters that match one non-empty segment, plus an optional final `{name...}`
// that matches the rest of the path: "/admin/v1/models/{model}/versions/{version}".

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/http_types.h"

namespace triplane::common {

class Responder;

// An asynchronous handler: it must eventually call Send() or StartStream()/Finish() on
// the responder, from any thread, or drop it (the server then answers 500).
// Runs on a server I/O thread: it must not block; hand blocking work to a ThreadPool.
using HttpHandler = std::function<void(std::shared_ptr<Responder>)>;
// A synchronous handler for quick, non-blocking work.
using HttpSyncHandler = std::function<HttpResponse(const HttpRequest&)>;

class HttpRouter {
 public:
  struct Match {
    const HttpHandler* handler = nullptr;  // null when nothing matched
    std::string route;                     // the matched pattern
    std::vector<std::pair<std::string, std::string>> params;
    // When the path matched but the method did not: the methods that would have
    // matched (for 405 + Allow). Empty with a null handler means 404.
    std::vector<HttpMethod> allowed;
  };

  // Adds a route. REQUIRES: `pattern` starts with '/' and is well formed; the same
  // method+pattern is not added twice (both abort: they are programming errors).
  void Add(HttpMethod method, std::string_view pattern, HttpHandler handler);
  void Add(HttpMethod method, std::string_view pattern, HttpSyncHandler handler);

  // Finds the handler for `path`, given raw (percent-encoded): segments are split
  // first and decoded after, so "%2F" inside a parameter stays in that parameter.
  // Literal segments win over parameters. Thread-safe once all routes are added. Cost: O(routes × segments).
  Match Find(HttpMethod method, std::string_view path) const;

 private:
  struct Segment {
    std::string text;
    bool param = false;
    bool rest = false;  // `{name...}`
  };
  struct Route {
    HttpMethod method;
    std::string pattern;
    std::vector<Segment> segments;
    int literal_count = 0;
    HttpHandler handler;
  };
  std::vector<Route> routes_;
};

}  // namespace triplane::common
