#pragma once

// Command-line flags for an HTTP server's listening address, threads, limits and
// timeouts, shared by every subcommand that runs a server.

#include <cstdint>
#include <string>

#include "CLI/CLI.hpp"
#include "common/http_server.h"

namespace triplane::cli {

// Binds to `options` (which must outlive parsing): --host, --port (0..65535; 0 picks a
// free port), --http-threads (>= 0; 0 = automatic), --max-body-bytes (>= 1), and
// --header-timeout, --body-timeout, --idle-timeout, --write-timeout in seconds
// (fractions allowed, > 0, rounded to whole milliseconds, at least 1 ms), and --tls-cert
// with --tls-key (PEM files; each needs the other; the server checks the files when it
// starts). The current values of `options` are the defaults shown in --help.
// Out-of-range values are parse errors naming the flag.
void AddHttpServerFlags(CLI::App& app, common::HttpServerOptions& options);

// The URL a server started with `options` answers on: "https://HOST:PORT" when TLS is
// on, "http://HOST:PORT" otherwise. `port` is the bound one (HttpServer::port()).
std::string ServerUrl(const common::HttpServerOptions& options, uint16_t port);

}  // namespace triplane::cli
