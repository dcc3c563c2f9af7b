#include "control/store/sql_backend.h"

#include <charconv>

#include "fmt/format.h"

namespace triplane::control::sql {

const std::optional<std::string>* RowReader::Field(size_t i) {
  if (i >= row_.size()) {
    if (status_.ok()) status_ = absl::InternalError(fmt::format("result row has no column {}", i));
    return nullptr;
  }
  return &row_[i];
}

std::optional<int64_t> RowReader::OptionalInt(size_t i) {
  const std::optional<std::string>* field = Field(i);
  if (field == nullptr || !field->has_value()) return std::nullopt;
  const std::string& text = **field;
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) {
    if (status_.ok())
      status_ = absl::InternalError(fmt::format("column {} is not an integer: '{}'", i, text));
    return std::nullopt;
  }
  return value;
}

int64_t RowReader::Int(size_t i) {
  std::optional<int64_t> value = OptionalInt(i);
  if (!value.has_value() && status_.ok())
    status_ = absl::InternalError(fmt::format("column {} is NULL", i));
  return value.value_or(0);
}

std::optional<std::string> RowReader::OptionalText(size_t i) {
  const std::optional<std::string>* field = Field(i);
  if (field == nullptr) return std::nullopt;
  return *field;
}

std::string RowReader::Text(size_t i) {
  std::optional<std::string> value = OptionalText(i);
  if (!value.has_value() && status_.ok())
    status_ = absl::InternalError(fmt::format("column {} is NULL", i));
  return value.value_or("");
}

}  // namespace triplane::control::sql
