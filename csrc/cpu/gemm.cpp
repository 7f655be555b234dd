// GEMM: C = alpha * op(A) @ op(B) + beta * C, float32, row-major, all four transpose cases --
// the blocking loops and the threads (compiled once; the ISA-specific pieces are in
// gemm_kernels.cpp, picked per call through gemm_kernel()).
//
// Shapes: op(A) is (M, K), op(B) is (K, N), C is (M, N), with leading dimensions (see gemm.h).
// Three paths, chosen by size and layout alone (so results never depend on the thread count):
// * skinny (C of at most MR / kSkinnyShare rows, where op(B)'s rows are contiguous in memory,
//   or its columns and op(A)'s rows are; or K <= kSkinnyMaxK and op(B)'s rows contiguous): row
//   by row, A and B read in place, no packing (the ISA's `skinny`); threads split C's columns.
// * direct (M * N * K <= kDirectMaxMacs): A read in place, one kc x NR panel of B packed at a
//   time (the ISA's `direct`), on the calling thread.
// * blocked (BLIS; STYLE.md "GEMM speaks BLIS"):
//   jc over N in steps of NC          B block kc x nc packed once, shared by all workers (L3)
//    pc over K in steps of KC         beta applies on the first pc only, later blocks add
//     ic over M in steps of MC        A block mc x kc packed per worker (L2)
//      jr over nc in steps of NR      one kc x NR micro-panel of B stays in L1 ...
//       ir over mc in steps of MR     ... while the MR x NR micro-kernel streams A panels
//   Packed panels are zero-padded to MR / NR, so the micro-kernel always runs a full tile and
//   only its store is clipped at the edges of C. The jr / ir loops are the ISA's macro_kernel.
// Threads: one OpenMP team per blocked call (from kParallelMinMacs). Blocked: B is packed
// cooperatively (a kc block at a time, or all of a jc block's K at once when it is small, see
// kWholeBMaxFloats), then threads take units of (ic block, range of jr panels) first come, first
// served, so one slowed by another process's load on its core does not hold the others up. Both
// paths cut K into the same balanced kc blocks and sum each C element over K in the same order
// whatever the thread count and the schedule.
// Tests: tests/test_kernels_gemm.py, tests/test_kernels_simd.py. Bench: bench/ (gemm).
#include "cpu/gemm.h"
#include "cpu/parallel.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace fastdl::cpu {

namespace {

// Products up to this many multiply-adds take the direct path (n = 128 cubed).
constexpr double kDirectMaxMacs = 1 << 21;
// Products below parallel.h's kParallelMinMacs, and every direct one, run on the calling thread.
// C of at most MR / kSkinnyShare rows takes the skinny path: the MR x NR tile would waste
// two thirds or more of its multiply-adds, and packing B would copy all of it for those few rows.
// A linear layer at batch 1 (1 x 3136 @ 3136 x 128, and back) took 140-170 us on the tile and
// runs in ~20 us here (Zen 4, one thread).
constexpr int64_t kSkinnyShare = 3;
// ... and so does a product of at most this many terms per element (an outer product, K = 1, is
// a weight gradient at batch 1) when op(B)'s rows are contiguous: its cost is writing C, which
// the skinny path does row by row, from a B that stays in L1. (128 x 1 @ 1 x 3136: 70 us on
// the tile, one MR x NR block of C at a time, against 30 us for a plain fill of C.)
constexpr int64_t kSkinnyMaxK = 4;
// With threads, a jc block of op(B) of at most this many floats (packed, all of K: 8 MiB) is
// packed in one go, and each unit then runs all its kc blocks: one barrier per jc block instead
// of two per kc block. fastdl's threads sleep at a barrier (python/fastdl/_openmp.py), and each
// costs ~15-20 us: the CNN's fc1 at batch 64 (64 x 3136 @ 3136 x 128, 9 kc blocks) took 820 us
// on two threads against 620 us on one.
constexpr int64_t kWholeBMaxFloats = int64_t{1} << 21;
// gemm_batched runs whole matrices per worker when each is at most this many multiply-adds.
constexpr double kBatchPerWorkerMaxMacs = 1 << 24;
// Workspace regions start on 64-byte boundaries (16 floats).
constexpr int64_t kAlignFloats = 16;

const GemmKernel* const kKernels[kIsaCount] = FASTDL_ISA_TABLE(gemm_kernels);

double macs_of(int64_t M, int64_t N, int64_t K) {
  return static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K);
}

// ---- the split of work across threads ----

// The blocked path cuts its work into more units than threads, handed out dynamically (first
// come, first served), so a thread slowed by another process on its core does not hold the
// others up; the units partition C, and each element is summed the same way whichever thread
// runs it.
constexpr int kUnitsPerWorker = 4;

