#pragma once

// A zero-filled anonymous mapping that starts on a 2 MiB boundary and asks the kernel for
// transparent huge pages (MADV_HUGEPAGE, which the common `madvise` THP setting needs).
// For the large arrays the forward pass walks every step -- the weights and the paged KV
// cache -- where 4 KiB pages would cost a TLB miss on almost every block touched.

#include <cstddef>

namespace triplane::engine {

class HugePageBuffer {
 public:
  HugePageBuffer() = default;
  // Maps `bytes` (rounded up to whole huge pages); empty() when the mapping fails.
  // With `populate`, every page is touched now, so the memory is committed up front (an
  // out-of-memory shows at startup, not in the middle of serving).
  explicit HugePageBuffer(size_t bytes, bool populate = false);
  ~HugePageBuffer();

  HugePageBuffer(HugePageBuffer&& other) noexcept;
  HugePageBuffer& operator=(HugePageBuffer&& other) noexcept;
  HugePageBuffer(const HugePageBuffer&) = delete;
  HugePageBuffer& operator=(const HugePageBuffer&) = delete;

  bool empty() const { return data_ == nullptr; }
  std::byte* data() const { return data_; }
  size_t size() const { return size_; }  // the mapped bytes: requested, rounded up

 private:
  std::byte* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace triplane::engine
