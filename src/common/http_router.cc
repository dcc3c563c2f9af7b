#include "common/http_router.h"

#include <cstdio>
#include <cstdlib>

#include "common/http_server.h"

namespace triplane::common {

namespace {

[[noreturn]] void RouteError(std::string_view pattern, std::string_view why) {
  std::fprintf(stderr, "HttpRouter: bad route '%.*s': %.*s\n", static_cast<int>(pattern.size()),
               pattern.data(), static_cast<int>(why.size()), why.data());
  std::abort();
}

// Splits "/a/b/c" into {"a","b","c"}; "/" gives {}. A trailing slash yields an empty
// last segment so that "/a/" does not match "/a".
std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> parts;
  if (path.empty() || path == "/") return parts;
  if (path.front() == '/') path.remove_prefix(1);
  size_t start = 0;
  while (true) {
    size_t slash = path.find('/', start);
    parts.push_back(path.substr(start, slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return parts;
}

}  // namespace

void HttpRouter::Add(HttpMethod method, std::string_view pattern, HttpHandler handler) {
  if (pattern.empty() || pattern.front() != '/') RouteError(pattern, "must start with '/'");
  Route route{.method = method, .pattern = std::string(pattern), .handler = std::move(handler)};
  std::vector<std::string_view> parts = SplitPath(pattern);
  for (size_t i = 0; i < parts.size(); ++i) {
    std::string_view part = parts[i];
    Segment segment;
    if (part.size() >= 2 && part.front() == '{' && part.back() == '}') {
      std::string_view name = part.substr(1, part.size() - 2);
      segment.param = true;
      if (name.size() > 3 && name.ends_with("...")) {
        if (i + 1 != parts.size()) RouteError(pattern, "{name...} must be the last segment");
        segment.rest = true;
        name.remove_suffix(3);
      }
      if (name.empty()) RouteError(pattern, "empty parameter name");
      segment.text = std::string(name);
    } else {
      if (part.find_first_of("{}") != std::string_view::npos) {
        RouteError(pattern, "braces must enclose a whole segment");
      }
      segment.text = std::string(part);
      ++route.literal_count;
    }
    route.segments.push_back(std::move(segment));
  }
  for (const Route& existing : routes_) {
    if (existing.method == method && existing.pattern == route.pattern) {
      RouteError(pattern, "added twice for the same method");
    }
  }
  routes_.push_back(std::move(route));
}

void HttpRouter::Add(HttpMethod method, std::string_view pattern, HttpSyncHandler handler) {
  Add(method, pattern, HttpHandler([handler = std::move(handler)](std::shared_ptr<Responder> r) {
        r->Send(handler(r->request()));
      }));
}

HttpRouter::Match HttpRouter::Find(HttpMethod method, std::string_view path) const {
  std::vector<std::string_view> parts = SplitPath(path);
  Match best;
  int best_literals = -1;
  bool best_rest = true;
  for (const Route& route : routes_) {
    std::vector<std::pair<std::string, std::string>> params;
    bool matched = true;
    bool has_rest = false;
    size_t i = 0;
    for (; i < route.segments.size(); ++i) {
      const Segment& segment = route.segments[i];
      if (segment.rest) {
        has_rest = true;
        if (i >= parts.size()) {
          matched = false;
          break;
        }
        // Join the remaining parts back together.
        const char* begin = parts[i].data();
        const char* end = parts.back().data() + parts.back().size();
        params.emplace_back(segment.text, PercentDecode(std::string_view(begin, end - begin)));
        i = parts.size();
        break;
      }
      if (i >= parts.size()) {
        matched = false;
        break;
      }
      if (segment.param) {
        if (parts[i].empty()) {
          matched = false;
          break;
        }
        params.emplace_back(segment.text, PercentDecode(parts[i]));
      } else if (segment.text != PercentDecode(parts[i])) {
        matched = false;
        break;
      }
    }
    if (!matched || (!has_rest && i != parts.size())) continue;
    if (route.method != method) {
      best.allowed.push_back(route.method);
      continue;
    }
    // Prefer more literal segments, then routes without a rest parameter.
    if (route.literal_count > best_literals ||
        (route.literal_count == best_literals && best_rest && !has_rest)) {
      best.handler = &route.handler;
      best.route = route.pattern;
      best.params = std::move(params);
      best_literals = route.literal_count;
      best_rest = has_rest;
    }
  }
  if (best.handler) best.allowed.clear();
  return best;
}

}  // namespace triplane::common