struct Plan {
  bool direct;
  int workers;             // threads actually used (<= the caller's nthreads)
  // direct path: units are NR panels of C (split_n) or MR row tiles, split evenly
  bool split_n;
  int64_t units;
  // blocked path: effective block sizes (balanced so no block is a thin sliver)
  int64_t mc, kc, nc;      // (mc: the largest ic block)
  int64_t m_blocks;        // ic blocks
  int64_t jr_splits;       // each ic block's NR panels are cut into this many ranges
  int64_t a_floats;        // one worker's packed A block, or direct B panel (rounded)
  int64_t b_floats;        // the shared packed B block (blocked path)
  bool whole_b;            // B's kc blocks of a jc block all packed at once (see kWholeBMaxFloats)
  int64_t workspace_floats() const {
    return b_floats + static_cast<int64_t>(workers) * a_floats + kAlignFloats;
  }
  // The first row of ic block ib (ib <= m_blocks) of an M-row C: blocks of whole MR row tiles,
  // as many in each as can be (the work of a block is its tiles, padded rows included).
  int64_t ic_of(int64_t ib, int64_t M, int64_t mr) const {
    if (ib >= m_blocks) return M;
    return ib * ceil_div(M, mr) / m_blocks * mr;
  }
};

// M, N, K >= 1. Same inputs give the same plan, so gemm_workspace_floats matches gemm.
Plan make_plan(const GemmKernel& kr, int64_t M, int64_t N, int64_t K, int nthreads) {
  Plan pl{};
  const double macs = macs_of(M, N, K);
  int workers = std::max(1, nthreads);
  if (macs <= kDirectMaxMacs) {
    pl.direct = true;
    workers = 1;
    const int64_t n_panels = ceil_div(N, kr.nr), m_tiles = ceil_div(M, kr.mr);
    pl.split_n = n_panels >= 2 * workers || n_panels >= m_tiles;
    pl.units = pl.split_n ? n_panels : m_tiles;
    pl.workers = static_cast<int>(std::min<int64_t>(workers, pl.units));
    pl.a_floats = round_up(kr.kc * kr.nr, kAlignFloats);
    return pl;
  }
  if (macs < kParallelMinMacs) workers = 1;
  pl.workers = workers;
  pl.kc = ceil_div(K, ceil_div(K, kr.kc));
  pl.nc = N <= kr.nc ? N : round_up(ceil_div(N, ceil_div(N, kr.nc)), kr.nr);
  // ic blocks: a multiple of the workers, so the units share out evenly (an odd unit left over
  // would idle a thread for its whole length), each within about a third of MC.
  int64_t blocks = ceil_div(M, kr.mc);
  if (workers > 1) {
    const int64_t per_worker = std::llround(static_cast<double>(M) / (kr.mc * workers));
    blocks = std::min(std::max<int64_t>(1, per_worker) * workers, ceil_div(M, kr.mr));
  }
  // A few row tiles that do not share out evenly (the CNN's fc1 at batch 64: 5 tiles of 14
  // rows, 3 against 2 on two threads): one ic block, its panels cut between the workers
  // instead (each packs all of A, a small copy, against a third more time on one thread).
  const int64_t tiles = ceil_div(M, kr.mr);
  const bool uneven = workers > 1 && tiles % workers != 0 && tiles < 4 * workers &&
                      ceil_div(pl.nc, kr.nr) >= workers;
  if (uneven) blocks = 1;
  pl.m_blocks = blocks;
  // Block ib holds rows [ic_of(ib), ic_of(ib + 1)): sizes differ by at most MR (a short last
  // block would leave its thread idle), so mc bounds them all.
  pl.mc = round_up(ceil_div(M, blocks), kr.mr) + kr.mr;
  // Too few ic blocks to go round (M of a few MR): also cut each block's panels. (Otherwise
  // not: the workers taking ranges of one block would each pack its A.)
  pl.jr_splits = 1;
  if (uneven) {
    pl.jr_splits = workers;  // one range of panels each: A packed once per worker
  } else if (pl.m_blocks < workers) {
    const int64_t want = int64_t{kUnitsPerWorker} * workers;
    pl.jr_splits = std::min(ceil_div(want, pl.m_blocks), ceil_div(pl.nc, kr.nr));
  }
  pl.a_floats = round_up(pl.mc * pl.kc, kAlignFloats);
  const int64_t whole_b_floats = round_up(pl.nc, kr.nr) * K;
  pl.whole_b = workers > 1 && K > pl.kc && whole_b_floats <= kWholeBMaxFloats;
  pl.b_floats = round_up(pl.whole_b ? whole_b_floats : round_up(pl.nc, kr.nr) * pl.kc,
                         kAlignFloats);
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

// The skinny path (see kSkinnyShare), which needs cs_b == 1, or cs_a == 1 (and rs_b == 1).
bool skinny_fits(const GemmKernel& kr, int64_t M, int64_t K, int64_t cs_a, int64_t cs_b) {
  return (M * kSkinnyShare <= kr.mr && (cs_b == 1 || cs_a == 1)) ||
         (K <= kSkinnyMaxK && cs_b == 1);
}

// Columns per thread's share of a skinny product: a multiple of every ISA's strip.
constexpr int64_t kSkinnyColumnBlock = 128;

void run_skinny(const GemmKernel& kr, float* c, const float* a, const float* b, int64_t M,
                int64_t N, int64_t K, int64_t ldc, int64_t rs_a, int64_t cs_a, int64_t rs_b,
                int64_t cs_b, float alpha, float beta, int nthreads) {
  const int64_t blocks = ceil_div(N, kSkinnyColumnBlock);
  const int workers = macs_of(M, N, K) >= kParallelMinMacs
                          ? static_cast<int>(std::min<int64_t>(std::max(1, nthreads), blocks))
                          : 1;
  if (workers == 1) {
    kr.skinny(c, ldc, a, rs_a, cs_a, b, rs_b, cs_b, M, N, K, alpha, beta);
    return;
  }
#pragma omp parallel num_threads(workers)
  {
    const int t = thread_index(), team = team_size();
    const int64_t lo = blocks * t / team * kSkinnyColumnBlock;
    const int64_t hi = std::min(N, blocks * (t + 1) / team * kSkinnyColumnBlock);
    if (lo < hi) {
      kr.skinny(c + lo, ldc, a, rs_a, cs_a, b + lo * cs_b, rs_b, cs_b, M, hi - lo, K, alpha,
                beta);
    }
  }
}

// The direct path's units [u_lo, u_hi): NR panels of C's columns (split_n) or MR row tiles.
void run_direct(const GemmKernel& kr, const Plan& pl, int64_t u_lo, int64_t u_hi, float* c,
                const float* a, const float* b, int64_t M, int64_t N, int64_t K, int64_t ldc,
                int64_t lda, int64_t ldb, bool trans_a, bool trans_b, float alpha, float beta,
                float* b_buf) {
  const int64_t rs_a = trans_a ? 1 : lda, cs_a = trans_a ? lda : 1;
  const int64_t rs_b = trans_b ? 1 : ldb, cs_b = trans_b ? ldb : 1;
  if (pl.split_n) {
    const int64_t lo = u_lo * kr.nr, hi = std::min(N, u_hi * kr.nr);
    kr.direct(c + lo, ldc, a, rs_a, cs_a, b + lo * cs_b, rs_b, cs_b, M, hi - lo, K, alpha, beta,
              b_buf);
  } else {
    const int64_t lo = u_lo * kr.mr, hi = std::min(M, u_hi * kr.mr);
    kr.direct(c + lo * ldc, ldc, a + lo * rs_a, rs_a, cs_a, b, rs_b, cs_b, hi - lo, N, K, alpha,
              beta, b_buf);
  }
}

// Everything a unit needs to run its share of one (jc, pc) step.
struct Step {
  float* c;
  const float* a;
  const float* b_packed;
  int64_t M, ldc, lda;
  bool trans_a;
  int64_t jc, nc, pc, kc;
  float alpha, beta;
};

// Unit u of a (jc, pc) step: ic block ib = u / jr_splits times the js-th range of the packed B
// block's NR panels. The worker's A buffer keeps its last packed block (*packed_ib), so
// consecutive units of the same block pack it once.
void run_unit(const GemmKernel& kr, const Plan& pl, const Step& s, int64_t u, float* a_buf,
              int64_t* packed_ib) {
  const int64_t MR = kr.mr, NR = kr.nr;
  const int64_t ib = u / pl.jr_splits, js = u % pl.jr_splits;
  const int64_t n_panels = ceil_div(s.nc, NR);
  const int64_t jp_lo = n_panels * js / pl.jr_splits;
  const int64_t jp_hi = n_panels * (js + 1) / pl.jr_splits;
  if (jp_lo == jp_hi) return;
  const int64_t ic = pl.ic_of(ib, s.M, kr.mr);
  const int64_t mc = pl.ic_of(ib + 1, s.M, kr.mr) - ic;
  if (*packed_ib != ib) {
    // pack_a: op(A)[ic : ic + mc, pc : pc + kc] into zero-padded MR x kc panels.
    for (int64_t ip = 0; ip < ceil_div(mc, MR); ++ip) {
      const int64_t i0 = ic + ip * MR;
      const int64_t rows = std::min(MR, mc - ip * MR);
      float* dst = a_buf + ip * s.kc * MR;
      if (s.trans_a) {
        kr.pack_a_cols(dst, s.a + s.pc * s.lda + i0, s.lda, rows, s.kc);
      } else {
        kr.pack_a_rows(dst, s.a + i0 * s.lda + s.pc, s.lda, rows, s.kc);
      }
    }
    *packed_ib = ib;
  }
  const int64_t n_lo = jp_lo * NR, n_hi = std::min(s.nc, jp_hi * NR);
  kr.macro_kernel(s.c + ic * s.ldc + s.jc + n_lo, s.ldc, a_buf, s.b_packed + jp_lo * s.kc * NR,
                  mc, n_hi - n_lo, s.kc, s.alpha, s.beta);
}

}  // namespace

