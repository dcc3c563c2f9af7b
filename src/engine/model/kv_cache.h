#pragma once

// Keys and values in f16 (the precision llama.cpp keeps by default), paged: every layer's
// cache is an array of blocks of kBlockTokens positions, and a sequence owns a block
// table mapping its positions to blocks (position p lives in blocks[p / kBlockTokens] at
// slot p % kBlockTokens). Blocks can be shared between sequences with a common prefix.

#include <cstdint>
#include <span>
#include <vector>

#include "engine/model/model_config.h"

namespace triplane::engine {

inline constexpr int64_t kBlockTokens = 16;  // positions per KV cache block

class PagedKvCache {
 public:
  PagedKvCache(const ModelConfig& config, int64_t num_blocks)
      : layers_(config.layers),
        kv_dim_(config.kv_dim()),
        num_blocks_(num_blocks),
        k_(static_cast<size_t>(layers_ * num_blocks_ * kBlockTokens * kv_dim_)),
        v_(k_.size()) {}

  // Bytes one block takes over all layers, keys and values.
  static int64_t BytesPerBlock(const ModelConfig& config) {
    return config.layers * kBlockTokens * config.kv_dim() * 2 * static_cast<int64_t>(sizeof(uint16_t));
  }

  int64_t num_blocks() const { return num_blocks_; }
  int64_t kv_dim() const { return kv_dim_; }

  // Keys of `layer` in `block`, transposed: [kv_dim][kBlockTokens] f16 (a head's scores
  // for the block's 16 positions are then 16 vector lanes). Values, head by head:
  // [kv_heads][kBlockTokens][head_dim]. Either way one head's part of a block is one
  // contiguous run of kBlockTokens * head_dim values, which the hardware prefetcher
  // streams when attention walks a head's blocks.
  uint16_t* K(int64_t layer, int64_t block) { return &k_[Index(layer, block)]; }
  const uint16_t* K(int64_t layer, int64_t block) const { return &k_[Index(layer, block)]; }
  uint16_t* V(int64_t layer, int64_t block) { return &v_[Index(layer, block)]; }
  const uint16_t* V(int64_t layer, int64_t block) const { return &v_[Index(layer, block)]; }

  uint64_t bytes() const { return (k_.size() + v_.size()) * sizeof(uint16_t); }

 private:
  size_t Index(int64_t layer, int64_t block) const {
    return static_cast<size_t>((layer * num_blocks_ + block) * kBlockTokens * kv_dim_);
  }
  int64_t layers_;
  int64_t kv_dim_;
  int64_t num_blocks_;
  std::vector<uint16_t> k_;
  std::vector<uint16_t> v_;
};

// One sequence's cache: its own pages, blocks in order (generate, benchmarks, tests).
class KvCache {
 public:
  KvCache(const ModelConfig& config, int64_t capacity)
      : capacity_(capacity), pages_(config, (capacity + kBlockTokens - 1) / kBlockTokens) {
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
