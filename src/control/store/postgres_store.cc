// The only translation unit that includes libpqxx. Every libpqxx exception is caught
// here and becomes an absl::Status.

#include "control/store/postgres_store.h"

#include <poll.h>

#include <exception>
#include <pqxx/pqxx>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/status_macros.h"
#include "control/store/sql_store.h"
#include "fmt/format.h"

namespace triplane::control {
namespace {

// One server connection with the statements prepared on it.
struct Connection {
  std::unique_ptr<pqxx::connection> conn;
  std::unordered_map<std::string, std::string> prepared;  // SQL → statement name
};

// What went wrong in a transaction, beyond its status.
struct Failure {
  bool broken = false;     // the connection is unusable: drop it
  bool retryable = false;  // nothing was committed and running again may succeed
};

// The server's primary message only: its DETAIL line may quote row values.
std::string_view FirstLine(std::string_view text) {
  const size_t end = text.find('\n');
  return end == std::string_view::npos ? text : text.substr(0, end);
}

bool IsConnectionLoss(std::string_view sqlstate) {
  // Class 08: connection exception; 57P01..57P03: the server is shutting down or
  // starting up (admin_shutdown, crash_shutdown, cannot_connect_now).
  return sqlstate.starts_with("08") || sqlstate == "57P01" || sqlstate == "57P02" ||
         sqlstate == "57P03";
}

// Maps a libpqxx exception (rethrown by the caller) to a status and records whether the
// connection is lost and the transaction may be retried. Messages from the server name
// constraints and columns, not parameter values (detail fields are not included).
absl::Status CurrentExceptionToStatus(std::string_view what, Failure& failure) {
  try {
    throw;
  } catch (const pqxx::in_doubt_error& e) {
    failure.broken = true;
    return absl::UnavailableError(fmt::format(
        "postgres: connection lost while committing {}; the change may or may not be stored: {}",
        what, FirstLine(e.what())));
  } catch (const pqxx::broken_connection& e) {
    failure.broken = true;
    failure.retryable = true;
    return absl::UnavailableError(
        fmt::format("postgres: connection lost during {}: {}", what, FirstLine(e.what())));
  } catch (const pqxx::sql_error& e) {
    const std::string& state = e.sqlstate();
    const std::string message =
        fmt::format("postgres: {} failed: {} (SQLSTATE {})", what, FirstLine(e.what()), state);
    if (IsConnectionLoss(state)) {
      failure.broken = true;
      failure.retryable = true;
      return absl::UnavailableError(message);
    }
    if (state == "40001" || state == "40P01") {  // serialization failure, deadlock
      failure.retryable = true;
      return absl::AbortedError(message);
    }
    if (state == "23505") return absl::AlreadyExistsError(message);
    if (state == "23503") return absl::FailedPreconditionError(message);
    if (state.starts_with("23") || state.starts_with("22"))
      return absl::InvalidArgumentError(message);
    if (state == "53100") return absl::ResourceExhaustedError(message);  // disk full
    return absl::InternalError(message);
  } catch (const pqxx::transaction_rollback& e) {
    failure.retryable = true;
    return absl::AbortedError(
        fmt::format("postgres: {} rolled back: {}", what, FirstLine(e.what())));
  } catch (const std::exception& e) {
    return absl::InternalError(fmt::format("postgres: {} failed: {}", what, FirstLine(e.what())));
  } catch (...) {
    return absl::InternalError(fmt::format("postgres: {} failed with an unknown exception", what));
  }
}

template <typename Txn>
class PostgresTransaction final : public sql::Transaction {
 public:
  PostgresTransaction(Connection& connection, Txn& txn, Failure& failure)
      : connection_(connection), txn_(txn), failure_(failure) {}

