// GEMM: C = alpha * op(A) @ op(B) + beta * C, float32, row-major, all four transpose cases.
//
// Shapes: op(A) is (M, K), op(B) is (K, N), C is (M, N), with leading dimensions (see gemm.h).
// Structure (BLIS; STYLE.md "GEMM speaks BLIS"):
//   jc over N in steps of NC          B block kc x nc packed once, shared by all workers (L3)
//    pc over K in steps of KC         beta applies on the first pc only, later blocks add
//     ic over M in steps of MC        A block mc x kc packed per worker (L2)
//      jr over nc in steps of NR      one kc x NR micro-panel of B stays in L1 ...
//       ir over mc in steps of MR     ... while the MR x NR micro-kernel streams A panels
// Packed panels are zero-padded to MR / NR, so the micro-kernel always runs a full tile and
// only its store is clipped at the edges of C.
// Threads: one OpenMP team per call; B is packed cooperatively, then workers split the ic loop
// (when M has enough MC blocks) and/or the jr loop. Each C element sums over K in the same order
// whatever the thread count, so results do not depend on it.
// Variants: `ukernel_portable_6x8` (any x86-64 / any ISA: GCC vectorizes the float[MR][NR]
// accumulator over NR and keeps it in registers). SIMD variants plug in through gemm_kernel().
// Tests: tests/test_kernels_gemm.py. Bench: bench/ (gemm).
#include "cpu/gemm.h"

#include <algorithm>
#include <cstdint>

namespace fastdl::cpu {

namespace {

// Below this many multiply-adds a second thread costs more than it saves (fork/join ~ µs).
constexpr double kParallelMinMacs = 1 << 18;
// gemm_batched runs whole matrices per worker when each is at most this many multiply-adds.
constexpr double kBatchPerWorkerMaxMacs = 1 << 24;
// Workspace regions start on 64-byte boundaries (16 floats).
constexpr int64_t kAlignFloats = 16;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

float* align64(float* p) {
  const auto addr = reinterpret_cast<std::uintptr_t>(p);
  return reinterpret_cast<float*>((addr + 63) & ~std::uintptr_t{63});
}

// ---- micro-kernel ----

// c is (m, n) <= (MR, NR) with row stride ldc; a is a packed MR x kc panel, b a packed kc x NR
// panel. The accumulator is a local array that GCC keeps in MR * NR / vector-width registers.
template <int MR, int NR>
void ukernel_portable(float* __restrict c, int64_t ldc, const float* __restrict a,
                      const float* __restrict b, int64_t kc, int64_t m, int64_t n, float alpha,
                      float beta) {
  float acc[MR][NR] = {};
  for (int64_t p = 0; p < kc; ++p) {
    const float* ap = a + p * MR;
    const float* bp = b + p * NR;
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
#pragma omp simd
      for (int j = 0; j < NR; ++j) acc[i][j] += ap[i] * bp[j];
    }
  }
  if (m == MR && n == NR) {
    if (beta == 0.0f) {
#pragma GCC unroll 16
      for (int i = 0; i < MR; ++i) {
#pragma omp simd
        for (int j = 0; j < NR; ++j) c[i * ldc + j] = alpha * acc[i][j];
      }
    } else {
#pragma GCC unroll 16
      for (int i = 0; i < MR; ++i) {
#pragma omp simd
        for (int j = 0; j < NR; ++j) c[i * ldc + j] = alpha * acc[i][j] + beta * c[i * ldc + j];
      }
    }
    return;
  }
  // Edge tile: only the valid part of C is touched.
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      const float old = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
      c[i * ldc + j] = alpha * acc[i][j] + old;
    }
  }
}

// ---- packing ----

