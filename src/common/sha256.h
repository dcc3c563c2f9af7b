#pragma once

// SHA-256 (OpenSSL), incremental or one-shot, as lowercase hex.

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace triplane::common {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(std::string_view data);
  // The digest of everything updated so far, as 64 lowercase hex digits. Call once.
  std::string HexDigest();

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

std::string Sha256Hex(std::string_view data);

// The SHA-256 of a file's contents, read in 1 MiB pieces. NotFound / Internal on I/O errors.
absl::StatusOr<std::string> Sha256OfFile(const std::string& path);

}  // namespace triplane::common
