// The cache-blocked driver shared by the register-tiled mat-mat kernels, per Highway
// target (gemm_float-inl.h, gemm_q8_0-inl.h, gemm_k_quant-inl.h).
//
// out[a, r] for a tile of 4 weight rows x 4 activation rows comes from one call of the
// kernel's Tile, which holds the 16 accumulators in registers and reads each weight and
// activation vector once per tile. Weight rows are first repacked by the kernel (unpacked
// quants, expanded scales) into a small L1-resident buffer, once per panel of activation
// rows; activation rows are repacked (or used in place) once per panel. The weight matrix
// streams from memory once per panel while the panel stays in L2:
//
//   for each panel of activation rows (about kPanelBytes of them): PackActs
//     for each tile of 4 weight rows: PackWeights
//       for each tile of 4 activation rows of the panel: Tile -> 16 outputs
//
// Batch invariance: every kernel reproduces VecDot's arithmetic on the same target
// exactly -- the same integer lanes, the same float operations per lane, the same
// reduction tree -- so each output is bit-identical to VecDot of its (row, activation)
// pair, whatever the batch size, row range or thread split. (Prefill and decode then
// agree, and activation re-quantization downstream cannot amplify reordering noise.)
//
// A kernel K provides:
//   int64_t ActCacheBytes() const;                        // bytes of one activation row
//   void PackActs(const uint8_t* const rows[], int64_t n);  // panel rows [0, n)
//   void PackWeights(const uint8_t* const rows[4]);          // the tile's weight rows
//   void Tile(const int64_t acts[4], float out[16]);         // out[4i + j]: row i, act j

#if defined(TRIPLANE_ENGINE_KERNELS_CPU_GEMM_TILE_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef TRIPLANE_ENGINE_KERNELS_CPU_GEMM_TILE_INL_H_
#undef TRIPLANE_ENGINE_KERNELS_CPU_GEMM_TILE_INL_H_
#else
#define TRIPLANE_ENGINE_KERNELS_CPU_GEMM_TILE_INL_H_
#endif

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "hwy/aligned_allocator.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace triplane::engine::cpu {
namespace HWY_NAMESPACE {

inline constexpr int64_t kTileRows = 4;  // weight rows per register tile
inline constexpr int64_t kTileActs = 4;  // activation rows per register tile

// Bytes of activations a panel may hold: well inside a 1 MiB L2 next to streaming weights.
inline constexpr int64_t kPanelBytes = 384 * 1024;

// Most activation rows per panel.
inline constexpr int64_t kMaxPanel = 1024;

// A 64-byte aligned per-thread buffer of at least `bytes`, reused across calls (MatMul is
// called from several threads at once, each with its own row range). `slot` (0..2) picks
// one of three independent buffers; contents do not survive another call with that slot.
HWY_INLINE uint8_t* GemmScratch(size_t bytes, int slot) {
  thread_local hwy::AlignedFreeUniquePtr<uint8_t[]> buffers[3];
  thread_local size_t sizes[3] = {0, 0, 0};
  if (sizes[slot] < bytes) {
    buffers[slot] = hwy::AllocateAligned<uint8_t>(bytes);
    sizes[slot] = bytes;
  }
  return buffers[slot].get();
}

#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
// out[t] = the sum of v[t]'s 8 lanes by SumLanes' tree in int8_x86-inl.h (the one
// _mm512_reduce_add_ps continues after adding its 256-bit halves):
// ((v0 + v4) + (v2 + v6)) + ((v1 + v5) + (v3 + v7)). `z[k]` holds v[2k] and v[2k + 1]
// as its 256-bit halves. 21 shuffles and adds for all 16 sums.
HWY_INLINE void SumLanesTree16(const __m512 z[8], float out[16]) {
  __m512 w[4], p[2];
  for (int k = 0; k < 4; ++k) {  // chunk c of w[k]: v[4k + c]'s lanes i + (i + 4)
    w[k] = _mm512_add_ps(_mm512_shuffle_f32x4(z[2 * k], z[2 * k + 1], 0x88),
                         _mm512_shuffle_f32x4(z[2 * k], z[2 * k + 1], 0xDD));
  }
  for (int k = 0; k < 2; ++k) {  // lanes (0 + 2), (1 + 3) of w[2k] and w[2k + 1]
    const __m512d a = _mm512_castps_pd(w[2 * k]), b = _mm512_castps_pd(w[2 * k + 1]);
    p[k] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(a, b)),
                         _mm512_castpd_ps(_mm512_unpackhi_pd(a, b)));
  }
  const __m512 r = _mm512_add_ps(_mm512_shuffle_ps(p[0], p[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                 _mm512_shuffle_ps(p[0], p[1], _MM_SHUFFLE(3, 1, 3, 1)));
  // Lane 4c + m holds v[4m + c]: transpose back.
  const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  _mm512_storeu_ps(out, _mm512_permutexvar_ps(order, r));
}

// Sums of 16 vectors of 8 lanes, each as SumLanes in int8_x86-inl.h.
HWY_INLINE void SumLanes8x16(const __m256 v[16], float out[16]) {
  __m512 z[8];
  for (int k = 0; k < 8; ++k) {
    z[k] = _mm512_insertf32x8(_mm512_castps256_ps512(v[2 * k]), v[2 * k + 1], 1);
  }
  SumLanesTree16(z, out);
}

// Sums of 16 vectors of 16 lanes, each as _mm512_reduce_add_ps (Highway's SumOfLanes):
// the 256-bit halves added first, then SumLanes' tree.
HWY_INLINE void SumLanes16x16(const __m512 v[16], float out[16]) {
  __m512 z[8];
  for (int k = 0; k < 8; ++k) {
    z[k] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * k], v[2 * k + 1], 0x44),
                         _mm512_shuffle_f32x4(v[2 * k], v[2 * k + 1], 0xEE));
  }
  SumLanesTree16(z, out);
}
#endif

