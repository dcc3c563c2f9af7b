#pragma once

// Keys and values, paged: every layer's cache is an array of blocks of kBlockTokens
// positions, and a sequence owns a block table mapping its positions to blocks (position
// p lives in blocks[p / kBlockTokens] at slot p % kBlockTokens). Blocks can be shared
// between sequences with a common prefix. Entries are f16 (the precision llama.cpp
// keeps by default) or, with KvType::kQ8_0, int8 with one float scale per position and
// head (engine/kernels/cpu/kv_q8.h): 53 % of the bytes, so twice the tokens fit and
// attention over a long context reads half as much memory.

#include <cstdint>
#include <new>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/kernels/cpu/kv_q8.h"
#include "engine/model/huge_page_buffer.h"
#include "engine/model/model_config.h"

namespace triplane::engine {

inline constexpr int64_t kBlockTokens = 16;  // positions per KV cache block

enum class KvType { kF16, kQ8_0 };

inline std::string_view KvTypeName(KvType type) { return type == KvType::kQ8_0 ? "q8_0" : "f16"; }
inline std::optional<KvType> ParseKvType(std::string_view name) {
  if (name == "f16") return KvType::kF16;
  if (name == "q8_0") return KvType::kQ8_0;
  return std::nullopt;
}

// OK when a cache of `type` can hold this model's heads (an 8-bit one needs a head size
// that is a multiple of 4, up to the kernels' longest); InvalidArgument otherwise.
inline absl::Status CheckKvType(const ModelConfig& config, KvType type) {
  if (type == KvType::kQ8_0 && (config.head_dim % 4 != 0 || config.head_dim > cpu::kMaxHeadDimQ8)) {
    return absl::InvalidArgumentError(absl::StrCat("an 8-bit KV cache needs a head size that is a multiple of 4 up to ",
                                                   cpu::kMaxHeadDimQ8, "; this model's is ", config.head_dim));
  }
  return absl::OkStatus();
}

class PagedKvCache {
 public:
  PagedKvCache(const ModelConfig& config, int64_t num_blocks, KvType type = KvType::kF16)
      : type_(type), layers_(config.layers), kv_heads_(config.kv_heads), kv_dim_(config.kv_dim()),
        num_blocks_(num_blocks) {
    const auto entries = static_cast<size_t>(layers_ * num_blocks_ * kBlockTokens * kv_dim_);
    const auto scales = static_cast<size_t>(layers_ * num_blocks_ * kBlockTokens * kv_heads_);
    // One huge-page mapping for all the arrays (attention touches a new block at every
    // 2 KiB; with 4 KiB pages nearly every one is a TLB miss), each array 64-byte aligned,
    // committed now; allocated() is false when the memory cannot be had.
    const size_t entry_bytes = type == KvType::kF16 ? sizeof(uint16_t) : 1;
    const size_t array_bytes = Align(entries * entry_bytes);
    const size_t scale_bytes = type == KvType::kF16 ? 0 : Align(scales * sizeof(float));
    storage_ = HugePageBuffer(2 * (array_bytes + scale_bytes), /*populate=*/true);
    if (storage_.empty()) return;
    std::byte* p = storage_.data();
    if (type == KvType::kF16) {
      k_ = reinterpret_cast<uint16_t*>(p);
      v_ = reinterpret_cast<uint16_t*>(p + array_bytes);
    } else {
      k8_ = reinterpret_cast<uint8_t*>(p);
      v8_ = reinterpret_cast<int8_t*>(p + array_bytes);
      k_scale_ = reinterpret_cast<float*>(p + 2 * array_bytes);
      v_scale_ = reinterpret_cast<float*>(p + 2 * array_bytes + scale_bytes);
    }
    bytes_ = 2 * (entries * entry_bytes + (type == KvType::kF16 ? 0 : scales * sizeof(float)));
  }

  // Bytes one block takes over all layers, keys and values.
  static int64_t BytesPerBlock(const ModelConfig& config, KvType type = KvType::kF16) {
    if (type == KvType::kQ8_0) {
      return config.layers * kBlockTokens * 2 * (config.kv_dim() + config.kv_heads * static_cast<int64_t>(sizeof(float)));
    }
    return config.layers * kBlockTokens * config.kv_dim() * 2 * static_cast<int64_t>(sizeof(uint16_t));
  }

