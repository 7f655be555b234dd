// maxpool2d on CUDA: forward with int64 argmax indices (h * W + w in the plane, PyTorch's
// return_indices) and PyTorch's NaN rule (a window holding NaN yields NaN and its last NaN's
// index; ties pick the first in row-major order); backward scatters dy onto dx at the indices
// with atomic adds (overlapping windows accumulate). One thread per output element.
// Tests: tests/test_cuda_kernels.py; bench: bench/gpu_check.py (the CNN step).
#include "cuda/common.cuh"

namespace fastdl::cuda {

namespace {

__global__ void maxpool2d_forward_kernel(float* y, int64_t* indices, const float* x, PoolShape s) {
  const int64_t total = s.planes * s.P * s.Q;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t plane = i / (s.P * s.Q), pq = i % (s.P * s.Q);
    const int64_t h0 = (pq / s.Q) * s.sh - s.ph, w0 = (pq % s.Q) * s.sw - s.pw;
    const float* xp = x + plane * s.H * s.W;
    float best = -INFINITY;
    int64_t arg = -1;
    for (int64_t r = 0; r < s.R; ++r) {
      const int64_t h = h0 + r;
      if (h < 0 || h >= s.H) continue;  // padding is -inf: never selected
      for (int64_t c = 0; c < s.S; ++c) {
        const int64_t w = w0 + c;
        if (w < 0 || w >= s.W) continue;
        const float v = __ldg(xp + h * s.W + w);
        if (v > best || v != v || arg < 0) {
          best = v;
          arg = h * s.W + w;
        }
      }
    }
    y[i] = best;
    indices[i] = arg < 0 ? 0 : arg;
  }
}

__global__ void maxpool2d_backward_kernel(float* dx, const float* dy, const int64_t* indices,
                                          PoolShape s) {
  const int64_t total = s.planes * s.P * s.Q, HW = s.H * s.W;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t at = indices[i];
    // NOTE: an index outside the plane is skipped (checking it on the host would need a sync).
    if (at >= 0 && at < HW) atomicAdd(dx + (i / (s.P * s.Q)) * HW + at, dy[i]);
  }
}

}  // namespace

// x (planes, H, W) -> y, indices (planes, P, Q).
void maxpool2d_forward(float* y, int64_t* indices, const float* x, const PoolShape& s,
                       Stream stream) {
  const int64_t total = s.planes * s.P * s.Q;
  if (total == 0) return;
  maxpool2d_forward_kernel<<<grid_for(total, 256), 256, 0, as_stream(stream)>>>(y, indices, x, s);
  check_launch("maxpool2d_forward", stream);
}

// dy, indices (planes, P, Q) -> dx (planes, H, W).
void maxpool2d_backward(float* dx, const float* dy, const int64_t* indices, const PoolShape& s,
                        Stream stream) {
  const cudaStream_t st = as_stream(stream);
  cudaMemsetAsync(dx, 0, sizeof(float) * s.planes * s.H * s.W, st);
  const int64_t total = s.planes * s.P * s.Q;
  if (total > 0) maxpool2d_backward_kernel<<<grid_for(total, 256), 256, 0, st>>>(dx, dy, indices, s);
  check_launch("maxpool2d_backward", stream);
}

}  // namespace fastdl::cuda