// dst is a kc x W panel (dst[p * W + i]); lane i < count reads src[i * ld + p], the rest are 0.
template <int W>
void pack_panel_rows(float* __restrict dst, const float* __restrict src, int64_t ld,
                     int64_t count, int64_t kc) {
  if (count == W) {
    for (int64_t p = 0; p < kc; ++p) {
#pragma GCC unroll 16
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
  if (count == W) {
    for (int64_t p = 0; p < kc; ++p) {
#pragma omp simd
      for (int i = 0; i < W; ++i) dst[p * W + i] = src[p * ld + i];
    }
    return;
  }
  for (int64_t p = 0; p < kc; ++p) {
    for (int64_t i = 0; i < count; ++i) dst[p * W + i] = src[p * ld + i];
    for (int64_t i = count; i < W; ++i) dst[p * W + i] = 0.0f;
  }
}

// The portable kernel: 6 x 8 = 12 four-wide accumulators on baseline SSE2 (16 registers), leaving
// two for the B row and one for the broadcast A value. mc x kc = 144 x 320 floats (180 KiB) sits
// in L2; a kc x NR micro-panel (10 KiB) in L1; kc x nc = 320 x 3072 (3.75 MiB) in L3. KC = 320
// keeps the CNN's K = 9 * 32 = 288 in one pass over C.
// NOTE: on SSE2 (two-operand mulps/addps, no FMA) this loop is bound by instruction issue at
// about 9 flops/cycle; the AVX2 / AVX-512 variants are the real fix, not retuning this one.
constexpr GemmUkernel ukernel_portable_6x8 = ukernel_portable<6, 8>;
constexpr GemmKernel kPortable = {
    "portable_6x8",     6, 8, 144, 320, 3072, ukernel_portable_6x8,
    pack_panel_rows<6>, pack_panel_cols<6>,
    pack_panel_rows<8>, pack_panel_cols<8>,
};

// ---- blocking and the split of work across threads ----

struct Plan {
  int64_t mc, kc, nc;      // effective block sizes (balanced so no block is a thin sliver)
  int64_t m_blocks;        // number of ic blocks
  int workers;             // threads actually used (<= the caller's nthreads)
  int ic_ways, jr_ways;    // workers = ic_ways * jr_ways
  int64_t a_floats;        // one worker's packed A block (rounded to the alignment)
  int64_t b_floats;        // the shared packed B block
  int64_t workspace_floats(int nthreads) const {
    return b_floats + static_cast<int64_t>(nthreads) * a_floats + kAlignFloats;
  }
};

// M, N, K >= 1. Same inputs give the same plan, so gemm_workspace_floats matches gemm.
Plan make_plan(const GemmKernel& kr, int64_t M, int64_t N, int64_t K, int nthreads) {
  Plan pl{};
  pl.kc = ceil_div(K, ceil_div(K, kr.kc));
  pl.nc = N <= kr.nc ? N : round_up(ceil_div(N, ceil_div(N, kr.nc)), kr.nr);
  const double macs = static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K);
  int workers = std::max(1, nthreads);
  if (macs < kParallelMinMacs) workers = 1;
  // Split M across as many workers as it has MC blocks (a divisor of workers), the rest split N.
  int64_t m_blocks = ceil_div(M, kr.mc);
  int ic_ways = 1;
  for (int d = workers; d >= 1; --d) {
    if (workers % d == 0 && d <= m_blocks) {
      ic_ways = d;
      break;
    }
  }
  pl.mc = std::min(kr.mc, round_up(M, kr.mr));
  if (ic_ways > 1) {
    // Re-cut M into a multiple of ic_ways equal blocks so every worker gets the same rows.
    const int64_t blocks = round_up(m_blocks, ic_ways);
    pl.mc = round_up(ceil_div(M, blocks), kr.mr);
  }
  pl.m_blocks = ceil_div(M, pl.mc);
  pl.workers = workers;
  pl.ic_ways = ic_ways;
  pl.jr_ways = workers / ic_ways;
  pl.a_floats = round_up(round_up(pl.mc, kr.mr) * pl.kc, kAlignFloats);
  pl.b_floats = round_up(round_up(pl.nc, kr.nr) * pl.kc, kAlignFloats);
  return pl;
}

// c is (M, N) with row stride ldc: c = beta * c (c is not read when beta == 0).
void scale_c(float* c, int64_t M, int64_t N, int64_t ldc, float beta) {
  for (int64_t i = 0; i < M; ++i) {
    float* row = c + i * ldc;
    if (beta == 0.0f) {
      std::fill(row, row + N, 0.0f);
    } else if (beta != 1.0f) {
#pragma omp simd
      for (int64_t j = 0; j < N; ++j) row[j] *= beta;
    }
  }
}

// Everything a worker needs to run its share of one (jc, pc) step.
struct Step {
  float* c;
  const float* a;
  const float* b_packed;
  int64_t M, ldc, lda;
  bool trans_a;
  int64_t jc, nc, pc, kc;
  float alpha, beta;
};

// Worker w of the plan: packs each of its ic blocks of A into a_buf (mc x kc) and multiplies it
// by its share of the packed B block's NR panels.
void run_worker(const GemmKernel& kr, const Plan& pl, const Step& s, int w, float* a_buf) {
  const int64_t MR = kr.mr, NR = kr.nr;
  const int64_t n_panels = ceil_div(s.nc, NR);
  const int js = w % pl.jr_ways;
  const int64_t jp_lo = n_panels * js / pl.jr_ways;
  const int64_t jp_hi = n_panels * (js + 1) / pl.jr_ways;
  if (jp_lo == jp_hi) return;
  for (int64_t ib = w / pl.jr_ways; ib < pl.m_blocks; ib += pl.ic_ways) {
    const int64_t ic = ib * pl.mc;
    const int64_t mc = std::min(pl.mc, s.M - ic);
    const int64_t m_panels = ceil_div(mc, MR);
    // pack_a: op(A)[ic : ic + mc, pc : pc + kc] into m_panels zero-padded MR x kc panels.
    for (int64_t ip = 0; ip < m_panels; ++ip) {
      const int64_t i0 = ic + ip * MR;
      const int64_t rows = std::min(MR, mc - ip * MR);
      float* dst = a_buf + ip * s.kc * MR;
      if (s.trans_a) {
        kr.pack_a_cols(dst, s.a + s.pc * s.lda + i0, s.lda, rows, s.kc);
      } else {
        kr.pack_a_rows(dst, s.a + i0 * s.lda + s.pc, s.lda, rows, s.kc);
      }
    }
    for (int64_t jp = jp_lo; jp < jp_hi; ++jp) {
      const int64_t n = std::min(NR, s.nc - jp * NR);
      const float* b_panel = s.b_packed + jp * s.kc * NR;
      float* c_col = s.c + ic * s.ldc + s.jc + jp * NR;
      for (int64_t ip = 0; ip < m_panels; ++ip) {
        const int64_t m = std::min(MR, mc - ip * MR);
        kr.ukernel(c_col + ip * MR * s.ldc, s.ldc, a_buf + ip * s.kc * MR, b_panel, s.kc, m, n,
                   s.alpha, s.beta);
      }
    }
  }
}

}  // namespace

