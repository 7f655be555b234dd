// The tiled GEMM core shared by gemm.cu and conv2d.cu: a block of 256 threads computes a
// 128 x 128 tile of C = A B (A seen as (M, K), B as (K, N)), stepping over K in slices of
// BK = 8. Each operand slice goes global -> registers (the next slice is fetched while the
// current one is multiplied) -> shared memory, two buffers deep, stored k-major (S[k][m]) so
// that a thread reads its 8 rows and 8 columns as float4 pairs. Each thread accumulates an
// 8 x 8 register block: rows ty*4 + [0,4) and 64 + ty*4 + [0,4), columns likewise with tx.
//
// An operand is a struct with `kKContig` (whether 4 consecutive k of one row are adjacent in
// memory, which picks the thread-to-element map) and `fetch(r, mn0, k0, k_end, t)`, which loads
// thread t's 4 elements of the slice at (mn0, k0) into r, zero outside the matrix or past k_end.
// The C side is a struct with `store(m, n, v)` of v[0..4) at 4 consecutive columns n .. n+3.
#pragma once
#include <mma.h>

#include "cuda/common.cuh"

namespace fastdl::cuda::tiled {

constexpr int BM = 128, BN = 128, BK = 8, THREADS = 256;
constexpr int LDS = BM + 4;  // padded rows: the k-contiguous stash writes hit distinct banks
static_assert(BM == BN, "one stash layout serves both operands");

struct Smem {
  float a[2][BK][LDS];
  float b[2][BK][LDS];
};

// Thread t's 4 elements of a slice. kKContig: row mn0 + t/2, k = k0 + (t%2)*4 + [0,4).
// Otherwise: k = k0 + t/32, rows mn0 + (t%32)*4 + [0,4).
template <bool kKContig>
__device__ __forceinline__ void stash(float (*S)[LDS], const float (&r)[4], int t) {
  if (kKContig) {
    const int mn = t >> 1, k = (t & 1) * 4;
#pragma unroll
    for (int i = 0; i < 4; ++i) S[k + i][mn] = r[i];
  } else {
    const int k = t >> 5, mn = (t & 31) * 4;
    *reinterpret_cast<float4*>(&S[k][mn]) = make_float4(r[0], r[1], r[2], r[3]);
  }
}

// Thread t's 4 elements of a slice from at(mn, k), which gives 0 outside the matrix along mn;
// past k_end is 0 here. The map is stash's: kKContig, row mn0 + t/2 at 4 consecutive k;
// otherwise k0 + t/32 at 4 consecutive rows. The gathering operands of conv2d.cu use it.
template <bool kKContig, class At>
__device__ __forceinline__ void gather(float (&r)[4], int64_t mn0, int64_t k0, int64_t k_end,
                                       int t, const At& at) {
  if (kKContig) {
    const int64_t mn = mn0 + (t >> 1), k = k0 + (t & 1) * 4;
#pragma unroll
    for (int i = 0; i < 4; ++i) r[i] = k + i < k_end ? at(mn, k + i) : 0.0f;
  } else {
    const int64_t k = k0 + (t >> 5), mn = mn0 + (t & 31) * 4;
#pragma unroll
    for (int i = 0; i < 4; ++i) r[i] = k < k_end ? at(mn + i, k) : 0.0f;
  }
}

// A dense operand: element (mn, k) at p[mn * ld + k] (kKContig) or p[k * ld + mn]; `rows` is
// its extent along mn. vec: p is 16-byte aligned and ld a multiple of 4, so in-bounds quads load
// as float4.
// The two branches stay spelled out on purpose: with one shared load helper, ptxas gave the
// gemm kernels other register counts (214 -> 136 on sm_80), untimed on a GPU.
template <bool kKContigT>
struct Dense {
  static constexpr bool kKContig = kKContigT;
  const float* p;
  int64_t ld, rows;
  bool vec;

