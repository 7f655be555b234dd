// GEMM bodies, compiled once per ISA (see dispatch.h): packing, the macro-kernel over packed
// blocks, and the unpacked path for small products, all on the micro-kernel of gemm_ukernel.h.
// gemm.cpp holds the blocking loops and the threads and calls the active ISA's table.
//
// Shapes: op(A) is (M, K), op(B) is (K, N), C is (M, N), row-major (see gemm.h).
// Variants (kernel name = ISA and register tile, with its blocking; the AVX-512 blocking is
// sized for a Zen 5 core, 48 KiB L1d / 1 MiB L2, the AVX2 one was tuned on a Zen core with
// 32 KiB L1d / 512 KiB L2):
//   portable_6x8    baseline  MC 144, KC 320, NC 3072
//   avx2_6x16       avx2      MC 120, KC 256, NC 4096
//   avx512_14x32    avx512    MC 252, KC 384, NC 6144
// KC keeps a kc x NR panel of B in L1 while the ir loop streams MR x kc panels of A; MC x KC
// of A stays in L2; KC x NC of B in L3. On a Zen 4 core (32 KiB L1d, 1 MiB L2) the AVX-512
// build runs faster with KC 384 than 256 although its 48 KiB B panel then lives in L2: fewer
// passes over C (each reads and writes the whole C block) matter more. n = 1024-2048, one
// thread: 88-95 -> 95-103 GFLOP/s with prefetch_tile_l2 (FMA peak 117).
// Tests: tests/test_kernels_gemm.py, tests/test_kernels_simd.py (every ISA). Bench: bench/ (gemm).
#include "cpu/gemm.h"
#include "cpu/gemm_ukernel.h"