  absl::StatusOr<sql::Result> Exec(std::string_view sql,
                                   std::span<const sql::Param> params) override {
    try {
      const std::string& name = Prepare(sql);
      // Text parameters; NULL as a null pointer (libpqxx's null for const char*).
      std::vector<std::string> storage;
      storage.reserve(params.size());
      std::vector<const char*> values;
      values.reserve(params.size());
      for (const sql::Param& p : params) {
        if (const int64_t* v = p.as_int()) {
          storage.push_back(std::to_string(*v));
        } else if (const std::string* t = p.as_text()) {
          storage.push_back(*t);
        } else {
          storage.emplace_back();
        }
      }
      for (size_t i = 0; i < params.size(); ++i) {
        values.push_back(params[i].is_null() ? nullptr : storage[i].c_str());
      }
      const pqxx::result r = txn_.exec_prepared(name, pqxx::prepare::make_dynamic_params(values));
      sql::Result result;
      result.affected = static_cast<int64_t>(r.affected_rows());
      result.rows.reserve(r.size());
      for (const auto& row : r) {
        auto& out = result.rows.emplace_back();
        out.reserve(row.size());
        for (const auto& field : row) {
          if (field.is_null()) {
            out.emplace_back(std::nullopt);
          } else {
            out.emplace_back(std::string(field.c_str(), field.size()));
          }
        }
      }
      return result;
    } catch (...) {
      return CurrentExceptionToStatus("statement", failure_);
    }
  }

  absl::Status ExecScript(std::string_view sql) override {
    try {
      txn_.exec(std::string(sql));
      return absl::OkStatus();
    } catch (...) {
      return CurrentExceptionToStatus("script", failure_);
    }
  }

 private:
  // Prepares `sql` once per connection (may throw).
  const std::string& Prepare(std::string_view sql) {
    std::string key(sql);
    auto it = connection_.prepared.find(key);
    if (it != connection_.prepared.end()) return it->second;
    std::string name = fmt::format("tp{}", connection_.prepared.size() + 1);
    connection_.conn->prepare(name, key);
    return connection_.prepared.emplace(std::move(key), std::move(name)).first->second;
  }

  Connection& connection_;
  Txn& txn_;
  Failure& failure_;
};

class PostgresBackend final : public sql::Backend {
 public:
  PostgresBackend(std::string conninfo, std::string description, int pool_size)
      : conninfo_(std::move(conninfo)),
        description_(std::move(description)),
        pool_size_(std::max(1, pool_size)) {}

  sql::Dialect dialect() const override { return sql::Dialect::kPostgres; }
  std::string description() const override { return description_; }

  absl::Status Transact(sql::TxnMode mode,
                        const std::function<absl::Status(sql::Transaction&)>& body) override {
    constexpr int kAttempts = 3;
    absl::Status status;
    for (int attempt = 0; attempt < kAttempts; ++attempt) {
      TP_ASSIGN_OR_RETURN(std::unique_ptr<Connection> connection, Acquire());
      Failure failure;
      // Reads see one snapshot (REPEATABLE READ); writes lock what they change.
      if (mode == sql::TxnMode::kRead) {
        status = RunOnce<pqxx::transaction<pqxx::repeatable_read, pqxx::read_only>>(*connection,
                                                                                    body, failure);
      } else {
        status = RunOnce<pqxx::work>(*connection, body, failure);
      }
      Release(std::move(connection), failure.broken);
      if (status.ok() || !failure.retryable) return status;
    }
    return status;
  }

  // Opens a connection now, so that a bad URL fails at open time.
  absl::Status Check() {
    TP_ASSIGN_OR_RETURN(std::unique_ptr<Connection> connection, Acquire());
    Release(std::move(connection), false);
    return absl::OkStatus();
  }

 private:
  template <typename Txn>
  absl::Status RunOnce(Connection& connection,
                       const std::function<absl::Status(sql::Transaction&)>& body,
                       Failure& failure) {
    try {
      Txn txn(*connection.conn);
      PostgresTransaction<Txn> wrapper(connection, txn, failure);
      absl::Status status = body(wrapper);
      if (!status.ok()) {
        if (!failure.broken) txn.abort();
        return status;
      }
      txn.commit();
      return absl::OkStatus();
    } catch (...) {
      absl::Status status = CurrentExceptionToStatus("transaction", failure);
      if (!connection.conn->is_open()) failure.broken = true;
      return status;
    }
  }

