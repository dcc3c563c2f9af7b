#pragma once

// Settings of the control plane process (`triplane control`): where its state lives and
// where the admin API listens.

#include <cstdint>
#include <string>

#include "absl/status/status.h"

namespace triplane::control {

struct ControlOptions {
  std::string data_dir = "./triplane-data";  // store, model files and logs live here
  std::string store = "sqlite";              // sqlite | sqlite:PATH | postgres://...
  std::string host = "127.0.0.1";            // address the admin API listens on
  uint16_t port = 8090;                      // 0 picks a free port

  // OK when every field is usable; otherwise InvalidArgument naming the first bad field.
  // The store must be one ValidateStoreUrl accepts. Does not create or check data_dir,
  // nor connect to the store.
  [[nodiscard]] absl::Status Validate() const;
};

}  // namespace triplane::control
