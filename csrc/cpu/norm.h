// norm kernels (csrc/cpu/norm.cpp): standardisation over groups, the hot part of batch, layer
// and group normalisation, float32.
//
// x is viewed as (A, C, B); channel c's group is x[:, c, :] (A * B elements): batch norm on
// (N, C, H, W) is A = N, B = H * W; layer norm on (rows, cols) is A = 1, C = rows, B = cols;
// group norm is layer norm on (N * G, rest). mean, var and rstd are (C,); var is biased and
// rstd = 1 / sqrt(var + eps). An empty group (A * B = 0) has NaN mean, var and rstd.
#pragma once
#include <cstdint>

#include "cpu/dispatch.h"

namespace fastdl::cpu {

// x, y are (A,C,B); mean, var, rstd are (C,). y = (x - mean) * rstd.
void norm_forward(float* y, float* mean, float* var, float* rstd, const float* x, int64_t A,
                  int64_t C, int64_t B, float eps);

// dy, x, dx are (A,C,B); mean, rstd are (C,). With x_hat = (x - mean) * rstd and means over each
// group: dx = (dy - mean(dy) - x_hat * mean(dy * x_hat)) * rstd.
void norm_backward(float* dx, const float* dy, const float* x, const float* mean,
                   const float* rstd, int64_t A, int64_t C, int64_t B);

// One ISA build's bodies (norm_kernels.cpp): channels [c0, c1) on the calling thread.
struct NormKernels {
  void (*forward)(float* y, float* mean, float* var, float* rstd, const float* x, int64_t A,
                  int64_t C, int64_t B, float eps, int64_t c0, int64_t c1);
  void (*backward)(float* dx, const float* dy, const float* x, const float* mean,
                   const float* rstd, int64_t A, int64_t C, int64_t B, int64_t c0, int64_t c1);
};

}  // namespace fastdl::cpu

FASTDL_PER_ISA(const NormKernels& norm_kernels())