  absl::StatusOr<std::unique_ptr<Connection>> Acquire() {
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](PostgresBackend* self) ABSL_EXCLUSIVE_LOCKS_REQUIRED(self->mu_) {
            return !self->idle_.empty() || self->open_ < self->pool_size_;
          },
          this));
      while (!idle_.empty()) {
        std::unique_ptr<Connection> connection = std::move(idle_.back());
        idle_.pop_back();
        if (LooksAlive(*connection)) return connection;
        --open_;  // dropped (closed when `connection` goes out of scope)
      }
      ++open_;  // reserve the slot while connecting outside the lock
    }
    auto connection = std::make_unique<Connection>();
    try {
      connection->conn = std::make_unique<pqxx::connection>(conninfo_);
      // We replace lost connections ourselves. libpqxx 6's own reactivation re-runs BEGIN
      // on a new socket behind our back and leaks the failed attempt's PGresult.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
      connection->conn->inhibit_reactivation(true);
#pragma GCC diagnostic pop
      return connection;
    } catch (const std::exception& e) {
      absl::MutexLock lock(&mu_);
      --open_;
      return absl::UnavailableError(
          fmt::format("postgres: cannot connect to {}: {}", description_, FirstLine(e.what())));
    }
  }

  // An idle connection has nothing to read unless the server closed it (a restart sends
  // "terminating connection" and hangs up). Checking before use means a restart costs a
  // reconnect instead of a failed statement, and keeps libpqxx 6 off its error path for
  // dead sockets, which leaks the PGresult.
  static bool LooksAlive(const Connection& connection) {
    const int fd = connection.conn->sock();
    if (fd < 0) return false;
    pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
    return ::poll(&p, 1, 0) == 0;
  }

  void Release(std::unique_ptr<Connection> connection, bool broken) {
    std::vector<std::unique_ptr<Connection>> stale;
    {
      absl::MutexLock lock(&mu_);
      if (!broken) {
        idle_.push_back(std::move(connection));
        return;
      }
      // One lost connection usually means the server restarted: the idle ones are gone too.
      stale.swap(idle_);
      open_ -= 1 + static_cast<int>(stale.size());
    }
    // Closed outside the lock; `connection` and `stale` are destroyed here.
  }

  const std::string conninfo_;
  const std::string description_;
  const int pool_size_;
  absl::Mutex mu_;
  std::vector<std::unique_ptr<Connection>> idle_ ABSL_GUARDED_BY(mu_);
  int open_ ABSL_GUARDED_BY(mu_) = 0;  // idle + in use + being opened
};

// Adds connect_timeout (and an application name) unless the URL sets them.
std::string ConnInfo(const std::string& url, const StoreOptions& options) {
  const bool is_uri = url.starts_with("postgres://") || url.starts_with("postgresql://");
  std::string out = url;
  auto add = [&](std::string_view key, std::string_view value) {
    if (out.find(std::string(key) + "=") != std::string::npos) return;
    if (is_uri) {
      out += (out.find('?') == std::string::npos) ? '?' : '&';
    } else {
      out += ' ';
    }
    out += fmt::format("{}={}", key, value);
  };
  add("connect_timeout",
      std::to_string(std::max<int64_t>(1, absl::ToInt64Seconds(options.connect_timeout))));
  add("application_name", "triplane");
  return out;
}

}  // namespace

std::string RedactPostgresUrl(std::string_view url) {
  std::string out(url);
  // URI user info: scheme://user:password@host
  if (size_t scheme = out.find("://"); scheme != std::string::npos) {
    const size_t start = scheme + 3;
    const size_t end = out.find_first_of("/?", start);
    const size_t at = out.rfind('@', end == std::string::npos ? out.size() : end);
    if (at != std::string::npos && at > start) {
      const size_t colon = out.find(':', start);
      if (colon != std::string::npos && colon < at) out.replace(colon + 1, at - colon - 1, "***");
    }
  }
  // password=… in a query string or a key=value string.
  for (size_t pos = out.find("password="); pos != std::string::npos;
       pos = out.find("password=", pos + 1)) {
    const size_t value = pos + 9;
    const size_t end = out.find_first_of("& ", value);
    out.replace(value, (end == std::string::npos ? out.size() : end) - value, "***");
  }
  return out;
}

absl::StatusOr<std::unique_ptr<sql::Backend>> OpenPostgresBackend(const std::string& url,
                                                                  const StoreOptions& options) {
  auto backend = std::make_unique<PostgresBackend>(ConnInfo(url, options), RedactPostgresUrl(url),
                                                   options.pool_size);
  TP_RETURN_IF_ERROR(backend->Check());
  return std::unique_ptr<sql::Backend>(std::move(backend));
}

absl::StatusOr<std::unique_ptr<Store>> OpenPostgresStore(const std::string& url,
                                                         const StoreOptions& options) {
  TP_ASSIGN_OR_RETURN(std::unique_ptr<sql::Backend> backend, OpenPostgresBackend(url, options));
  return SqlStore::Open(std::move(backend), "postgres", options);
}

}  // namespace triplane::control