// out[a * out_stride + r] = dot(weight row r, activation row a) for r in
// [row_begin, row_end), a in [0, n_act), with kernel K (see the top of this file).
template <class K>
void GemmTiled(K& k, const uint8_t* HWY_RESTRICT w, int64_t row_bytes,
               const uint8_t* HWY_RESTRICT act, int64_t n_act, int64_t act_stride,
               float* HWY_RESTRICT out, int64_t out_stride, int64_t row_begin, int64_t row_end) {
  if (row_begin >= row_end || n_act <= 0) return;
  int64_t panel = kPanelBytes / std::max<int64_t>(k.ActCacheBytes(), 1);
  panel = std::clamp(panel, kTileActs, kMaxPanel) / kTileActs * kTileActs;
  const uint8_t* a_rows[kMaxPanel];
  float tile[kTileRows * kTileActs];
  for (int64_t a0 = 0; a0 < n_act; a0 += panel) {
    const int64_t na = std::min(panel, n_act - a0);
    for (int64_t j = 0; j < na; ++j) a_rows[j] = act + (a0 + j) * act_stride;
    k.PackActs(a_rows, na);
    for (int64_t r0 = row_begin; r0 < row_end; r0 += kTileRows) {
      const int64_t nr = std::min(kTileRows, row_end - r0);
      const uint8_t* w_rows[kTileRows];
      for (int64_t i = 0; i < kTileRows; ++i) {  // a short tile repeats its last row
        w_rows[i] = w + (r0 + std::min(i, nr - 1)) * row_bytes;
      }
      k.PackWeights(w_rows);
      for (int64_t j0 = 0; j0 < na; j0 += kTileActs) {
        const int64_t nj = std::min(kTileActs, na - j0);
        int64_t acts[kTileActs];
        for (int64_t j = 0; j < kTileActs; ++j) acts[j] = j0 + std::min(j, nj - 1);
        k.Tile(acts, tile);
        for (int64_t j = 0; j < nj; ++j) {
          float* o = out + (a0 + j0 + j) * out_stride + r0;
          for (int64_t i = 0; i < nr; ++i) o[i] = tile[i * kTileActs + j];
        }
      }
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace triplane::engine::cpu
HWY_AFTER_NAMESPACE();

#endif  // TRIPLANE_ENGINE_KERNELS_CPU_GEMM_TILE_INL_H_
