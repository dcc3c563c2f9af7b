#include "control/control_options.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "control/store/store_factory.h"

namespace triplane::control {
namespace {

absl::Status Invalid(absl::string_view field, absl::string_view reason) {
  return absl::InvalidArgumentError(absl::StrCat("control option ", field, ": ", reason));
}

}  // namespace

absl::Status ControlOptions::Validate() const {
  if (data_dir.empty()) return Invalid("data-dir", "must not be empty");
  if (absl::Status status = ValidateStoreUrl(store); !status.ok()) {
    return Invalid("store", status.message());
  }
  if (host.empty()) return Invalid("host", "must not be empty");
  return absl::OkStatus();
}

}  // namespace triplane::control
