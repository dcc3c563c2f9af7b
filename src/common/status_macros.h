#pragma once

// Early-return helpers for absl::Status / absl::StatusOr, in the style of the
// macros used across Google's C++ code bases.

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define TP_STATUS_CONCAT_INNER_(a, b) a##b
#define TP_STATUS_CONCAT_(a, b) TP_STATUS_CONCAT_INNER_(a, b)

// Evaluates `expr` (an absl::Status) and returns it from the enclosing function if not OK.
#define TP_RETURN_IF_ERROR(expr)                  \
  do {                                            \
    ::absl::Status tp_status_ = (expr);           \
    if (!tp_status_.ok()) return tp_status_;      \
  } while (false)

// `TP_ASSIGN_OR_RETURN(auto x, Fn());` evaluates Fn() (an absl::StatusOr<T>); on error
// returns its status, otherwise moves the value into the declaration `lhs`.
#define TP_ASSIGN_OR_RETURN(lhs, expr) \
  TP_ASSIGN_OR_RETURN_IMPL_(TP_STATUS_CONCAT_(tp_statusor_, __LINE__), lhs, expr)

#define TP_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return std::move(tmp).status();  \
  lhs = std::move(tmp).value()
