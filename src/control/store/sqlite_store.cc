#include "control/store/sqlite_store.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <string_view>
#include <unordered_map>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/status_macros.h"
#include "control/store/sql_store.h"
#include "fmt/format.h"

namespace triplane::control {
namespace {

// Maps an SQLite result code to the store's error space. Messages name tables and
// columns, never values.
absl::Status SqliteError(sqlite3* db, int rc, std::string_view what) {
  const int extended = db != nullptr ? sqlite3_extended_errcode(db) : rc;
  const std::string message =
      fmt::format("sqlite: {}: {}", what, db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  switch (extended) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
      return absl::AlreadyExistsError(message);
    case SQLITE_CONSTRAINT_FOREIGNKEY:
      return absl::FailedPreconditionError(message);
    case SQLITE_CONSTRAINT_CHECK:
    case SQLITE_CONSTRAINT_NOTNULL:
      return absl::InvalidArgumentError(message);
    default:
      break;
  }
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::UnavailableError(message);
    case SQLITE_FULL:
      return absl::ResourceExhaustedError(message);
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PERM:
      return absl::UnavailableError(message);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::DataLossError(message);
    default:
      return absl::InternalError(message);
  }
}

// `$1` → `?1`: SQLite's numbered parameters. The SQL text is ours and holds no `$` in
// literals.
std::string ToSqlitePlaceholders(std::string_view sql) {
  std::string out;
  out.reserve(sql.size());
  for (size_t i = 0; i < sql.size(); ++i) {
    if (sql[i] == '$' && i + 1 < sql.size() && sql[i + 1] >= '0' && sql[i + 1] <= '9') {
      out += '?';
    } else {
      out += sql[i];
    }
  }
  return out;
}

class SqliteBackend;

class SqliteTransaction final : public sql::Transaction {
 public:
  explicit SqliteTransaction(SqliteBackend& backend) : backend_(backend) {}
  // Transact holds the backend's mutex while the body runs on this thread.
  absl::StatusOr<sql::Result> Exec(std::string_view sql, std::span<const sql::Param> params)
      override ABSL_NO_THREAD_SAFETY_ANALYSIS;
  absl::Status ExecScript(std::string_view sql) override ABSL_NO_THREAD_SAFETY_ANALYSIS;

 private:
  SqliteBackend& backend_;
};

class SqliteBackend final : public sql::Backend {
 public:
  SqliteBackend(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}

  ~SqliteBackend() override {
    absl::MutexLock lock(&mu_);
    for (auto& [sql, stmt] : statements_) sqlite3_finalize(stmt);
    sqlite3_close_v2(db_);
  }

  sql::Dialect dialect() const override { return sql::Dialect::kSqlite; }
  std::string description() const override { return "sqlite:" + path_; }

  absl::Status Transact(sql::TxnMode mode,
                        const std::function<absl::Status(sql::Transaction&)>& body) override {
    absl::MutexLock lock(&mu_);
    // IMMEDIATE takes the write lock up front (waiting up to the busy timeout), so two
    // writers never deadlock upgrading read locks.
    TP_RETURN_IF_ERROR(RunLocked(mode == sql::TxnMode::kWrite ? "BEGIN IMMEDIATE" : "BEGIN"));
    SqliteTransaction txn(*this);
    absl::Status status = body(txn);
    if (status.ok()) status = RunLocked("COMMIT");
    if (!status.ok() && !sqlite3_get_autocommit(db_)) {
      (void)RunLocked("ROLLBACK");  // the original error is the one worth reporting
    }
    return status;
  }

