#pragma once

// File handling of the model repository (repository.cc): copying a file into
// MODELS_DIR/.incoming/ while hashing it, and moving verified files into their
// content-addressed place. Private to src/control/repository.

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace triplane::control::repository_internal {

// Where partial copies and downloads live, inside the models dir (same file system, so
// that moving a finished file into place is a rename).
inline constexpr const char* kIncomingDir = ".incoming";
// Prefix of AddFromPath's temporary copies in kIncomingDir (pulls use other names).
inline constexpr const char* kCopyPrefix = "copy-";

struct CopiedFile {
  std::string temp_path;  // in `incoming_dir`; the caller moves or removes it
  std::string sha256;     // lowercase hex
  int64_t size_bytes = 0;
};

// Copies `source` to a new temporary file in `incoming_dir`, hashing the bytes as they
// pass, and fsyncs it. InvalidArgument when `source` cannot be opened or read,
// ResourceExhausted when the disk is full, Internal for other write errors; on any
// error the temporary file is removed.
[[nodiscard]] absl::StatusOr<CopiedFile> CopyAndHash(const std::string& source,
                                                     const std::string& incoming_dir);

// Renames `from` to `to` (same file system) and fsyncs `to`'s directory so that the new
// name survives a crash.
[[nodiscard]] absl::Status MoveIntoPlace(const std::string& from, const std::string& to);

// Removes `path`, logging (not failing) when that is impossible: callers use it to clean
// up after another error or after the store already forgot the file.
void RemoveQuietly(const std::string& path);

}  // namespace triplane::control::repository_internal