const GemmKernel& gemm_kernel() { return kPortable; }

int64_t gemm_workspace_floats(int64_t M, int64_t N, int64_t K, int nthreads) {
  if (M <= 0 || N <= 0 || K <= 0) return 0;
  const Plan pl = make_plan(gemm_kernel(), M, N, K, nthreads);
  return pl.workspace_floats(pl.workers);
}

// c (M, N), a (M, K) or (K, M), b (K, N) or (N, K); see gemm.h.
void gemm(float* c, const float* a, const float* b, int64_t M, int64_t N, int64_t K, int64_t ldc,
          int64_t lda, int64_t ldb, bool trans_a, bool trans_b, float alpha, float beta,
          float* workspace, int nthreads) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == 0.0f) {
    scale_c(c, M, N, ldc, beta);
    return;
  }
  const GemmKernel& kr = gemm_kernel();
  const Plan pl = make_plan(kr, M, N, K, nthreads);
  float* b_buf = align64(workspace);
  float* a_bufs = b_buf + pl.b_floats;
  const int64_t NR = kr.nr;

#pragma omp parallel num_threads(pl.workers) if (pl.workers > 1)
  {
    for (int64_t jc = 0; jc < N; jc += pl.nc) {
      const int64_t nc = std::min(pl.nc, N - jc);
      const int64_t n_panels = ceil_div(nc, NR);
      for (int64_t pc = 0; pc < K; pc += pl.kc) {
        const int64_t kc = std::min(pl.kc, K - pc);
        // pack_b: op(B)[pc : pc + kc, jc : jc + nc] into zero-padded kc x NR panels, shared.
#pragma omp for schedule(static)
        for (int64_t jp = 0; jp < n_panels; ++jp) {
          const int64_t j0 = jc + jp * NR;
          const int64_t cols = std::min(NR, nc - jp * NR);
          float* dst = b_buf + jp * kc * NR;
          if (trans_b) {
            kr.pack_b_rows(dst, b + j0 * ldb + pc, ldb, cols, kc);
          } else {
            kr.pack_b_cols(dst, b + pc * ldb + j0, ldb, cols, kc);
          }
        }
        // (implicit barrier: B is packed) -- then the ic / jr loops, one worker per thread.
        const Step step{c,  a,  b_buf, M,     ldc, lda, trans_a, jc, nc, pc,
                        kc, alpha, pc == 0 ? beta : 1.0f};
#pragma omp for schedule(static)
        for (int w = 0; w < pl.workers; ++w) run_worker(kr, pl, step, w, a_bufs + w * pl.a_floats);
        // (implicit barrier: nobody still reads B when the next pc repacks it)
      }
    }
  }
}

