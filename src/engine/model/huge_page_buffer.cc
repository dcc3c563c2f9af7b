#include "engine/model/huge_page_buffer.h"

#include <sys/mman.h>

#include <cstdint>
#include <cstring>
#include <utility>

namespace triplane::engine {

namespace {
constexpr size_t kHugePage = size_t{2} << 20;
}  // namespace

HugePageBuffer::HugePageBuffer(size_t bytes, bool populate) {
  if (bytes == 0) return;
  const size_t keep = (bytes + kHugePage - 1) / kHugePage * kHugePage;
  // Map one huge page more, then trim to a 2 MiB boundary so that every page can be huge.
  void* raw = ::mmap(nullptr, keep + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return;
  const auto addr = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = (addr + kHugePage - 1) & ~(uintptr_t{kHugePage} - 1);
  if (aligned > addr) ::munmap(raw, aligned - addr);
  const size_t tail = kHugePage - (aligned - addr);
  if (tail > 0) ::munmap(reinterpret_cast<void*>(aligned + keep), tail);
  data_ = reinterpret_cast<std::byte*>(aligned);
  size_ = keep;
  ::madvise(data_, size_, MADV_HUGEPAGE);
  if (populate) {
    // Fault every page in now; the kernel zeroes them (older kernels: touch them here).
#ifdef MADV_POPULATE_WRITE
    if (::madvise(data_, size_, MADV_POPULATE_WRITE) == 0) return;
#endif
    std::memset(data_, 0, size_);
  }
}

HugePageBuffer::~HugePageBuffer() {
  if (data_ != nullptr) ::munmap(data_, size_);
}

HugePageBuffer::HugePageBuffer(HugePageBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

HugePageBuffer& HugePageBuffer::operator=(HugePageBuffer&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) ::munmap(data_, size_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

}  // namespace triplane::engine
