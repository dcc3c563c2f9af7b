#pragma once

// Keys and values of one sequence, contiguous, in f16 (the precision llama.cpp keeps by
// default). Keys are [layers][capacity][kv_dim]; values are stored transposed,
// [layers][kv_dim][v_stride], so that attention's weighted sum over positions is one
// contiguous dot product per value dimension. v_stride is the capacity rounded up to
// kVPad positions, zero-filled past what is written, so that attention can run every
// value row to a multiple of kVPad (see ForwardPass::Attention). The serving runtime
// replaces this with a paged cache.

#include <cstdint>
#include <vector>

#include "engine/model/model_config.h"

namespace triplane::engine {

class KvCache {
 public:
  KvCache(const ModelConfig& config, int64_t capacity)
      : layers_(config.layers),
        kv_dim_(config.kv_dim()),
        capacity_(capacity),
        v_stride_((capacity + kVPad - 1) / kVPad * kVPad),
        k_(static_cast<size_t>(layers_ * capacity_ * kv_dim_)),
        v_(static_cast<size_t>(layers_ * kv_dim_ * v_stride_)) {}

  static constexpr int64_t kVPad = 64;

  int64_t capacity() const { return capacity_; }
  int64_t size() const { return size_; }      // positions filled
  void Truncate(int64_t n) { size_ = n < size_ ? n : size_; }
  void set_size(int64_t n) { size_ = n; }     // REQUIRES: n <= capacity()

  // Key row of layer `layer` at position `pos`: kv_dim f16 values.
  uint16_t* K(int64_t layer, int64_t pos) { return &k_[Index(layer, pos)]; }
  const uint16_t* K(int64_t layer, int64_t pos) const { return &k_[Index(layer, pos)]; }
  // Value dimension `dim` of layer `layer` over all positions: v_stride() f16 values.
  uint16_t* Vt(int64_t layer, int64_t dim) { return &v_[IndexT(layer, dim)]; }
  const uint16_t* Vt(int64_t layer, int64_t dim) const { return &v_[IndexT(layer, dim)]; }

  int64_t v_stride() const { return v_stride_; }

  uint64_t bytes() const { return (k_.size() + v_.size()) * sizeof(uint16_t); }

 private:
  size_t Index(int64_t layer, int64_t pos) const {
    return static_cast<size_t>((layer * capacity_ + pos) * kv_dim_);
  }
  size_t IndexT(int64_t layer, int64_t dim) const {
    return static_cast<size_t>((layer * kv_dim_ + dim) * v_stride_);
  }
  int64_t layers_;
  int64_t kv_dim_;
  int64_t capacity_;
  int64_t v_stride_;
  int64_t size_ = 0;
  std::vector<uint16_t> k_;
  std::vector<uint16_t> v_;
};

}  // namespace triplane::engine