namespace {
bool batch_per_worker(int64_t batch, int64_t M, int64_t N, int64_t K, int nthreads) {
  const double macs = static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K);
  return nthreads > 1 && batch >= nthreads && macs <= kBatchPerWorkerMaxMacs;
}
}  // namespace

int64_t gemm_batched_workspace_floats(int64_t batch, int64_t M, int64_t N, int64_t K,
                                      int nthreads) {
  if (batch <= 0) return 0;
  if (batch_per_worker(batch, M, N, K, nthreads)) {
    return static_cast<int64_t>(nthreads) * gemm_workspace_floats(M, N, K, 1);
  }
  return gemm_workspace_floats(M, N, K, nthreads);
}

// c (batch, M, N), a (batch, M, K) or (batch, K, M), b (batch, K, N) or (batch, N, K).
void gemm_batched(float* c, const float* a, const float* b, int64_t batch, int64_t M, int64_t N,
                  int64_t K, int64_t ldc, int64_t lda, int64_t ldb, int64_t stride_c,
                  int64_t stride_a, int64_t stride_b, bool trans_a, bool trans_b, float alpha,
                  float beta, float* workspace, int nthreads) {
  if (batch <= 0) return;
  if (!batch_per_worker(batch, M, N, K, nthreads)) {
    for (int64_t i = 0; i < batch; ++i) {
      gemm(c + i * stride_c, a + i * stride_a, b + i * stride_b, M, N, K, ldc, lda, ldb, trans_a,
           trans_b, alpha, beta, workspace, nthreads);
    }
    return;
  }
  // Small matrices, many of them: each worker runs whole matrices on its own thread.
  const int64_t per_worker = gemm_workspace_floats(M, N, K, 1);
#pragma omp parallel for schedule(static) num_threads(nthreads)
  for (int w = 0; w < nthreads; ++w) {
    float* ws = workspace + w * per_worker;
    for (int64_t i = batch * w / nthreads; i < batch * (w + 1) / nthreads; ++i) {
      gemm(c + i * stride_c, a + i * stride_a, b + i * stride_b, M, N, K, ldc, lda, ldb, trans_a,
           trans_b, alpha, beta, ws, 1);
    }
  }
}

}  // namespace fastdl::cpu
