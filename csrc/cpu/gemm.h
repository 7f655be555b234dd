// GEMM: C = alpha * op(A) @ op(B) + beta * C in float32, BLIS-style (csrc/cpu/gemm.cpp).
//
// Shapes: op(A) is (M, K), op(B) is (K, N), C is (M, N); row-major with leading dimensions
// lda, ldb, ldc (the distance between consecutive rows of the *stored* matrix: A is stored
// (M, K) or, when trans_a, (K, M); B is stored (K, N) or, when trans_b, (N, K)).
// NOTE: as in BLAS, C is not read when beta == 0 (so NaN or garbage in C does not leak in).
//
// Variants: the micro-kernel template of gemm_ukernel.h in each ISA build of gemm_kernels.cpp
// (GemmKernel::name: portable_6x8, avx2_6x16, avx512_14x32), with the blocking that suits it;
// gemm_kernel() returns the active ISA's (dispatch.h). Two paths: small products (at most
// kDirectMaxMacs multiply-adds, see gemm.cpp) read A and B in place (the "direct" path); larger
// ones run BLIS's five loops over packed blocks.
// Tests: tests/test_kernels_gemm.py (and tests/test_kernels_conv2d.py, which runs on it),
// tests/test_kernels_simd.py (every ISA). Bench: bench/ (gemm).
#pragma once
#include <cstdint>

#include "cpu/dispatch.h"

namespace fastdl::cpu {

// Packs `count` (<= width) rows of a strided matrix into one zero-padded panel of kc x width
// floats. Two flavours: `rows` reads src[i * ld + p] (a row per panel lane), `cols` reads
// src[p * ld + i] (contiguous lanes). pack_a uses rows (A plain) or cols (A transposed);
// pack_b the opposite.
using GemmPackPanel = void (*)(float* dst, const float* src, int64_t ld, int64_t count,
                               int64_t kc);

// c is an (m, n) block of C with row stride ldc; a holds ceil(m / MR) packed MR x kc panels
// (panel ip at a + ip * kc * MR, a[p * MR + i]), b ceil(n / NR) packed kc x NR panels.
// c = alpha * a @ b + beta * c (c is not read when beta == 0).
using GemmMacroKernel = void (*)(float* c, int64_t ldc, const float* a, const float* b,
                                 int64_t m, int64_t n, int64_t kc, float alpha, float beta);

// The unpacked path: c (m, n) with row stride ldc = alpha * op(A) @ op(B) + beta * c, where
// op(A)[i][p] = a[i * rs_a + p * cs_a] and op(B)[p][j] = b[p * rs_b + j * cs_b] (cs_b == 1 or
// rs_b == 1). b_buf holds KC * NR floats for the B panels that cannot be read in place.
using GemmDirectKernel = void (*)(float* c, int64_t ldc, const float* a, int64_t rs_a,
                                  int64_t cs_a, const float* b, int64_t rs_b, int64_t cs_b,
                                  int64_t m, int64_t n, int64_t k, float alpha, float beta,
                                  float* b_buf);

// C of a few rows (see gemm.cpp), A and B read in place, no scratch: c (m, n) with row stride ldc
// = alpha * op(A) @ op(B) + beta * c, op(A)[i][p] = a[i * rs_a + p * cs_a] and op(B)[p][j] =
// b[p * rs_b + j * cs_b], where cs_b == 1, or rs_b == 1 and cs_a == 1.
using GemmSkinnyKernel = void (*)(float* c, int64_t ldc, const float* a, int64_t rs_a,
                                  int64_t cs_a, const float* b, int64_t rs_b, int64_t cs_b,
                                  int64_t m, int64_t n, int64_t k, float alpha, float beta);

// One ISA build's GEMM pieces and the blocking that suits its micro-kernel (sizes in elements).
struct GemmKernel {
  const char* name;        // ISA and register tile, e.g. "avx2_6x16"
  int64_t mr, nr;          // register tile
  int64_t mc, kc, nc;      // cache blocks: A block mc x kc (L2), B block kc x nc (L3)
  GemmPackPanel pack_a_rows, pack_a_cols;  // panels of mr lanes
  GemmPackPanel pack_b_rows, pack_b_cols;  // panels of nr lanes
  GemmMacroKernel macro_kernel;
  GemmDirectKernel direct;
  GemmSkinnyKernel skinny;
};

// The active ISA's kernel (dispatch.h): the one the next gemm call runs.
const GemmKernel& gemm_kernel();

// Floats of scratch that gemm needs for these sizes when run with nthreads workers (packed B
// block shared by all workers plus one packed A block per worker, and alignment slack), enough
// for whichever ISA is active when gemm runs.
int64_t gemm_workspace_floats(int64_t M, int64_t N, int64_t K, int nthreads);

// c is (M, N) with row stride ldc; a is (M, K) or (K, M) when trans_a, row stride lda; b is (K, N)
// or (N, K) when trans_b, row stride ldb. workspace holds gemm_workspace_floats(M, N, K, nthreads)
// floats (any alignment). nthreads == 1 runs on the calling thread (safe inside a parallel region).
void gemm(float* c, const float* a, const float* b, int64_t M, int64_t N, int64_t K, int64_t ldc,
          int64_t lda, int64_t ldb, bool trans_a, bool trans_b, float alpha, float beta,
          float* workspace, int nthreads);

// Floats of scratch gemm_batched needs (it may run whole matrices per worker, see gemm.cpp).
int64_t gemm_batched_workspace_floats(int64_t batch, int64_t M, int64_t N, int64_t K,
                                      int nthreads);

// For b < batch: gemm on c + b * stride_c, a + b * stride_a, b + b * stride_b; each matrix as in
// gemm (c is (batch, M, N), a is (batch, M, K) or (batch, K, M), ...).
void gemm_batched(float* c, const float* a, const float* b, int64_t batch, int64_t M, int64_t N,
                  int64_t K, int64_t ldc, int64_t lda, int64_t ldb, int64_t stride_c,
                  int64_t stride_a, int64_t stride_b, bool trans_a, bool trans_b, float alpha,
                  float beta, float* workspace, int nthreads);

}  // namespace fastdl::cpu

FASTDL_PER_ISA(const GemmKernel& gemm_kernels())