const GemmKernel& gemm_kernel() { return for_active_isa(kKernels); }

int64_t gemm_workspace_floats(int64_t M, int64_t N, int64_t K, int nthreads) {
  if (M <= 0 || N <= 0 || K <= 0) return 0;
  int64_t most = 0;  // enough for any ISA (see gemm.h)
  for (const GemmKernel* kr : kKernels) {
    most = std::max(most, make_plan(*kr, M, N, K, nthreads).workspace_floats());
  }
  return most;
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
  const int64_t cs_a = trans_a ? lda : 1, cs_b = trans_b ? ldb : 1;
  if (skinny_fits(kr, M, K, cs_a, cs_b)) {
    run_skinny(kr, c, a, b, M, N, K, ldc, trans_a ? 1 : lda, cs_a, trans_b ? 1 : ldb, cs_b, alpha,
               beta, nthreads);
    return;
  }
  const Plan pl = make_plan(kr, M, N, K, nthreads);
  float* b_buf = align64(workspace);
  float* a_bufs = b_buf + pl.b_floats;
  const int64_t NR = kr.nr;

  if (pl.direct) {
    run_direct(kr, pl, 0, pl.units, c, a, b, M, N, K, ldc, lda, ldb, trans_a, trans_b, alpha,
               beta, a_bufs);
    return;
  }

#pragma omp parallel num_threads(pl.workers) if (pl.workers > 1)
  {
    float* a_buf = a_bufs + (pl.workers > 1 ? thread_index() : 0) * pl.a_floats;
    for (int64_t jc = 0; jc < N; jc += pl.nc) {
      const int64_t nc = std::min(pl.nc, N - jc);
      const int64_t n_panels = ceil_div(nc, NR);
      if (pl.whole_b) {
        // pack_b: op(B)[:, jc : jc + nc], every kc block, shared; block pc starts at pc * ncp.
        const int64_t ncp = n_panels * NR, k_blocks = ceil_div(K, pl.kc);
#pragma omp for schedule(static)
        for (int64_t q = 0; q < k_blocks * n_panels; ++q) {
          const int64_t pc = q / n_panels * pl.kc, jp = q % n_panels;
          const int64_t kc = std::min(pl.kc, K - pc), j0 = jc + jp * NR;
          const int64_t cols = std::min(NR, nc - jp * NR);
          float* dst = b_buf + pc * ncp + jp * kc * NR;
          if (trans_b) {
            kr.pack_b_rows(dst, b + j0 * ldb + pc, ldb, cols, kc);
          } else {
            kr.pack_b_cols(dst, b + pc * ldb + j0, ldb, cols, kc);
          }
        }
        // (implicit barrier: B is packed) -- then each unit runs its kc blocks in order, so
        // every C element still sums over K as on the path below.
#pragma omp for schedule(dynamic, 1)
        for (int64_t u = 0; u < pl.m_blocks * pl.jr_splits; ++u) {
          for (int64_t pc = 0; pc < K; pc += pl.kc) {
            const Step step{c,  a, b_buf + pc * ncp, M, ldc, lda, trans_a, jc, nc, pc,
                            std::min(pl.kc, K - pc), alpha, pc == 0 ? beta : 1.0f};
            int64_t packed_ib = -1;
            run_unit(kr, pl, step, u, a_buf, &packed_ib);
          }
        }
        // (implicit barrier: nobody still reads B when the next jc block repacks it)
        continue;
      }
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
        // (implicit barrier: B is packed) -- then the ic / jr units, first come first served.
        const Step step{c,  a,  b_buf, M,     ldc, lda, trans_a, jc, nc, pc,
                        kc, alpha, pc == 0 ? beta : 1.0f};
        int64_t packed_ib = -1;
#pragma omp for schedule(dynamic, 1)
        for (int64_t u = 0; u < pl.m_blocks * pl.jr_splits; ++u) {
          run_unit(kr, pl, step, u, a_buf, &packed_ib);
        }
        // (implicit barrier: nobody still reads B when the next pc repacks it)
      }
    }
  }
}

namespace {
bool batch_per_worker(int64_t batch, int64_t M, int64_t N, int64_t K, int nthreads) {
  return nthreads > 1 && batch >= nthreads && macs_of(M, N, K) <= kBatchPerWorkerMaxMacs;
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
