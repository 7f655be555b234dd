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

// ---- the skinny path: C of a few rows ----

// Columns per strip of the row path: kStrip vectors, as many independent accumulators.
constexpr int kStrip = 8;
// Columns of op(B) per pass of the dot path (each with two accumulators).
constexpr int kDots = 4;

// c[0, n) = alpha * acc + beta * c, lanes [0, cols) of each vector (c not read if beta == 0).
inline void finish(float* c, vf acc, int cols, float alpha, float beta) {
  vf out = alpha * acc;
  if (cols == kW) {
    if (beta != 0.0f) out = fmadd(splat(beta), load(c), out);
    store(c, out);
  } else {
    if (beta != 0.0f) out = fmadd(splat(beta), load_first(c, cols), out);
    store_first(c, out, cols);
  }
}

// One row of C, B's rows contiguous: c[j] = sum over p of a[p * cs_a] * b[p * rs_b + j], summed
// in order of p, kStrip vectors of columns at a time.
void skinny_row(float* c, const float* a, int64_t cs_a, const float* b, int64_t rs_b, int64_t n,
                int64_t k, float alpha, float beta) {
  int64_t j = 0;
  for (; j + kStrip * kW <= n; j += kStrip * kW) {
    vf acc[kStrip] = {};
    for (int64_t p = 0; p < k; ++p) {
      const vf ap = splat(a[p * cs_a]);
      const float* bp = b + p * rs_b + j;
#pragma GCC unroll 8
      for (int v = 0; v < kStrip; ++v) acc[v] = fmadd(ap, load(bp + v * kW), acc[v]);
    }
#pragma GCC unroll 8
    for (int v = 0; v < kStrip; ++v) finish(c + j + v * kW, acc[v], kW, alpha, beta);
  }
  for (; j < n; j += kW) {
    const int cols = static_cast<int>(min64(kW, n - j));
    vf acc = {};
    for (int64_t p = 0; p < k; ++p) {
      acc = fmadd(splat(a[p * cs_a]), load_first(b + p * rs_b + j, cols), acc);
    }
    finish(c + j, acc, cols, alpha, beta);
  }
}

// D values of one row of C, B's columns contiguous: c[j] = the dot product of a[0, k) and
// b[j * cs_b, + k), in two accumulators of kW lanes, then across the lanes.
template <int D>
void skinny_dots(float* c, const float* a, const float* b, int64_t cs_b, int64_t k, float alpha,
                 float beta) {
  vf acc[D][2] = {};
  int64_t p = 0;
  for (; p + 2 * kW <= k; p += 2 * kW) {
    const vf a0 = load(a + p), a1 = load(a + p + kW);
#pragma GCC unroll 4
    for (int d = 0; d < D; ++d) {
      const float* bd = b + d * cs_b + p;
      acc[d][0] = fmadd(a0, load(bd), acc[d][0]);
      acc[d][1] = fmadd(a1, load(bd + kW), acc[d][1]);
    }
  }
  for (; p < k; p += kW) {
    const int cols = static_cast<int>(min64(kW, k - p));
    const vf a0 = load_first(a + p, cols);
#pragma GCC unroll 4
    for (int d = 0; d < D; ++d) {
      acc[d][0] = fmadd(a0, load_first(b + d * cs_b + p, cols), acc[d][0]);
    }
  }
#pragma GCC unroll 4
  for (int d = 0; d < D; ++d) {
    float out = alpha * reduce_add(acc[d][0] + acc[d][1]);
    if (beta != 0.0f) out += beta * c[d];
    c[d] = out;
  }
}

// c (m, n) with row stride ldc = alpha * op(A) @ op(B) + beta * c for C of a few rows, one row at
// a time with A and B read in place (see gemm.cpp for when): an MR x NR tile would spend most
// of its multiply-adds on rows that are not there, and packing B would copy all of it for a
// few rows' use. Two cases: cs_b == 1, B's rows contiguous (skinny_row); or rs_b == 1 and
// cs_a == 1, B's columns and A's rows contiguous (skinny_dots). Each c value is summed in an
// order fixed by k alone.
void skinny(float* c, int64_t ldc, const float* a, int64_t rs_a, int64_t cs_a, const float* b,
            int64_t rs_b, int64_t cs_b, int64_t m, int64_t n, int64_t k, float alpha,
            float beta) {
  for (int64_t i = 0; i < m; ++i) {
    const float* ai = a + i * rs_a;
    float* ci = c + i * ldc;
    if (cs_b == 1) {
      skinny_row(ci, ai, cs_a, b, rs_b, n, k, alpha, beta);
      continue;
    }
    int64_t j = 0;
    for (; j + kDots <= n; j += kDots) {
      skinny_dots<kDots>(ci + j, ai, b + j * cs_b, cs_b, k, alpha, beta);
    }
    for (; j < n; ++j) skinny_dots<1>(ci + j, ai, b + j * cs_b, cs_b, k, alpha, beta);
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
    skinny,
};

}  // namespace

const GemmKernel& gemm_kernels() { return kKernel; }

}  // namespace fastdl::cpu::FASTDL_ISA