  bool allocated() const { return !storage_.empty(); }
  KvType type() const { return type_; }
  int64_t num_blocks() const { return num_blocks_; }
  int64_t kv_dim() const { return kv_dim_; }

  // f16 (type() == kF16). Keys of `layer` in `block`, transposed: [kv_dim][kBlockTokens]
  // (a head's scores for the block's 16 positions are then 16 vector lanes). Values, head
  // by head: [kv_heads][kBlockTokens][head_dim]. Either way one head's part of a block is
  // one contiguous run of kBlockTokens * head_dim values, which the hardware prefetcher
  // streams when attention walks a head's blocks.
  uint16_t* K(int64_t layer, int64_t block) { return &k_[Index(layer, block)]; }
  const uint16_t* K(int64_t layer, int64_t block) const { return &k_[Index(layer, block)]; }
  uint16_t* V(int64_t layer, int64_t block) { return &v_[Index(layer, block)]; }
  const uint16_t* V(int64_t layer, int64_t block) const { return &v_[Index(layer, block)]; }

  // q8_0 (type() == kQ8_0), head by head in the layout of cpu/kv_q8.h: keys
  // [kv_heads][head_dim / 4][kBlockTokens][4] (int8 + 128), values
  // [kv_heads][kBlockTokens][head_dim]; scales [kv_heads][kBlockTokens].
  uint8_t* KQ8(int64_t layer, int64_t block) { return &k8_[Index(layer, block)]; }
  int8_t* VQ8(int64_t layer, int64_t block) { return &v8_[Index(layer, block)]; }
  float* KScales(int64_t layer, int64_t block) { return &k_scale_[ScaleIndex(layer, block)]; }
  float* VScales(int64_t layer, int64_t block) { return &v_scale_[ScaleIndex(layer, block)]; }

  uint64_t bytes() const { return bytes_; }  // of keys, values and scales

 private:
  size_t Index(int64_t layer, int64_t block) const {
    return static_cast<size_t>((layer * num_blocks_ + block) * kBlockTokens * kv_dim_);
  }
  size_t ScaleIndex(int64_t layer, int64_t block) const {
    return static_cast<size_t>((layer * num_blocks_ + block) * kBlockTokens * kv_heads_);
  }
  static size_t Align(size_t bytes) { return (bytes + 63) / 64 * 64; }

  KvType type_;
  int64_t layers_;
  int64_t kv_heads_;
  int64_t kv_dim_;
  int64_t num_blocks_;
  HugePageBuffer storage_;
  uint64_t bytes_ = 0;
  uint16_t* k_ = nullptr;  // f16
  uint16_t* v_ = nullptr;
  uint8_t* k8_ = nullptr;  // q8_0
  int8_t* v8_ = nullptr;
  float* k_scale_ = nullptr;
  float* v_scale_ = nullptr;
};

// One sequence's cache: its own pages, blocks in order (generate, benchmarks, tests).
class KvCache {
 public:
  KvCache(const ModelConfig& config, int64_t capacity, KvType type = KvType::kF16)
      : capacity_(capacity), pages_(config, (capacity + kBlockTokens - 1) / kBlockTokens, type) {
    if (!pages_.allocated()) throw std::bad_alloc();
    for (int32_t b = 0; b < pages_.num_blocks(); ++b) blocks_.push_back(b);
  }

  int64_t capacity() const { return capacity_; }
  int64_t size() const { return size_; }  // positions filled
  void Truncate(int64_t n) { size_ = n < size_ ? n : size_; }
  void set_size(int64_t n) { size_ = n; }  // REQUIRES: n <= capacity()

  PagedKvCache& pages() { return pages_; }
  std::span<const int32_t> blocks() const { return blocks_; }
  uint64_t bytes() const { return pages_.bytes(); }

 private:
  int64_t capacity_;
  int64_t size_ = 0;
  PagedKvCache pages_;
  std::vector<int32_t> blocks_;
};

}  // namespace triplane::engine