  __device__ __forceinline__ void fetch(float (&r)[4], int64_t mn0, int64_t k0, int64_t k_end,
                                        int t) const {
    if (kKContig) {
      const int64_t mn = mn0 + (t >> 1), k = k0 + (t & 1) * 4;
      const float* q = p + mn * ld + k;
      if (vec && mn < rows && k + 3 < k_end) {
        const float4 v = __ldg(reinterpret_cast<const float4*>(q));
        r[0] = v.x, r[1] = v.y, r[2] = v.z, r[3] = v.w;
        return;
      }
#pragma unroll
      for (int i = 0; i < 4; ++i) r[i] = (mn < rows && k + i < k_end) ? __ldg(q + i) : 0.0f;
    } else {
      const int64_t k = k0 + (t >> 5), mn = mn0 + (t & 31) * 4;
      const float* q = p + k * ld + mn;
      if (vec && k < k_end && mn + 3 < rows) {
        const float4 v = __ldg(reinterpret_cast<const float4*>(q));
        r[0] = v.x, r[1] = v.y, r[2] = v.z, r[3] = v.w;
        return;
      }
#pragma unroll
      for (int i = 0; i < 4; ++i) r[i] = (k < k_end && mn + i < rows) ? __ldg(q + i) : 0.0f;
    }
  }
};

// The block's tile at (m0, n0) over k in [k_begin, k_end), handed to `c.store`.
template <class A, class B, class C>
__device__ __forceinline__ void gemm_tile(const A& a, const B& b, const C& c, int64_t m0,
                                          int64_t n0, int64_t k_begin, int64_t k_end, Smem& s) {
  const int t = threadIdx.x, ty = t >> 4, tx = t & 15;
  float acc[8][8];
#pragma unroll
  for (int i = 0; i < 8; ++i)
#pragma unroll
    for (int j = 0; j < 8; ++j) acc[i][j] = 0.0f;

  float ra[4], rb[4];
  a.fetch(ra, m0, k_begin, k_end, t);
  b.fetch(rb, n0, k_begin, k_end, t);
  stash<A::kKContig>(s.a[0], ra, t);
  stash<B::kKContig>(s.b[0], rb, t);
  __syncthreads();
  int buf = 0;
  for (int64_t k0 = k_begin; k0 < k_end; k0 += BK) {
    const bool more = k0 + BK < k_end;
    if (more) {  // in flight while this slice is multiplied
      a.fetch(ra, m0, k0 + BK, k_end, t);
      b.fetch(rb, n0, k0 + BK, k_end, t);
    }
#pragma unroll
    for (int k = 0; k < BK; ++k) {
      const float4 a0 = *reinterpret_cast<const float4*>(&s.a[buf][k][ty * 4]);
      const float4 a1 = *reinterpret_cast<const float4*>(&s.a[buf][k][64 + ty * 4]);
      const float4 b0 = *reinterpret_cast<const float4*>(&s.b[buf][k][tx * 4]);
      const float4 b1 = *reinterpret_cast<const float4*>(&s.b[buf][k][64 + tx * 4]);
      const float av[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
      const float bv[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
#pragma unroll
      for (int i = 0; i < 8; ++i)
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
    }
    if (more) {  // the other buffer was last read before the previous barrier
      stash<A::kKContig>(s.a[buf ^ 1], ra, t);
      stash<B::kKContig>(s.b[buf ^ 1], rb, t);
    }
    __syncthreads();
    buf ^= 1;
  }
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const int64_t m = m0 + (i < 4 ? ty * 4 + i : 64 + ty * 4 + i - 4);
    c.store(m, n0 + tx * 4, acc[i]);
    c.store(m, n0 + 64 + tx * 4, acc[i] + 4);
  }
}

// The same tile on TF32 tensor cores (sm_80+): 8 warps as 2 x 4, each 64 x 32 of the tile as
// 4 x 2 fragments of 16 x 16 (wmma m16n16k8). The stash layout is A col-major and B row-major
// for wmma. The result leaves through a 16 x 16 staging square per warp in shared memory.
template <class A, class B, class C>
__device__ __forceinline__ void gemm_tile_tf32(const A& a, const B& b, const C& c, int64_t m0,
                                               int64_t n0, int64_t k_begin, int64_t k_end,
                                               Smem& s) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  using namespace nvcuda;
  const int t = threadIdx.x, warp = t >> 5, lane = t & 31;
  const int wm = (warp >> 2) * 64, wn = (warp & 3) * 32;
  wmma::fragment<wmma::accumulator, 16, 16, 8, float> acc[4][2];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.0f);

  float ra[4], rb[4];
  a.fetch(ra, m0, k_begin, k_end, t);
  b.fetch(rb, n0, k_begin, k_end, t);
  stash<A::kKContig>(s.a[0], ra, t);
  stash<B::kKContig>(s.b[0], rb, t);
  __syncthreads();
  int buf = 0;
  for (int64_t k0 = k_begin; k0 < k_end; k0 += BK) {
    const bool more = k0 + BK < k_end;
    if (more) {
      a.fetch(ra, m0, k0 + BK, k_end, t);
      b.fetch(rb, n0, k0 + BK, k_end, t);
    }
    wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::col_major> fa[4];
    wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::row_major> fb[2];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      wmma::load_matrix_sync(fa[i], &s.a[buf][0][wm + i * 16], LDS);
#pragma unroll
      for (int e = 0; e < fa[i].num_elements; ++e) fa[i].x[e] = wmma::__float_to_tf32(fa[i].x[e]);
    }
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      wmma::load_matrix_sync(fb[j], &s.b[buf][0][wn + j * 16], LDS);
#pragma unroll
      for (int e = 0; e < fb[j].num_elements; ++e) fb[j].x[e] = wmma::__float_to_tf32(fb[j].x[e]);
    }
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 2; ++j) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
    if (more) {
      stash<A::kKContig>(s.a[buf ^ 1], ra, t);
      stash<B::kKContig>(s.b[buf ^ 1], rb, t);
    }
    __syncthreads();
    buf ^= 1;
  }
  // Staging: 8 warps x 256 floats fit in s.a, free after the loop's last barrier.
  float* stage = &s.a[0][0][0] + warp * 256;
  const int row = lane >> 1, col = (lane & 1) * 8;
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      wmma::store_matrix_sync(stage, acc[i][j], 16, wmma::mem_row_major);
      __syncwarp();
      const int64_t m = m0 + wm + i * 16 + row, n = n0 + wn + j * 16 + col;
      c.store(m, n, stage + row * 16 + col);
      c.store(m, n + 4, stage + row * 16 + col + 4);
      __syncwarp();
    }
#else
  __trap();  // the host launches this path only on sm_80 and newer
#endif
}

}  // namespace fastdl::cuda::tiled
