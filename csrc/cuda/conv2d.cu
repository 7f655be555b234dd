// conv2d on CUDA as implicit GEMM (tiled.cuh's tile; the im2col matrix is never stored: each
// operand element is gathered from the image as the tile fetches it). Cross-correlation with
// zero padding, as PyTorch's.
//   forward:  y (K, N*P*Q)    = w (K, C*R*S) @ im2col(x) (C*R*S, N*P*Q), bias added in the store
//   dx:       dx (C, N*H*W)   = w^T (C, K*R*S) @ gathered dy (K*R*S, N*H*W)
//   dw:       dw (K, C*R*S)   = dy (K, N*P*Q) @ im2col(x)^T (N*P*Q, C*R*S), split over N*P*Q
//             (grid z) with atomic adds, since K and C*R*S are small beside N*P*Q
//   db:       one block per output channel sums dy over N, P and Q
// Tests: tests/test_cuda_kernels.py; bench: bench/gpu_check.py (the CNN step).
#include "cuda/tiled.cuh"

namespace fastdl::cuda {

namespace {

using tiled::BK;
using tiled::BM;
using tiled::BN;

// Each gather below is a tiled.cuh operand: fetch(r, mn0, k0, k_end, t) with the map its
// kKContig names. Decompositions: npq -> (n, p, q), crs -> (c, r, s), krs -> (k, r, s).

// x seen as the forward's B: element (npq, crs) = x[n, c, p*sh - ph + r, q*sw - pw + s].
// Rows along npq (4 consecutive output pixels per thread): kKContig false.
// Also the weight gradient's B, element (crs, npq) with rows along crs: kKContig true.
template <bool kKContigT>
struct ImageGather {
  static constexpr bool kKContig = kKContigT;
  const float* x;
  ConvShape s;

  __device__ __forceinline__ float at(int64_t npq, int64_t crs) const {
    const int64_t PQ = s.P * s.Q, RS = s.R * s.S;
    if (npq >= s.N * PQ || crs >= s.C * RS) return 0.0f;
    const int64_t n = npq / PQ, pq = npq % PQ, c = crs / RS, rs = crs % RS;
    const int64_t h = (pq / s.Q) * s.sh - s.ph + rs / s.S;
    const int64_t w = (pq % s.Q) * s.sw - s.pw + rs % s.S;
    if (h < 0 || h >= s.H || w < 0 || w >= s.W) return 0.0f;
    return __ldg(x + ((n * s.C + c) * s.H + h) * s.W + w);
  }

  __device__ __forceinline__ void fetch(float (&r)[4], int64_t mn0, int64_t k0, int64_t k_end,
                                        int t) const {
    tiled::gather<kKContig>(r, mn0, k0, k_end, t, [&](int64_t mn, int64_t k) {
      return kKContig ? at(k, mn) : at(mn, k);
    });
  }
};

// An (outer, rows, inner) array seen as an A (rows, outer*inner): element (m, j) =
// p[j / inner, m, j % inner]; 4 consecutive j. w (K, C, R, S) is the input gradient's A (c, krs)
// and dy (N, K, P, Q) the weight gradient's A (k, npq).
struct MiddleRows {
  static constexpr bool kKContig = true;
  const float* p;
  int64_t rows, inner;

  __device__ __forceinline__ void fetch(float (&r)[4], int64_t mn0, int64_t k0, int64_t k_end,
                                        int t) const {
    tiled::gather<true>(r, mn0, k0, k_end, t, [&](int64_t m, int64_t j) {
      return m < rows ? __ldg(p + ((j / inner) * rows + m) * inner + j % inner) : 0.0f;
    });
  }
};

// dy seen as the input gradient's B: element (nhw, krs) = dy[n, k, p, q] where
// h = p*sh - ph + r and w = q*sw - pw + s, 0 where no output pixel reads (h, w) through (r, s).
struct GradGather {
  static constexpr bool kKContig = false;
  const float* dy;
  ConvShape s;

  __device__ __forceinline__ float at(int64_t nhw, int64_t krs) const {
    const int64_t HW = s.H * s.W, RS = s.R * s.S;
    if (nhw >= s.N * HW) return 0.0f;
    const int64_t n = nhw / HW, hw = nhw % HW, k = krs / RS, rs = krs % RS;
    const int64_t hp = hw / s.W + s.ph - rs / s.S, wq = hw % s.W + s.pw - rs % s.S;
    if (hp < 0 || wq < 0 || hp % s.sh != 0 || wq % s.sw != 0) return 0.0f;
    const int64_t p = hp / s.sh, q = wq / s.sw;
    if (p >= s.P || q >= s.Q) return 0.0f;
    return __ldg(dy + ((n * s.K + k) * s.P + p) * s.Q + q);
  }

  __device__ __forceinline__ void fetch(float (&r)[4], int64_t mn0, int64_t k0, int64_t k_end,
                                        int t) const {
    tiled::gather<false>(r, mn0, k0, k_end, t, [&](int64_t mn, int64_t k) { return at(mn, k); });
  }
};

// y[n, k, p, q] = v + b[k] for (m = k, n = npq .. npq+3).
struct OutputStore {
  float* y;
  const float* b;
  ConvShape s;

  __device__ __forceinline__ void store(int64_t k, int64_t npq, const float* v) const {
    const int64_t PQ = s.P * s.Q;
    if (k >= s.K) return;
    const float bias = b != nullptr ? __ldg(b + k) : 0.0f;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int64_t j = npq + i;
      if (j < s.N * PQ) y[((j / PQ) * s.K + k) * PQ + j % PQ] = v[i] + bias;
    }
  }
};

// dx[n, c, h, w] = v for (m = c, n = nhw .. nhw+3).
struct InputGradStore {
  float* dx;
  ConvShape s;

