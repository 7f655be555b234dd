// Helpers shared by the CUDA kernel files (csrc/cuda/*.cu): launch sizes, the stream handle,
// warp and block sums. Kernels index with int64_t wherever a size can pass 2^31.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "cuda/cuda.h"

namespace fastdl::cuda {

inline cudaStream_t as_stream(Stream s) { return static_cast<cudaStream_t>(s); }

// Blocks for a grid-stride loop over n elements: enough to fill the device, never more than
// the elements need.
inline unsigned grid_for(int64_t n, int threads) {
  const int64_t blocks = (n + threads - 1) / threads;
  const int64_t most = 132 * 32;  // several waves on the largest parts; the loop covers the rest
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks < most ? blocks : most));
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
  return v;
}

// The sum of v over the block (blockDim.x a multiple of 32, at most 1024), in every thread.
// `shared` holds 32 floats; the block must reach this call together.
__device__ __forceinline__ float block_sum(float v, float* shared) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // `shared` may still be read by a previous call
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  const int warps = blockDim.x >> 5;
  v = lane < warps ? shared[lane] : 0.0f;
  return warp_sum(v);
}

// As block_sum, for the max (NaN propagates through fmaxf only when every value is NaN; the
// callers that need NaN to propagate test for it separately).
__device__ __forceinline__ float block_max(float v, float* shared) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  const int warps = blockDim.x >> 5;
  v = lane < warps ? shared[lane] : -INFINITY;
  return warp_max(v);
}

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

}  // namespace fastdl::cuda
