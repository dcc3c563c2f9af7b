#include "control/repository/repository_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "common/sha256.h"
#include "fmt/format.h"
#include "spdlog/spdlog.h"

namespace triplane::control::repository_internal {
namespace {

// Closes the descriptor on every path out of a function.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  // Closes now, reporting the error close(2) may return for delayed writes.
  int Close() {
    const int rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }

 private:
  int fd_;
};

absl::Status WriteError(const std::string& path, int error) {
  if (error == ENOSPC || error == EDQUOT) {
    return absl::ResourceExhaustedError(
        fmt::format("disk full while writing {}: {}", path, std::strerror(error)));
  }
  return absl::InternalError(fmt::format("cannot write {}: {}", path, std::strerror(error)));
}

absl::Status WriteAll(int fd, const char* data, size_t size, const std::string& path) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return WriteError(path, errno);
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::StatusOr<CopiedFile> CopyInto(int in, const std::string& source, int out,
                                    const std::string& temp_path) {
  CopiedFile copied{.temp_path = temp_path};
  common::Sha256 hash;
  std::vector<char> buffer(1 << 20);
  while (true) {
    const ssize_t n = ::read(in, buffer.data(), buffer.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::InvalidArgumentError(
          fmt::format("cannot read {}: {}", source, std::strerror(errno)));
    }
    if (n == 0) break;
    hash.Update(std::string_view(buffer.data(), static_cast<size_t>(n)));
    if (absl::Status s = WriteAll(out, buffer.data(), static_cast<size_t>(n), temp_path); !s.ok())
      return s;
    copied.size_bytes += n;
  }
  if (::fsync(out) != 0) return WriteError(temp_path, errno);
  copied.sha256 = hash.HexDigest();
  return copied;
}

}  // namespace

absl::StatusOr<CopiedFile> CopyAndHash(const std::string& source, const std::string& incoming_dir) {
  Fd in(::open(source.c_str(), O_RDONLY | O_CLOEXEC));
  if (in.get() < 0) {
    return absl::InvalidArgumentError(
        fmt::format("cannot open {}: {}", source, std::strerror(errno)));
  }
  std::string temp_path = fmt::format("{}/{}XXXXXX", incoming_dir, kCopyPrefix);
  Fd out(::mkostemp(temp_path.data(), O_CLOEXEC));
  if (out.get() < 0) return WriteError(temp_path, errno);
  // mkostemp makes the file private (0600); model files are ordinary readable files.
  if (::fchmod(out.get(), 0644) != 0)
    spdlog::warn("cannot chmod {}: {}", temp_path, std::strerror(errno));
  absl::StatusOr<CopiedFile> copied = CopyInto(in.get(), source, out.get(), temp_path);
  if (copied.ok() && out.Close() != 0) copied = WriteError(temp_path, errno);
  if (!copied.ok()) RemoveQuietly(temp_path);
  return copied;
}

absl::Status MoveIntoPlace(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) {
    return absl::InternalError(
        fmt::format("cannot move {} to {}: {}", from, to, std::strerror(errno)));
  }
  const std::string dir = std::filesystem::path(to).parent_path().string();
  Fd dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  // The rename is done; a directory that cannot be synced only weakens crash safety.
  if (dir_fd.get() < 0 || ::fsync(dir_fd.get()) != 0) {
    spdlog::warn("cannot fsync {}: {}", dir, std::strerror(errno));
  }
  return absl::OkStatus();
}

void RemoveQuietly(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove(path, ec);
  if (ec) spdlog::warn("cannot remove {}: {}", path, ec.message());
}

}  // namespace triplane::control::repository_internal
