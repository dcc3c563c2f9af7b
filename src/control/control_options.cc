#include "control/control_options.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace triplane::control {
namespace {

absl::Status Invalid(absl::string_view field, absl::string_view reason) {
  return absl::InvalidArgumentError(absl::StrCat("control option ", field, ": ", reason));
}

}  // namespace

absl::Status ControlOptions::Validate() const {
  if (data_dir.empty()) return Invalid("data-dir", "must not be empty");
  if (store != "sqlite") {
    return Invalid("store", absl::StrCat("unknown store '", store, "' (supported: sqlite)"));
  }
  if (host.empty()) return Invalid("host", "must not be empty");
  return absl::OkStatus();
}

}  // namespace triplane::control
