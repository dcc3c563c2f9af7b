#pragma once

// The store's schema as an ordered list of migrations, the same on SQLite and PostgreSQL
// (portable types only: TEXT, BIGINT; times are microseconds since the Unix epoch, JSON is
// TEXT, booleans are 0/1). A migration is never edited once released: change the schema
// by appending one.

#include <cstdint>
#include <span>
#include <string_view>

#include "absl/status/status.h"
#include "control/store/sql_backend.h"

namespace triplane::control {

struct Migration {
  int64_t version;        // 1, 2, … without gaps
  std::string_view name;  // recorded in schema_migrations
  std::string_view sql;   // statements separated by ';'
};

// All migrations, by version.
std::span<const Migration> Migrations();

// Applies the migrations `backend` lacks, in order, in one transaction, each recorded in
// schema_migrations (version, name, applied_at); a no-op when all are there. Serialised
// between processes (SQLite's write lock, a PostgreSQL advisory lock). FailedPrecondition
// when the database has a migration this binary does not know (it is newer).
[[nodiscard]] absl::Status ApplyMigrations(sql::Backend& backend, int64_t now_micros);

}  // namespace triplane::control
