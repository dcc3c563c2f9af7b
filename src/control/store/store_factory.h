#pragma once

// Opens the store named by `--store`.

#include <memory>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "control/store/store.h"

namespace triplane::control {

// The SQLite file used when `--store` is "sqlite" (or empty): DATA_DIR/triplane.db.
inline constexpr std::string_view kSqliteFileName = "triplane.db";

// `store` is one of:
//   "sqlite" or ""                      DATA_DIR/triplane.db (the data dir is created)
//   "sqlite:PATH" or "sqlite://PATH"    that file (relative to the working directory)
//   "postgres://…", "postgresql://…"    a PostgreSQL server (libpq URI)
// Applies pending migrations. InvalidArgument for anything else.
[[nodiscard]] absl::StatusOr<std::unique_ptr<Store>> OpenStore(std::string_view store,
                                                               std::string_view data_dir,
                                                               const StoreOptions& options = {});

// OK when `store` has one of the forms OpenStore accepts (for option validation; does
// not connect).
[[nodiscard]] absl::Status ValidateStoreUrl(std::string_view store);

}  // namespace triplane::control
