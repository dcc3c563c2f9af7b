#pragma once

// The SQLite back end: one database file (WAL journal, so readers never wait for the
// writer; a busy timeout, so writers from several connections or processes queue).

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "control/store/sql_backend.h"
#include "control/store/store.h"

namespace triplane::control {

// Opens (creating when missing, mode 0600) the database at `path`, whose directory must
// exist, and applies pending migrations.
[[nodiscard]] absl::StatusOr<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path,
                                                                     const StoreOptions& options);

// A bare connection to the same file with no migrations: for tools and tests that need
// raw SQL. Thread-safe (one connection behind a mutex).
[[nodiscard]] absl::StatusOr<std::unique_ptr<sql::Backend>> OpenSqliteBackend(
    const std::string& path, const StoreOptions& options);

}  // namespace triplane::control