  absl::StatusOr<sql::Result> ExecLocked(std::string_view sql, std::span<const sql::Param> params)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    TP_ASSIGN_OR_RETURN(sqlite3_stmt * stmt, Prepare(sql));
    // Leave the statement reset (no open read cursor) whatever happens below.
    struct Reset {
      sqlite3_stmt* s;
      ~Reset() {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
      }
    } reset{stmt};
    if (sqlite3_bind_parameter_count(stmt) != static_cast<int>(params.size())) {
      return absl::InternalError(fmt::format("statement takes {} parameters, {} given: {}",
                                             sqlite3_bind_parameter_count(stmt), params.size(),
                                             sql));
    }
    for (size_t i = 0; i < params.size(); ++i) {
      const int index = static_cast<int>(i) + 1;
      int rc = SQLITE_OK;
      if (const int64_t* v = params[i].as_int()) {
        rc = sqlite3_bind_int64(stmt, index, *v);
      } else if (const std::string* t = params[i].as_text()) {
        rc = sqlite3_bind_text64(stmt, index, t->data(), t->size(), SQLITE_TRANSIENT, SQLITE_UTF8);
      } else {
        rc = sqlite3_bind_null(stmt, index);
      }
      if (rc != SQLITE_OK) return SqliteError(db_, rc, "bind");
    }
    sql::Result result;
    const int columns = sqlite3_column_count(stmt);
    while (true) {
      const int rc = sqlite3_step(stmt);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) return SqliteError(db_, rc, "step");
      auto& row = result.rows.emplace_back();
      row.reserve(columns);
      for (int c = 0; c < columns; ++c) {
        if (sqlite3_column_type(stmt, c) == SQLITE_NULL) {
          row.emplace_back(std::nullopt);
        } else {
          const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, c));
          row.emplace_back(std::string(text != nullptr ? text : "", sqlite3_column_bytes(stmt, c)));
        }
      }
    }
    result.affected = sqlite3_changes64(db_);
    return result;
  }

  absl::Status RunLocked(std::string_view sql) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const std::string text(sql);
    char* error = nullptr;
    const int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &error);
    sqlite3_free(error);  // SqliteError reads the message from the connection
    if (rc != SQLITE_OK) return SqliteError(db_, rc, "exec");
    return absl::OkStatus();
  }

  absl::Mutex mu_;

 private:
  absl::StatusOr<sqlite3_stmt*> Prepare(std::string_view sql) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::string key(sql);
    if (auto it = statements_.find(key); it != statements_.end()) return it->second;
    const std::string text = ToSqlitePlaceholders(sql);
    sqlite3_stmt* stmt = nullptr;
    const int rc = sqlite3_prepare_v3(db_, text.c_str(), static_cast<int>(text.size()),
                                      SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) return SqliteError(db_, rc, fmt::format("prepare '{}'", sql));
    statements_.emplace(std::move(key), stmt);
    return stmt;
  }

  sqlite3* const db_;
  const std::string path_;
  std::unordered_map<std::string, sqlite3_stmt*> statements_ ABSL_GUARDED_BY(mu_);
};

absl::StatusOr<sql::Result> SqliteTransaction::Exec(std::string_view sql,
                                                    std::span<const sql::Param> params) {
  return backend_.ExecLocked(sql, params);
}

absl::Status SqliteTransaction::ExecScript(std::string_view sql) { return backend_.RunLocked(sql); }

absl::StatusOr<std::unique_ptr<SqliteBackend>> Connect(const std::string& path,
                                                       const StoreOptions& options) {
  if (path.empty()) return absl::InvalidArgumentError("SQLite store needs a file path");
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    absl::Status status = SqliteError(db, rc, fmt::format("open {}", path));
    sqlite3_close_v2(db);
    return status;
  }
  // The file holds key digests and the audit log: owner only (WAL files inherit the mode).
  ::chmod(path.c_str(), 0600);
  auto backend = std::make_unique<SqliteBackend>(db, path);
  sqlite3_busy_timeout(db, static_cast<int>(absl::ToInt64Milliseconds(options.busy_timeout)));
  sqlite3_extended_result_codes(db, 1);
  absl::MutexLock lock(&backend->mu_);
  // WAL: readers and the writer do not block each other; FULL: a commit survives power
  // loss; foreign keys are off by default in SQLite.
  TP_RETURN_IF_ERROR(backend->RunLocked("PRAGMA journal_mode = WAL"));
  TP_RETURN_IF_ERROR(backend->RunLocked("PRAGMA synchronous = FULL"));
  TP_RETURN_IF_ERROR(backend->RunLocked("PRAGMA foreign_keys = ON"));
  TP_ASSIGN_OR_RETURN(sql::Result mode, backend->ExecLocked("PRAGMA journal_mode", {}));
  if (mode.rows.empty() || mode.rows[0].empty() || mode.rows[0][0] != "wal") {
    return absl::FailedPreconditionError(fmt::format("sqlite: {} cannot use WAL journaling", path));
  }
  return backend;
}

}  // namespace

absl::StatusOr<std::unique_ptr<sql::Backend>> OpenSqliteBackend(const std::string& path,
                                                                const StoreOptions& options) {
  TP_ASSIGN_OR_RETURN(std::unique_ptr<SqliteBackend> backend, Connect(path, options));
  return std::unique_ptr<sql::Backend>(std::move(backend));
}

absl::StatusOr<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path,
                                                       const StoreOptions& options) {
  TP_ASSIGN_OR_RETURN(std::unique_ptr<sql::Backend> backend, OpenSqliteBackend(path, options));
  return SqlStore::Open(std::move(backend), "sqlite", options);
}

}  // namespace triplane::control