namespace fastdl::cpu::FASTDL_ISA {

namespace {

#if defined(FASTDL_ISA_AVX512)
constexpr const char* kName = "avx512_14x32";
constexpr int64_t kMC = 252, kKC = 384, kNC = 6144;
#elif defined(FASTDL_ISA_AVX2)
constexpr const char* kName = "avx2_6x16";
constexpr int64_t kMC = 120, kKC = 256, kNC = 4096;
#else
constexpr const char* kName = "portable_6x8";
constexpr int64_t kMC = 144, kKC = 320, kNC = 3072;
#endif

// ---- packing ----

// dst is a kc x W panel (dst[p * W + i]); lane i < count reads src[i * ld + p], the rest are 0.
template <int W>
void pack_panel_rows(float* __restrict dst, const float* __restrict src, int64_t ld,
                     int64_t count, int64_t kc) {
  if (count == W) {
    for (int64_t p = 0; p < kc; ++p) {
#pragma GCC unroll 32
      for (int i = 0; i < W; ++i) dst[p * W + i] = src[i * ld + p];
    }
    return;
  }
  for (int64_t p = 0; p < kc; ++p) {
    for (int64_t i = 0; i < count; ++i) dst[p * W + i] = src[i * ld + p];
    for (int64_t i = count; i < W; ++i) dst[p * W + i] = 0.0f;
  }
}

// dst is a kc x W panel (dst[p * W + i]); lane i < count reads src[p * ld + i], the rest are 0.
template <int W>
void pack_panel_cols(float* __restrict dst, const float* __restrict src, int64_t ld,
                     int64_t count, int64_t kc) {
  if (count == W && W % kW == 0) {
    for (int64_t p = 0; p < kc; ++p) {
#pragma GCC unroll 4
      for (int v = 0; v < W / kW; ++v) store(dst + p * W + v * kW, load(src + p * ld + v * kW));
    }
    return;
  }
  for (int64_t p = 0; p < kc; ++p) {
    for (int64_t i = 0; i < count; ++i) dst[p * W + i] = src[p * ld + i];
    for (int64_t i = count; i < W; ++i) dst[p * W + i] = 0.0f;
  }
}

// ---- the macro-kernel: every MR x NR tile of one packed block ----

// c is an (m, n) block of C with row stride ldc; a holds ceil(m / MR) packed MR x kc panels,
// b ceil(n / NR) packed kc x NR panels. c = alpha * a @ b + beta * c.
void macro_kernel(float* c, int64_t ldc, const float* a, const float* b, int64_t m, int64_t n,
                  int64_t kc, float alpha, float beta) {
  const auto off = [](int64_t p) { return p * kMR; };
  for (int64_t jr = 0; jr < n; jr += kNR) {
    const float* bp = b + (jr / kNR) * kc * kNR;
    for (int64_t ir = 0; ir < m; ir += kMR) {
      const float* ap = a + (ir / kMR) * kc * kMR;
      const float* rows[kMR];
      for (int i = 0; i < kMR; ++i) rows[i] = ap + i;
      Acc acc;
      zero(acc);
      prefetch_tile_l2(c + ir * ldc + jr, ldc, min64(kMR, m - ir));
      ukernel(acc, rows, off, bp, kNR, kc);
      store_tile(c + ir * ldc + jr, ldc, acc, min64(kMR, m - ir), min64(kNR, n - jr), alpha,
                 beta);
    }
  }
}

// ---- the unpacked path for small products ----

// c (m, n) with row stride ldc = alpha * op(A) @ op(B) + beta * c, where op(A)[i][p] is
// a[i * rs_a + p * cs_a] and op(B)[p][j] is b[p * rs_b + j * cs_b] (cs_b == 1 or rs_b == 1).
// A is read in place (rows past m in an edge tile repeat row m - 1, whose results are not
// stored); B is packed one kc x NR panel at a time into b_buf (KC * NR floats): kc * NR copies
// against the m * kc * NR multiply-adds that use the panel. K is split into the same balanced
// kc blocks as the packed path.
void direct(float* c, int64_t ldc, const float* a, int64_t rs_a, int64_t cs_a, const float* b,
            int64_t rs_b, int64_t cs_b, int64_t m, int64_t n, int64_t k, float alpha, float beta,
            float* b_buf) {
  const int64_t kc_max = ceil_div(k, ceil_div(k, kKC));
  const auto off = [cs_a](int64_t p) { return p * cs_a; };
  for (int64_t pc = 0; pc < k; pc += kc_max) {
    const int64_t kc = min64(kc_max, k - pc);
    const float beta_pc = pc == 0 ? beta : 1.0f;
    for (int64_t jr = 0; jr < n; jr += kNR) {
      const int64_t nr = min64(kNR, n - jr);
      // pack_b: one kc x NR panel, reused by every row tile. Reading B in place would cost
      // nothing to set up, but its rows ldb apart alias in L1 when ldb is a power of two.
      const float* src = b + pc * rs_b + jr * cs_b;
      if (cs_b != 1) {
        pack_panel_rows<kNR>(b_buf, src, cs_b, nr, kc);
      } else {
        pack_panel_cols<kNR>(b_buf, src, rs_b, nr, kc);
      }
      for (int64_t ir = 0; ir < m; ir += kMR) {
        const int64_t mr = min64(kMR, m - ir);
        const float* rows[kMR];
        for (int i = 0; i < kMR; ++i) rows[i] = a + (ir + min64(i, mr - 1)) * rs_a + pc * cs_a;
        Acc acc;
        zero(acc);
        ukernel(acc, rows, off, b_buf, kNR, kc);
        store_tile(c + ir * ldc + jr, ldc, acc, mr, nr, alpha, beta_pc);
      }
    }
  }
}

constexpr GemmKernel kKernel = {
    kName,
    kMR,
    kNR,
    kMC,
    kKC,
    kNC,
    pack_panel_rows<kMR>,
    pack_panel_cols<kMR>,
    pack_panel_rows<kNR>,
    pack_panel_cols<kNR>,
    macro_kernel,
    direct,
};

}  // namespace

const GemmKernel& gemm_kernels() { return kKernel; }

}  // namespace fastdl::cpu::FASTDL_ISA