  __device__ __forceinline__ void store(int64_t c, int64_t nhw, const float* v) const {
    const int64_t HW = s.H * s.W;
    if (c >= s.C) return;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int64_t j = nhw + i;
      if (j < s.N * HW) dx[((j / HW) * s.C + c) * HW + j % HW] = v[i];
    }
  }
};

// dw[k, crs] += v (one split of N*P*Q's partial sums) for (m = k, n = crs .. crs+3).
struct WeightGradStore {
  float* dw;
  int64_t K, CRS;

  __device__ __forceinline__ void store(int64_t k, int64_t crs, const float* v) const {
    if (k >= K) return;
#pragma unroll
    for (int i = 0; i < 4; ++i)
      if (crs + i < CRS) atomicAdd(dw + k * CRS + crs + i, v[i]);
  }
};

template <class A, class B, class C>
__global__ void __launch_bounds__(tiled::THREADS) conv_gemm_kernel(A a, B b, C c, int64_t k_total,
                                                                   int64_t k_chunk) {
  __shared__ __align__(128) tiled::Smem s;
  const int64_t k_begin = static_cast<int64_t>(blockIdx.z) * k_chunk;
  const int64_t k_end = k_begin + k_chunk < k_total ? k_begin + k_chunk : k_total;
  tiled::gemm_tile(a, b, c, static_cast<int64_t>(blockIdx.y) * BM,
                   static_cast<int64_t>(blockIdx.x) * BN, k_begin, k_end, s);
}

// db[k] = sum of dy[n, k, p, q] over n, p, q; one block per k.
__global__ void conv2d_bias_backward(float* db, const float* dy, int64_t N, int64_t K,
                                     int64_t PQ) {
  __shared__ float shared[32];
  const int64_t k = blockIdx.x;
  float sum = 0.0f;
  for (int64_t j = threadIdx.x; j < N * PQ; j += blockDim.x) sum += dy[((j / PQ) * K + k) * PQ + j % PQ];
  sum = block_sum(sum, shared);
  if (threadIdx.x == 0) db[k] = sum;
}

template <class A, class B, class C>
void launch_gemm(const char* op, const A& a, const B& b, const C& c, int64_t M, int64_t N,
                 int64_t k_total, int64_t splits, cudaStream_t st) {
  if (M == 0 || N == 0) return;
  int64_t chunk = (k_total + splits - 1) / splits;
  chunk = ((chunk + BK - 1) / BK) * BK;  // split points on slice boundaries
  if (chunk == 0) chunk = BK;
  const int64_t z = (k_total + chunk - 1) / chunk;
  const dim3 grid(static_cast<unsigned>((N + BN - 1) / BN), static_cast<unsigned>((M + BM - 1) / BM),
                  static_cast<unsigned>(z > 0 ? z : 1));
  conv_gemm_kernel<<<grid, tiled::THREADS, 0, st>>>(a, b, c, k_total, chunk);
  check_launch(op, st);
}

int multiprocessors() {
  static const int count = [] {
    int d = 0, n = 0;
    cudaGetDevice(&d);
    if (cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, d) != cudaSuccess) n = 108;
    return n;
  }();
  return count;
}

}  // namespace

// x (N,C,H,W), w (K,C,R,S), b (K,) or null -> y (N,K,P,Q).
void conv2d_forward(float* y, const float* x, const float* w, const float* b, const ConvShape& s,
                    Stream stream) {
  const int64_t CRS = s.C * s.R * s.S;
  const tiled::Dense<true> a{w, CRS, s.K, aligned16(w) && CRS % 4 == 0};
  launch_gemm("conv2d_forward", a, ImageGather<false>{x, s}, OutputStore{y, b, s}, s.K,
              s.N * s.P * s.Q, CRS, 1, as_stream(stream));
}

// dy (N,K,P,Q), x (N,C,H,W), w (K,C,R,S) -> dx (N,C,H,W), dw (K,C,R,S), db (K,), each optional.
void conv2d_backward(float* dx, float* dw, float* db, const float* dy, const float* x,
                     const float* w, const ConvShape& s, Stream stream) {
  const cudaStream_t st = as_stream(stream);
  const int64_t CRS = s.C * s.R * s.S, NPQ = s.N * s.P * s.Q;
  if (dx != nullptr) {
    launch_gemm("conv2d_backward", MiddleRows{w, s.C, s.R * s.S}, GradGather{dy, s},
                InputGradStore{dx, s}, s.C, s.N * s.H * s.W, s.K * s.R * s.S, 1, st);
  }
  if (dw != nullptr) {
    cudaMemsetAsync(dw, 0, sizeof(float) * s.K * CRS, st);
    const int64_t tiles = ((s.K + BM - 1) / BM) * ((CRS + BN - 1) / BN);
    int64_t splits = (2 * multiprocessors() + tiles - 1) / (tiles > 0 ? tiles : 1);
    const int64_t most = NPQ / (16 * BK);  // each split keeps at least 16 slices of work
    splits = splits < most ? splits : most;
    launch_gemm("conv2d_backward", MiddleRows{dy, s.K, s.P * s.Q}, ImageGather<true>{x, s},
                WeightGradStore{dw, s.K, CRS}, s.K, CRS, NPQ, splits > 1 ? splits : 1, st);
  }
  if (db != nullptr && s.K > 0) {
    conv2d_bias_backward<<<static_cast<unsigned>(s.K), 256, 0, st>>>(db, dy, s.N, s.K, s.P * s.Q);
    check_launch("conv2d_backward", st);
  }
}

}  // namespace fastdl::cuda
