#include "cli/http_flags.h"

#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "fmt/format.h"

namespace triplane::cli {
namespace {

// A year: far longer than any sensible timeout, and far inside milliseconds' range.
constexpr double kMaxTimeoutSeconds = 365.0 * 24 * 3600;

// Accepts a finite number of seconds in (0, kMaxTimeoutSeconds].
CLI::Validator TimeoutSeconds() {
  return CLI::Validator(
      [](std::string& input) -> std::string {
        double seconds = 0;
        if (!CLI::detail::lexical_cast(input, seconds) || !std::isfinite(seconds) || seconds <= 0 ||
            seconds > kMaxTimeoutSeconds) {
          return fmt::format("{} is not a number of seconds in (0, {:.0f}]", input,
                             kMaxTimeoutSeconds);
        }
        return "";
      },
      "SECONDS>0");
}

void AddTimeoutFlag(CLI::App& app, const std::string& name, std::chrono::milliseconds& timeout,
                    const std::string& description) {
  app.add_option_function<double>(
         name,
         [&timeout](const double& seconds) {
           const auto millis = static_cast<int64_t>(std::llround(seconds * 1000));
           timeout = std::chrono::milliseconds(millis < 1 ? 1 : millis);
         },
         description)
      ->check(TimeoutSeconds())
      ->default_str(fmt::format("{}", static_cast<double>(timeout.count()) / 1000))
      ->run_callback_for_default();  // a config-file default sets `timeout` too
}

}  // namespace

void AddHttpServerFlags(CLI::App& app, common::HttpServerOptions& options) {
  app.add_option("--host", options.host, "Address to listen on")->capture_default_str();
  app.add_option("--port", options.port, "TCP port to listen on (0 picks a free port)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  app.add_option("--http-threads", options.threads, "HTTP I/O threads (0 = automatic)")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
  app.add_option("--max-body-bytes", options.max_body_bytes,
                 "Largest request body accepted; larger ones get 413")
      ->check(CLI::Range(size_t{1}, std::numeric_limits<size_t>::max(), "POSITIVE"))
      ->capture_default_str();
  AddTimeoutFlag(app, "--header-timeout", options.header_timeout,
                 "Seconds from a connection's first byte to the end of the request headers");
  AddTimeoutFlag(app, "--body-timeout", options.body_timeout,
                 "Seconds from the end of the headers to the end of the request body");
  AddTimeoutFlag(app, "--idle-timeout", options.idle_timeout,
                 "Seconds a keep-alive connection waits for its next request");
  AddTimeoutFlag(app, "--write-timeout", options.write_timeout,
                 "Seconds one write to a slow client may take");
  CLI::Option* cert = app.add_option("--tls-cert", options.tls_cert_file,
                                     "Serve HTTPS (TLS 1.2+) with this PEM certificate chain, "
                                     "leaf first")
                          ->type_name("FILE");
  CLI::Option* key = app.add_option("--tls-key", options.tls_key_file,
                                    "PEM private key of --tls-cert")
                         ->type_name("FILE");
  cert->needs(key);
  key->needs(cert);
}

std::string ServerUrl(const common::HttpServerOptions& options, uint16_t port) {
  return fmt::format("{}://{}:{}", options.tls() ? "https" : "http", options.host, port);
}

}  // namespace triplane::cli
