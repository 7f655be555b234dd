// gemm on CUDA: c (B, M, N) = op(a) @ op(b) in float32, batched, all four transpose cases
// (tiled.cuh's 128 x 128 x 8 tile with float4 loads where the layout allows), with a TF32
// tensor-core variant (fastdl.backends.cuda.matmul.allow_tf32, False by default as PyTorch's).
// Tests: tests/test_cuda_kernels.py (against the reference); bench: bench/gpu_check.py (sgemm
// against cuBLAS).
#include "cuda/tiled.cuh"

namespace fastdl::cuda {

namespace {

using tiled::BM;
using tiled::BN;
using tiled::Dense;

// c is (M, N) with row stride ldc; vec: c 16-byte aligned and ldc a multiple of 4.
struct DenseStore {
  float* c;
  int64_t ldc, M, N;
  bool vec;

  __device__ __forceinline__ void store(int64_t m, int64_t n, const float* v) const {
    if (m >= M) return;
    float* q = c + m * ldc + n;
    if (vec && n + 3 < N) {
      *reinterpret_cast<float4*>(q) = make_float4(v[0], v[1], v[2], v[3]);
      return;
    }
#pragma unroll
    for (int i = 0; i < 4; ++i)
      if (n + i < N) q[i] = v[i];
  }
};

// a seen as (m, k): k-contiguous unless trans_a; b seen as (n, k): k-contiguous when trans_b.
template <bool kTransA, bool kTransB, bool kTf32>
__global__ void __launch_bounds__(tiled::THREADS)
    gemm_kernel(float* c, const float* a, const float* b, int64_t batch, int64_t M, int64_t N,
                int64_t K, int64_t lda, int64_t ldb, int64_t ldc, int64_t sa, int64_t sb,
                int64_t sc, bool vec_a, bool vec_b, bool vec_c) {
  __shared__ __align__(128) tiled::Smem s;
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * BM;
  const int64_t n0 = static_cast<int64_t>(blockIdx.x) * BN;
  for (int64_t z = blockIdx.z; z < batch; z += gridDim.z) {
    const Dense<!kTransA> da{a + z * sa, lda, M, vec_a};
    const Dense<kTransB> db{b + z * sb, ldb, N, vec_b};
    const DenseStore dc{c + z * sc, ldc, M, N, vec_c};
    if (kTf32) {
      tiled::gemm_tile_tf32(da, db, dc, m0, n0, 0, K, s);
    } else {
      tiled::gemm_tile(da, db, dc, m0, n0, 0, K, s);
    }
    __syncthreads();  // the next batch entry reuses s
  }
}

template <bool kTransA, bool kTransB>
void launch(bool tf32, dim3 grid, cudaStream_t st, float* c, const float* a, const float* b,
            int64_t batch, int64_t M, int64_t N, int64_t K, int64_t lda, int64_t ldb,
            int64_t ldc, int64_t sa, int64_t sb, int64_t sc, bool va, bool vb, bool vc) {
  if (tf32) {
    gemm_kernel<kTransA, kTransB, true><<<grid, tiled::THREADS, 0, st>>>(
        c, a, b, batch, M, N, K, lda, ldb, ldc, sa, sb, sc, va, vb, vc);
  } else {
    gemm_kernel<kTransA, kTransB, false><<<grid, tiled::THREADS, 0, st>>>(
        c, a, b, batch, M, N, K, lda, ldb, ldc, sa, sb, sc, va, vb, vc);
  }
}

bool vec_ok(const void* p, int64_t ld, int64_t batch_stride, int64_t batch) {
  return aligned16(p) && ld % 4 == 0 && (batch == 1 || batch_stride % 4 == 0);
}

}  // namespace

// c (batch, M, N) = op(a) @ op(b); see cuda.h.
void gemm(float* c, const float* a, const float* b, int64_t batch, int64_t M, int64_t N, int64_t K,
          int64_t lda, int64_t ldb, int64_t ldc, int64_t sa, int64_t sb, int64_t sc, bool trans_a,
          bool trans_b, bool tf32, Stream stream) {
  if (batch == 0 || M == 0 || N == 0) return;
  const dim3 grid(static_cast<unsigned>((N + BN - 1) / BN), static_cast<unsigned>((M + BM - 1) / BM),
                  static_cast<unsigned>(batch < 65535 ? batch : 65535));
  const bool va = vec_ok(a, lda, sa, batch), vb = vec_ok(b, ldb, sb, batch);
  const bool vc = vec_ok(c, ldc, sc, batch);
  const cudaStream_t st = as_stream(stream);
  if (!trans_a && !trans_b) {
    launch<false, false>(tf32, grid, st, c, a, b, batch, M, N, K, lda, ldb, ldc, sa, sb, sc, va, vb, vc);
  } else if (!trans_a) {
    launch<false, true>(tf32, grid, st, c, a, b, batch, M, N, K, lda, ldb, ldc, sa, sb, sc, va, vb, vc);
  } else if (!trans_b) {
    launch<true, false>(tf32, grid, st, c, a, b, batch, M, N, K, lda, ldb, ldc, sa, sb, sc, va, vb, vc);
  } else {
    launch<true, true>(tf32, grid, st, c, a, b, batch, M, N, K, lda, ldb, ldc, sa, sb, sc, va, vb, vc);
  }
  check_launch("matmul", stream);
}

}  // namespace fastdl::cuda
