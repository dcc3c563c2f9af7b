#pragma once

// The little the store needs from a SQL database, so that its logic (sql_store.cc) is
// written once for SQLite and PostgreSQL. Statements use PostgreSQL's `$1, $2, …`
// placeholders on both back ends (the SQLite back end maps them to `?1, ?2, …`) and are
// always prepared with bound parameters: values never become part of the SQL text.
// Internal to control/store (and its tests, which use it as a raw SQL connection).

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace triplane::control::sql {

enum class Dialect { kSqlite, kPostgres };

// One bound parameter: NULL, a 64-bit integer or text. (Plain members rather than a
// std::variant, which trips GCC 12's -Wmaybe-uninitialized in initializer lists.)
class Param {
 public:
  Param(std::nullptr_t) {}  // NOLINT: implicit, for brace lists of parameters
  Param(int64_t v) : kind_(Kind::kInt), int_(v) {}               // NOLINT
  Param(int32_t v) : kind_(Kind::kInt), int_(v) {}               // NOLINT
  Param(std::string_view v) : kind_(Kind::kText), text_(v) {}    // NOLINT
  Param(const std::string& v) : kind_(Kind::kText), text_(v) {}  // NOLINT
  Param(const char* v) : kind_(Kind::kText), text_(v) {}         // NOLINT
  Param(std::optional<int64_t> v) {                              // NOLINT
    if (v.has_value()) {
      kind_ = Kind::kInt;
      int_ = *v;
    }
  }

  bool is_null() const { return kind_ == Kind::kNull; }
  const int64_t* as_int() const { return kind_ == Kind::kInt ? &int_ : nullptr; }
  const std::string* as_text() const { return kind_ == Kind::kText ? &text_ : nullptr; }

 private:
  enum class Kind { kNull, kInt, kText };
  Kind kind_ = Kind::kNull;
  int64_t int_ = 0;
  std::string text_;
};

// Rows as text (integers in decimal), NULL as nullopt.
struct Result {
  std::vector<std::vector<std::optional<std::string>>> rows;
  int64_t affected = 0;  // rows changed by INSERT/UPDATE/DELETE
};

// Reads typed fields from one result row; a NULL or malformed field makes status() an
// Internal error (the first one) and yields 0 / "".
class RowReader {
 public:
  explicit RowReader(const std::vector<std::optional<std::string>>& row) : row_(row) {}

  int64_t Int(size_t i);
  std::optional<int64_t> OptionalInt(size_t i);
  std::string Text(size_t i);
  std::optional<std::string> OptionalText(size_t i);
  const absl::Status& status() const { return status_; }

 private:
  const std::optional<std::string>* Field(size_t i);

  const std::vector<std::optional<std::string>>& row_;
  absl::Status status_;
};

// An open transaction. Not thread-safe; lives only inside Backend::Transact.
class Transaction {
 public:
  virtual ~Transaction() = default;
  // Runs one statement. After an error the transaction is unusable: return the error.
  [[nodiscard]] virtual absl::StatusOr<Result> Exec(std::string_view sql,
                                                    std::span<const Param> params) = 0;
  [[nodiscard]] absl::StatusOr<Result> Exec(std::string_view sql,
                                            std::initializer_list<Param> params) {
    return Exec(sql, std::span<const Param>(params.begin(), params.size()));
  }
  // Runs a constant script of several statements without parameters (migrations only).
  [[nodiscard]] virtual absl::Status ExecScript(std::string_view sql) = 0;
};

enum class TxnMode { kRead, kWrite };

class Backend {
 public:
  virtual ~Backend() = default;
  virtual Dialect dialect() const = 0;
  // Safe to log (no password).
  virtual std::string description() const = 0;
  // Runs `body` in a transaction: commits when it returns OK, rolls back otherwise. After
  // a transient failure before the commit (lost connection, serialization failure) the
  // transaction is retried with a fresh connection, so `body` may run more than once: it
  // must act only through `txn` and on state it resets. Thread-safe.
  [[nodiscard]] virtual absl::Status Transact(
      TxnMode mode, const std::function<absl::Status(Transaction& txn)>& body) = 0;
};

}  // namespace triplane::control::sql
