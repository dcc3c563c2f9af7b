#include "engine/kernels/cpu/quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "engine/kernels/cpu/fp16.h"
#include "engine/kernels/cpu/matmul.h"
#include "engine/kernels/cpu/quant_internal.h"
#include "fmt/format.h"

namespace triplane::engine::cpu {
namespace {

using internal::NearestInt;

int64_t BlockElements(GgmlType type) {
  switch (type) {
    case GgmlType::kQ8_0:
    case GgmlType::kQ4_0:
      return 32;
    case GgmlType::kQ4_K:
    case GgmlType::kQ6_K:
    case GgmlType::kQ8_K:
      return kQK_K;
    default:
      return 1;
  }
}

int64_t BlockBytes(GgmlType type) {
  switch (type) {
    case GgmlType::kF32:
      return 4;
    case GgmlType::kF16:
      return 2;
    case GgmlType::kBF16:
      return 2;
    case GgmlType::kQ8_0:
      return sizeof(BlockQ8_0);
    case GgmlType::kQ4_0:
      return sizeof(BlockQ4_0);
    case GgmlType::kQ4_K:
      return sizeof(BlockQ4_K);
    case GgmlType::kQ6_K:
      return sizeof(BlockQ6_K);
    case GgmlType::kQ8_K:
      return sizeof(BlockQ8_K);
    default:
      return 0;
  }
}

absl::Status CheckRow(GgmlType type, int64_t n) {
  if (!IsCpuTensorType(type)) {
    return absl::InvalidArgumentError(
        fmt::format("ggml type {} has no CPU kernels", static_cast<uint32_t>(type)));
  }
  if (n < 0 || n % BlockElements(type) != 0) {
    return absl::InvalidArgumentError(
        fmt::format("row of {} elements is not a multiple of the block size {} of ggml type {}", n,
                    BlockElements(type), static_cast<uint32_t>(type)));
  }
  return absl::OkStatus();
}

// ggml's quantize_row_q8_0_ref: d = amax / 127 (stored as fp16), q = round(x / d) with
// ties away from zero, multiplying by the float inverse of the unrounded d.
void QuantizeQ8_0(const float* x, BlockQ8_0* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK8_0; ++b, x += kQK8_0) {
    float amax = 0.0f;
    for (int j = 0; j < kQK8_0; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = Fp32ToFp16(d);
    for (int j = 0; j < kQK8_0; ++j) y[b].qs[j] = static_cast<int8_t>(std::roundf(x[j] * id));
  }
}

// ggml's quantize_row_q4_0_ref: the signed value of largest magnitude maps to -8, so
// d = max / -8 and q = min(15, trunc(x / d + 8.5)).
void QuantizeQ4_0(const float* x, BlockQ4_0* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK4_0; ++b, x += kQK4_0) {
    float amax = 0.0f;
    float max = 0.0f;
    for (int j = 0; j < kQK4_0; ++j) {
      if (amax < std::fabs(x[j])) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = Fp32ToFp16(d);
    for (int j = 0; j < kQK4_0 / 2; ++j) {
      const int lo = std::min(15, static_cast<int>(static_cast<int8_t>(x[j] * id + 8.5f)));
      const int hi = std::min(15, static_cast<int>(static_cast<int8_t>(x[j + 16] * id + 8.5f)));
      y[b].qs[j] = static_cast<uint8_t>(lo | (hi << 4));
    }
  }
}

// ggml's quantize_row_q8_K_ref: the signed extreme maps to -127 (iscale = -127 / max),
// d = 1 / iscale in float, q = nearest(iscale * x) clamped to 127, plus sums per 16.
}  // namespace

namespace internal {

void QuantizeQ8_K(const float* x, BlockQ8_K* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK_K; ++b, x += kQK_K) {
    float amax = 0.0f;
    float max = 0.0f;
    for (int j = 0; j < kQK_K; ++j) {
      if (std::fabs(x[j]) > amax) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    if (amax == 0.0f) {
      std::memset(&y[b], 0, sizeof(BlockQ8_K));
      continue;
    }
    const float iscale = -127.0f / max;
    for (int j = 0; j < kQK_K; ++j) {
      y[b].qs[j] = static_cast<int8_t>(std::min(127, NearestInt(iscale * x[j])));
    }
    for (int g = 0; g < kQK_K / 16; ++g) {
      int sum = 0;
      for (int j = 0; j < 16; ++j) sum += y[b].qs[16 * g + j];
      y[b].bsums[g] = static_cast<int16_t>(sum);
    }
    y[b].d = 1.0f / iscale;
  }
}

// llama.cpp's x86 quantize_row_q8_0 (AVX path): multiplier 127 / amax (not 1 / d) and
// round half to even; only the fp16 scale is rounded.
void QuantizeActivationsQ8_0(const float* x, BlockQ8_0* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK8_0; ++b, x += kQK8_0) {
    float amax = 0.0f;
    for (int j = 0; j < kQK8_0; ++j) amax = std::max(amax, std::fabs(x[j]));
    y[b].d = Fp32ToFp16(amax / 127.0f);
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    for (int j = 0; j < kQK8_0; ++j) {
      y[b].qs[j] = static_cast<int8_t>(std::clamp(NearestInt(x[j] * id), -128, 127));
    }
  }
}

}  // namespace internal

