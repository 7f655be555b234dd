// The GEMM register-tile micro-kernel, for the per-ISA kernel bodies (gemm_kernels.cpp and
// conv2d_kernels.cpp, which runs its implicit GEMM on it).
//
// One source for every ISA: the template `ukernel` below, compiled into each ISA's namespace
// (there are no per-ISA function names; GemmKernel::name, e.g. "avx2_6x16", names the build and
// tile). An MR x NR tile of C is held in MR * NV vector registers (NR = NV * kW floats), each
// step p broadcasting MR values of A and multiplying them by one row of B:
//   baseline  "portable_6x8"  kW = 4,  MR = 6,  NV = 2  (12 SSE2 accumulators of 16)
//   avx2      "avx2_6x16"     kW = 8,  MR = 6,  NV = 2  (12 ymm accumulators of 16)
//   avx512    "avx512_14x32"  kW = 16, MR = 14, NV = 2  (28 zmm accumulators of 32)
// Each keeps 2 registers for the B row and 1 for the broadcast; the accumulators hide the FMA
// latency (4-5 cycles x 2 pipes needs >= 8-10 independent chains).
// A is read through row pointers and a per-step offset, which covers a packed panel (offset
// p * MR), a matrix read in place (p * cs) and the implicit im2col of conv2d (a table of offsets
// into the padded image). B is always a panel of rows rs_b floats apart, NR contiguous floats
// each (packed, or read in place).
// Tests: tests/test_kernels_gemm.py, tests/test_kernels_conv2d.py, tests/test_kernels_simd.py.
#pragma once

#include "cpu/simd.h"

namespace fastdl::cpu::FASTDL_ISA {

#if defined(FASTDL_ISA_AVX512)
constexpr int kMR = 14, kNV = 2;
#else
constexpr int kMR = 6, kNV = 2;
#endif
constexpr int kNR = kNV * kW;

using Acc = vf[kMR][kNV];

// acc[i][v] += sum over p < kc of rows[i][off(p)] * b[p * rs_b + v * kW ...]: the MR x NR tile.
// off(p) gives the offset of step p in every row of A (the same for all rows). MR is kMR but for
// callers with a shorter tile (conv2d's weight gradient).
template <int MR, typename Off>
inline void ukernel(vf (&acc)[MR][kNV], const float* const (&rows)[MR], Off off, const float* b,
                    int64_t rs_b, int64_t kc) {
#pragma GCC unroll 2
  for (int64_t p = 0; p < kc; ++p) {
    const int64_t o = off(p);
    const float* bp = b + p * rs_b;
    vf bv[kNV];
#pragma GCC unroll 4
    for (int v = 0; v < kNV; ++v) bv[v] = load(bp + v * kW);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const vf ai = splat(rows[i][o]);
#pragma GCC unroll 4
      for (int v = 0; v < kNV; ++v) acc[i][v] = fmadd(ai, bv[v], acc[i][v]);
    }
  }
}

// Asks for the m rows of an MR x NR tile of C (row stride ldc) to be brought into L2 while the
// micro-kernel runs, so the store's read of C does not wait on L3 or memory: a power-of-two ldc
// puts every row in the same L1 set, hence L2, not L1.
inline void prefetch_tile_l2(const float* c, int64_t ldc, int64_t m) {
  for (int64_t i = 0; i < m; ++i) {
    __builtin_prefetch(c + i * ldc, 0, 2);
    __builtin_prefetch(c + i * ldc + kNR - 1, 0, 2);
  }
}

inline void zero(Acc& acc) {
#pragma GCC unroll 16
  for (int i = 0; i < kMR; ++i) {
#pragma GCC unroll 4
    for (int v = 0; v < kNV; ++v) acc[i][v] = vf{};
  }
}

// c (m, n) <= (MR, NR) with row stride ldc: c = alpha * acc + beta * c (c not read if beta == 0).
inline void store_tile(float* c, int64_t ldc, const Acc& acc, int64_t m, int64_t n, float alpha,
                       float beta) {
  if (m == kMR && n == kNR) {
#pragma GCC unroll 16
    for (int i = 0; i < kMR; ++i) {
#pragma GCC unroll 4
      for (int v = 0; v < kNV; ++v) {
        float* cp = c + i * ldc + v * kW;
        vf out = alpha * acc[i][v];
        if (beta != 0.0f) out = fmadd(splat(beta), load(cp), out);
        store(cp, out);
      }
    }
    return;
  }
  for (int64_t i = 0; i < m; ++i) {
    for (int v = 0; v < kNV; ++v) {
      const int cols = static_cast<int>(max64(0, min64(kW, n - v * kW)));
      if (cols == 0) break;
      float* cp = c + i * ldc + v * kW;
      vf out = alpha * acc[i][v];
      if (beta != 0.0f) out = fmadd(splat(beta), load_first(cp, cols), out);
      store_first(cp, out, cols);
    }
  }
}

}  // namespace fastdl::cpu::FASTDL_ISA
