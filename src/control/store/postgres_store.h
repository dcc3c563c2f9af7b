#pragma once

// The PostgreSQL back end (libpqxx): a small pool of connections to
// `postgres://user:password@host:port/database` (any libpq URI or key=value string).
// A connection lost to a server restart is replaced on next use, and a transaction that
// failed with it before committing is run again on a fresh connection.

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "control/store/sql_backend.h"
#include "control/store/store.h"

namespace triplane::control {

// Connects, applies pending migrations and returns the store. Unavailable when the
// server cannot be reached within StoreOptions::connect_timeout.
[[nodiscard]] absl::StatusOr<std::unique_ptr<Store>> OpenPostgresStore(const std::string& url,
                                                                       const StoreOptions& options);

// A bare connection pool with no migrations: for tools and tests that need raw SQL.
[[nodiscard]] absl::StatusOr<std::unique_ptr<sql::Backend>> OpenPostgresBackend(
    const std::string& url, const StoreOptions& options);

// `url` with the password replaced by "***", for logs and messages.
std::string RedactPostgresUrl(std::string_view url);

}  // namespace triplane::control
