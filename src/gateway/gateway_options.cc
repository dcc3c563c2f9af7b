#include "gateway/gateway_options.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace triplane::gateway {
namespace {

absl::Status Invalid(absl::string_view field, absl::string_view reason) {
  return absl::InvalidArgumentError(absl::StrCat("gateway option ", field, ": ", reason));
}

// Why `url` is not of the form http(s)://host[:port][/path], or empty when it is.
std::string UrlProblem(absl::string_view url) {
  absl::string_view rest;
  if (absl::StartsWith(url, "http://")) {
    rest = url.substr(7);
  } else if (absl::StartsWith(url, "https://")) {
    rest = url.substr(8);
  } else {
    return "must start with http:// or https://";
  }
  for (char c : url) {
    if (absl::ascii_isspace(static_cast<unsigned char>(c)) ||
        absl::ascii_iscntrl(static_cast<unsigned char>(c))) {
      return "must not contain spaces or control characters";
    }
  }
  const absl::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  if (authority.find('@') != absl::string_view::npos) return "must not contain user information";

  absl::string_view host = authority;
  absl::string_view port;
  if (absl::StartsWith(authority, "[")) {  // [IPv6]:port
    const size_t close = authority.find(']');
    if (close == absl::string_view::npos) return "has an unterminated IPv6 address";
    host = authority.substr(1, close - 1);
    const absl::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return "has junk after the IPv6 address";
      port = after.substr(1);
      if (port.empty()) return "has an empty port";
    }
  } else if (const size_t colon = authority.rfind(':'); colon != absl::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
    if (port.empty()) return "has an empty port";
  }
  if (host.empty()) return "has no host";
  if (!port.empty()) {
    int value = 0;
    if (!absl::SimpleAtoi(port, &value) || value < 1 || value > 65535 ||
        !absl::ascii_isdigit(static_cast<unsigned char>(port.front()))) {
      return absl::StrCat("has an invalid port '", port, "' (expected 1..65535)");
    }
  }
  return "";
}

}  // namespace

absl::Status GatewayOptions::Validate() const {
  if (const std::string problem = UrlProblem(control_url); !problem.empty()) {
    return Invalid("control-url", absl::StrCat("'", control_url, "' ", problem));
  }
  if (host.empty()) return Invalid("host", "must not be empty");
  return absl::OkStatus();
}

}  // namespace triplane::gateway
