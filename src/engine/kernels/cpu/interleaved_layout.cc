// The interleaved layout (interleaved.h): packing, unpacking, activation summaries and
// the portable kernel.

#include <cmath>
#include <cstring>

#include "engine/kernels/cpu/fp16.h"
#include "engine/kernels/cpu/interleaved.h"
#include "engine/kernels/cpu/interleaved_internal.h"
#include "engine/kernels/cpu/quant.h"

namespace triplane::engine::cpu {

namespace {

using internal::kGroupBlockQ4_0;
using internal::kGroupBlockQ4_K;
using internal::kGroupBlockQ8_0;
using internal::kQ4KDmin;
using internal::kQ4KQuants;
using internal::kQ4KScalePlanes;

constexpr int64_t R = kInterleaveRows;

// Copies one block of one row between GGUF's layout (`raw`) and its place in a group
// block (`group`, lane r). kToGroup picks the direction.
template <bool kToGroup>
void MoveBlock(GgmlType type, uint8_t* raw, uint8_t* group, int64_t r) {
  auto move = [](uint8_t* a, uint8_t* b, size_t n) {  // a: raw side, b: group side
    if (kToGroup) {
      std::memcpy(b, a, n);
    } else {
      std::memcpy(a, b, n);
    }
  };
  switch (type) {
    case GgmlType::kQ4_0: {
      auto* blk = reinterpret_cast<BlockQ4_0*>(raw);
      move(reinterpret_cast<uint8_t*>(&blk->d), group + 2 * r, 2);
      for (int s = 0; s < 4; ++s) move(blk->qs + 4 * s, group + 32 + 64 * s + 4 * r, 4);
      break;
    }
    case GgmlType::kQ8_0: {
      auto* blk = reinterpret_cast<BlockQ8_0*>(raw);
      move(reinterpret_cast<uint8_t*>(&blk->d), group + 2 * r, 2);
      for (int k = 0; k < 8; ++k) {
        auto* q = reinterpret_cast<uint8_t*>(blk->qs + 4 * k);
        uint8_t* g = group + 32 + 64 * k + 4 * r;
        for (int i = 0; i < 4; ++i) {
          if (kToGroup) {
            g[i] = q[i] ^ 0x80;
          } else {
            q[i] = g[i] ^ 0x80;
          }
        }
      }
      break;
    }
    case GgmlType::kQ4_K: {
      auto* blk = reinterpret_cast<BlockQ4_K*>(raw);
      move(reinterpret_cast<uint8_t*>(&blk->d), group + 2 * r, 2);
      move(reinterpret_cast<uint8_t*>(&blk->dmin), group + kQ4KDmin + 2 * r, 2);
      for (int p = 0; p < 12; ++p) move(blk->scales + p, group + kQ4KScalePlanes + 16 * p + r, 1);
      for (int v = 0; v < 32; ++v) move(blk->qs + 4 * v, group + kQ4KQuants + 64 * v + 4 * r, 4);
      break;
    }
    default:
      break;
  }
}

int64_t GroupBlockBytes(GgmlType type) {
  switch (type) {
    case GgmlType::kQ4_0:
      return kGroupBlockQ4_0;
    case GgmlType::kQ8_0:
      return kGroupBlockQ8_0;
    case GgmlType::kQ4_K:
      return kGroupBlockQ4_K;
    default:
      return 0;
  }
}

int64_t BlockElems(GgmlType type) { return type == GgmlType::kQ4_K ? kQK_K : kQK8_0; }

int32_t Load32(const void* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// One group of 16 rows against one activation row, lane by lane, as the SIMD kernels.
void GroupScalar(GgmlType type, const uint8_t* g, int64_t blocks, const uint8_t* act,
                 const internal::ActBlockQ8_0* info8, const internal::ActBlockQ8_K* infok,
                 float out[R]) {
  for (int64_t r = 0; r < R; ++r) {
    float acc = 0.0f, acc_min = 0.0f;
    for (int64_t b = 0; b < blocks; ++b) {
      if (type == GgmlType::kQ4_K) {
        const uint8_t* p = g + b * kGroupBlockQ4_K;
        const auto& y = reinterpret_cast<const BlockQ8_K*>(act)[b];
        uint8_t scales[12];
        for (int i = 0; i < 12; ++i) scales[i] = p[kQ4KScalePlanes + 16 * i + r];
        int32_t total = 0, mins = 0;
        for (int s = 0; s < 8; ++s) {
          uint8_t sc, m;
          GetScaleMinK4(s, scales, &sc, &m);
          int32_t sum = 0;
          for (int k = 0; k < 8; ++k) {
            const uint8_t* w = p + kQ4KQuants + 64 * (8 * (s / 2) + k) + 4 * r;
            for (int i = 0; i < 4; ++i) {
              const int q = (s & 1) ? w[i] >> 4 : w[i] & 0xF;
              sum += q * y.qs[32 * s + 4 * k + i];
            }
          }
          total += sc * sum;
          const int16_t* pair = reinterpret_cast<const int16_t*>(&infok[b].sub_sum_pairs[s / 2]);
          mins += m * pair[s & 1];
        }
        uint16_t d, dmin;
        std::memcpy(&d, p + 2 * r, 2);
        std::memcpy(&dmin, p + kQ4KDmin + 2 * r, 2);
        acc = std::fma(Fp16ToFp32(d) * infok[b].d, static_cast<float>(total), acc);
        acc_min = std::fma(Fp16ToFp32(dmin) * infok[b].d, static_cast<float>(mins), acc_min);
        continue;
      }
      const bool q4 = type == GgmlType::kQ4_0;
      const uint8_t* p = g + b * (q4 ? kGroupBlockQ4_0 : kGroupBlockQ8_0);
      const auto* a = reinterpret_cast<const BlockQ8_0*>(act)[b].qs;
      int32_t sum = info8[b].correction;
      if (q4) {
        for (int s = 0; s < 4; ++s) {
          for (int i = 0; i < 4; ++i) {
            const uint8_t w = p[32 + 64 * s + 4 * r + i];
            sum += (w & 0xF) * a[4 * s + i] + (w >> 4) * a[16 + 4 * s + i];
          }
        }
      } else {
        for (int k = 0; k < 8; ++k) {
          for (int i = 0; i < 4; ++i) sum += p[32 + 64 * k + 4 * r + i] * a[4 * k + i];
        }
      }
      uint16_t d;
      std::memcpy(&d, p + 2 * r, 2);
      acc = std::fma(Fp16ToFp32(d) * info8[b].d, static_cast<float>(sum), acc);
    }
    out[r] = acc - acc_min;
  }
}

}  // namespace

bool CanInterleave(GgmlType type, int64_t rows, int64_t cols) {
  const int64_t block_bytes = GroupBlockBytes(type);
  return block_bytes > 0 && rows > 0 && rows % R == 0 && cols > 0 && cols % BlockElems(type) == 0;
}

void InterleaveRows(GgmlType type, const void* src, int64_t /*rows*/, int64_t cols, void* dst,
                    int64_t group_begin, int64_t group_end) {
  const int64_t blocks = cols / BlockElems(type);
  const int64_t row_bytes = RowBytes(type, cols);
  const int64_t block_bytes = row_bytes / blocks;
  const int64_t group_block = GroupBlockBytes(type);
  for (int64_t g = group_begin; g < group_end; ++g) {
    auto* group = static_cast<uint8_t*>(dst) + g * R * row_bytes;
    for (int64_t r = 0; r < R; ++r) {
      // MoveBlock<true> only reads the raw side.
      auto* row = const_cast<uint8_t*>(static_cast<const uint8_t*>(src) + (g * R + r) * row_bytes);
      for (int64_t b = 0; b < blocks; ++b) {
        MoveBlock<true>(type, row + b * block_bytes, group + b * group_block, r);
      }
    }
  }
}

void DeinterleaveRow(GgmlType type, const void* packed, int64_t cols, int64_t row, void* dst) {
  const int64_t blocks = cols / BlockElems(type);
  const int64_t row_bytes = RowBytes(type, cols);
  const int64_t block_bytes = row_bytes / blocks;
  // MoveBlock<false> only reads the group side.
  auto* group = const_cast<uint8_t*>(static_cast<const uint8_t*>(packed) + row / R * R * row_bytes);
  for (int64_t b = 0; b < blocks; ++b) {
    MoveBlock<false>(type, static_cast<uint8_t*>(dst) + b * block_bytes,
                     group + b * GroupBlockBytes(type), row % R);
  }
}

namespace internal {

int64_t SummarizeActsQ8_0(GgmlType type, const uint8_t* acts, int64_t n_act, int64_t stride,
                          int64_t cols, std::vector<ActBlockQ8_0>& out) {
  const int64_t blocks = cols / kQK8_0;
  const int32_t bias = CorrectionBias(type);
  out.resize(static_cast<size_t>(n_act * blocks));
  for (int64_t a = 0; a < n_act; ++a) {
    const auto* y = reinterpret_cast<const BlockQ8_0*>(acts + a * stride);
    for (int64_t b = 0; b < blocks; ++b) {
      int32_t sum = 0;
      for (int i = 0; i < kQK8_0; ++i) sum += y[b].qs[i];
      out[static_cast<size_t>(a * blocks + b)] = {Fp16ToFp32(y[b].d), bias * sum};
    }
  }
  return blocks;
}

int64_t SummarizeActsQ8_K(const uint8_t* acts, int64_t n_act, int64_t stride, int64_t cols,
                          std::vector<ActBlockQ8_K>& out) {
  const int64_t blocks = cols / kQK_K;
  out.resize(static_cast<size_t>(n_act * blocks));
  for (int64_t a = 0; a < n_act; ++a) {
    const auto* y = reinterpret_cast<const BlockQ8_K*>(acts + a * stride);
    for (int64_t b = 0; b < blocks; ++b) {
      ActBlockQ8_K& s = out[static_cast<size_t>(a * blocks + b)];
      s.d = y[b].d;
      for (int t = 0; t < 4; ++t) {
        const int16_t pair[2] = {
            static_cast<int16_t>(y[b].bsums[4 * t] + y[b].bsums[4 * t + 1]),
            static_cast<int16_t>(y[b].bsums[4 * t + 2] + y[b].bsums[4 * t + 3])};
        s.sub_sum_pairs[t] = Load32(pair);
      }
    }
  }
  return blocks;
}

void MatMulInterleavedScalar(GgmlType type, const uint8_t* packed, int64_t cols,
                             const uint8_t* acts, int64_t n_act, int64_t stride, float* out,
                             int64_t out_stride, int64_t row_begin, int64_t row_end) {
  std::vector<ActBlockQ8_0> info8;
  std::vector<ActBlockQ8_K> infok;
  const int64_t blocks = type == GgmlType::kQ4_K
                             ? SummarizeActsQ8_K(acts, n_act, stride, cols, infok)
                             : SummarizeActsQ8_0(type, acts, n_act, stride, cols, info8);
  const int64_t group_bytes = R * RowBytes(type, cols);
  for (int64_t g = row_begin / R; g < row_end / R; ++g) {
    for (int64_t a = 0; a < n_act; ++a) {
      GroupScalar(type, packed + g * group_bytes, blocks, acts + a * stride,
                  info8.empty() ? nullptr : &info8[static_cast<size_t>(a * blocks)],
                  infok.empty() ? nullptr : &infok[static_cast<size_t>(a * blocks)],
                  out + a * out_stride + g * R);
    }
  }
}

}  // namespace internal

}  // namespace triplane::engine::cpu
