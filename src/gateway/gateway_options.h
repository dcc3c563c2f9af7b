#pragma once

// Settings of one gateway process (`triplane gateway`): where it listens and which
// control plane it follows for keys, models, routes and quotas.

#include <cstdint>
#include <string>

#include "absl/status/status.h"

namespace triplane::gateway {

struct GatewayOptions {
  std::string control_url = "http://127.0.0.1:8090";  // base URL of the control plane
  std::string host = "127.0.0.1";                     // address the public API listens on
  uint16_t port = 8080;                               // 0 picks a free port

  // OK when every field is usable; otherwise InvalidArgument naming the first bad field.
  // control_url must be http:// or https:// followed by host[:port] (an IPv6 host in
  // brackets) and optionally a path; it is not contacted here.
  [[nodiscard]] absl::Status Validate() const;
};

}  // namespace triplane::gateway