bool IsCpuWeightType(GgmlType type) {
  switch (type) {
    case GgmlType::kF32:
    case GgmlType::kF16:
    case GgmlType::kBF16:
    case GgmlType::kQ8_0:
    case GgmlType::kQ4_0:
    case GgmlType::kQ4_K:
    case GgmlType::kQ6_K:
      return true;
    default:
      return false;
  }
}

bool IsCpuTensorType(GgmlType type) { return IsCpuWeightType(type) || type == GgmlType::kQ8_K; }

GgmlType ActivationType(GgmlType weight_type) {
  switch (weight_type) {
    case GgmlType::kQ8_0:
    case GgmlType::kQ4_0:
      return GgmlType::kQ8_0;
    case GgmlType::kQ4_K:
    case GgmlType::kQ6_K:
      return GgmlType::kQ8_K;
    default:
      return weight_type;
  }
}

int64_t RowBytes(GgmlType type, int64_t n) { return n / BlockElements(type) * BlockBytes(type); }

absl::Status QuantizeRow(GgmlType type, const float* src, void* dst, int64_t n) {
  if (absl::Status s = CheckRow(type, n); !s.ok()) return s;
  switch (type) {
    case GgmlType::kF32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      break;
    case GgmlType::kF16:
      for (int64_t i = 0; i < n; ++i) static_cast<uint16_t*>(dst)[i] = Fp32ToFp16(src[i]);
      break;
    case GgmlType::kBF16:
      for (int64_t i = 0; i < n; ++i) static_cast<uint16_t*>(dst)[i] = Fp32ToBf16(src[i]);
      break;
    case GgmlType::kQ8_0:
      QuantizeQ8_0(src, static_cast<BlockQ8_0*>(dst), n);
      break;
    case GgmlType::kQ4_0:
      QuantizeQ4_0(src, static_cast<BlockQ4_0*>(dst), n);
      break;
    case GgmlType::kQ8_K:
      internal::QuantizeQ8_K(src, static_cast<BlockQ8_K*>(dst), n);
      break;
    case GgmlType::kQ4_K:
      internal::QuantizeRowQ4K(src, dst, n);
      break;
    case GgmlType::kQ6_K:
      internal::QuantizeRowQ6K(src, dst, n);
      break;
    default:
      break;
  }
  return absl::OkStatus();
}

absl::Status DequantizeRow(GgmlType type, const void* src, float* dst, int64_t n) {
  if (absl::Status s = CheckRow(type, n); !s.ok()) return s;
  switch (type) {
    case GgmlType::kF32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      break;
    case GgmlType::kF16:
      for (int64_t i = 0; i < n; ++i) dst[i] = Fp16ToFp32(static_cast<const uint16_t*>(src)[i]);
      break;
    case GgmlType::kBF16:
      for (int64_t i = 0; i < n; ++i) dst[i] = Bf16ToFp32(static_cast<const uint16_t*>(src)[i]);
      break;
    case GgmlType::kQ8_0: {
      const auto* x = static_cast<const BlockQ8_0*>(src);
      for (int64_t b = 0; b < n / kQK8_0; ++b) {
        const float d = Fp16ToFp32(x[b].d);
        for (int j = 0; j < kQK8_0; ++j) dst[b * kQK8_0 + j] = x[b].qs[j] * d;
      }
      break;
    }
    case GgmlType::kQ4_0: {
      const auto* x = static_cast<const BlockQ4_0*>(src);
      for (int64_t b = 0; b < n / kQK4_0; ++b) {
        const float d = Fp16ToFp32(x[b].d);
        for (int j = 0; j < kQK4_0 / 2; ++j) {
          dst[b * kQK4_0 + j] = ((x[b].qs[j] & 0x0F) - 8) * d;
          dst[b * kQK4_0 + j + 16] = ((x[b].qs[j] >> 4) - 8) * d;
        }
      }
      break;
    }
    case GgmlType::kQ8_K: {
      const auto* x = static_cast<const BlockQ8_K*>(src);
      for (int64_t b = 0; b < n / kQK_K; ++b) {
        for (int j = 0; j < kQK_K; ++j) dst[b * kQK_K + j] = x[b].d * x[b].qs[j];
      }
      break;
    }
    case GgmlType::kQ4_K:
      internal::DequantizeRowQ4K(src, dst, n);
      break;
    case GgmlType::kQ6_K:
      internal::DequantizeRowQ6K(src, dst, n);
      break;
    default:
      break;
  }
  return absl::OkStatus();
}

void QuantizeActivations(GgmlType weight_type, const float* x, int64_t n, void* dst) {
  switch (weight_type) {
    case GgmlType::kQ8_0:
    case GgmlType::kQ4_0:
      internal::QuantizeActivationsFast(weight_type, x, n, dst);
      break;
    case GgmlType::kQ4_K:
    case GgmlType::kQ6_K:
      internal::QuantizeActivationsFast(weight_type, x, n, dst);
      break;
    case GgmlType::kF16:
      ConvertToF16(x, n, static_cast<uint16_t*>(dst));
      break;
    default:
      // F32 / BF16 activations convert exactly like the file quantizer.
      (void)QuantizeRow(weight_type, x, dst, n);
      break;
  }
}

}  // namespace triplane::engine::cpu
