#include "control/store/store_factory.h"

#include <filesystem>
#include <string>
#include <system_error>

#include "common/status_macros.h"
#include "control/store/postgres_store.h"
#include "control/store/sqlite_store.h"
#include "fmt/format.h"

namespace triplane::control {
namespace {

bool IsPostgres(std::string_view store) {
  return store.starts_with("postgres://") || store.starts_with("postgresql://");
}

// The SQLite file named by `store`, or "" when `store` does not name SQLite.
std::string SqlitePath(std::string_view store, std::string_view data_dir) {
  if (store.empty() || store == "sqlite") {
    return (std::filesystem::path(data_dir) / kSqliteFileName).string();
  }
  if (store.starts_with("sqlite://")) return std::string(store.substr(9));
  if (store.starts_with("sqlite:")) return std::string(store.substr(7));
  return "";
}

}  // namespace

absl::Status ValidateStoreUrl(std::string_view store) {
  if (IsPostgres(store)) return absl::OkStatus();
  if (store.empty() || store == "sqlite") return absl::OkStatus();
  if ((store.starts_with("sqlite:") && store.size() > 7 && store != "sqlite://"))
    return absl::OkStatus();
  return absl::InvalidArgumentError(fmt::format(
      "unknown store '{}' (use sqlite, sqlite:PATH or postgres://user:password@host:port/database)",
      store.starts_with("postgres") ? "postgres…" : store));
}

absl::StatusOr<std::unique_ptr<Store>> OpenStore(std::string_view store, std::string_view data_dir,
                                                 const StoreOptions& options) {
  TP_RETURN_IF_ERROR(ValidateStoreUrl(store));
  if (IsPostgres(store)) return OpenPostgresStore(std::string(store), options);
  const std::string path = SqlitePath(store, data_dir);
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    if (ec) {
      return absl::FailedPreconditionError(
          fmt::format("cannot create the store's directory {}: {}", parent.string(), ec.message()));
    }
  }
  return OpenSqliteStore(path, options);
}

}  // namespace triplane::control
