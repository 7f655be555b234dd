// pool kernels (csrc/cpu/pool.cpp): average pooling, adaptive average pooling and adaptive max
// pooling over (N, C, H, W) planes, float32, with PyTorch's windows and divisors.
//
// x is (N, C, H, W), y (N, C, P, Q). The caller (the binding) has checked every size: H, W >= 1,
// P, Q >= 1, and for avgpool2d R, S, sh, sw >= 1, 0 <= ph <= R / 2, 0 <= pw <= S / 2, with P, Q
// from PyTorch's rule (ceil_mode included), so that every window holds an input element.
#pragma once
#include <cstdint>

#include "cpu/dispatch.h"

namespace fastdl::cpu {

// x is (N,C,H,W); y is (N,C,P,Q). Output (p, q) averages rows [p*sh - ph, p*sh - ph + R) and
// columns [q*sw - pw, q*sw - pw + S), clipped to the input; its divisor is divisor_override when
// non-zero, else the window clipped to the padded input (count_include_pad: padding counts, a
// ceil-mode overhang does not) or to the input.
void avgpool2d_forward(float* y, const float* x, int64_t N, int64_t C, int64_t H, int64_t W,
                       int64_t P, int64_t Q, int64_t R, int64_t S, int64_t sh, int64_t sw,
                       int64_t ph, int64_t pw, bool count_include_pad, int64_t divisor_override);

// dy is (N,C,P,Q); dx is (N,C,H,W): each dy over its divisor, added to every element of its
// window.
void avgpool2d_backward(float* dx, const float* dy, int64_t N, int64_t C, int64_t H, int64_t W,
                        int64_t P, int64_t Q, int64_t R, int64_t S, int64_t sh, int64_t sw,
                        int64_t ph, int64_t pw, bool count_include_pad, int64_t divisor_override);

// x is (N,C,H,W); y is (N,C,P,Q): the mean of PyTorch's adaptive window, rows
// [floor(p * H / P), ceil((p + 1) * H / P)) and columns likewise. P * H and Q * W fit int64.
void adaptive_avgpool2d_forward(float* y, const float* x, int64_t N, int64_t C, int64_t H,
                                int64_t W, int64_t P, int64_t Q);

// dy is (N,C,P,Q); dx is (N,C,H,W).
void adaptive_avgpool2d_backward(float* dx, const float* dy, int64_t N, int64_t C, int64_t H,
                                 int64_t W, int64_t P, int64_t Q);

// x is (N,C,H,W); y and indices are (N,C,P,Q) over the adaptive windows; indices hold the flat
// h * W + w of each max in its plane, with maxpool2d's rule for ties and NaN (keep_max). The
// backward is maxpool2d_backward.
void adaptive_maxpool2d_forward(float* y, int64_t* indices, const float* x, int64_t N, int64_t C,
                                int64_t H, int64_t W, int64_t P, int64_t Q);

// One ISA build's average-pooling bodies (pool_kernels.cpp), on planes [n0, n1) of (NC, H, W)
// input and (NC, P, Q) output. rows holds P pairs [lo, hi) of input rows, cols Q pairs of input
// columns (clipped to the input, non-empty); divisor is (P, Q); row is scratch of W + Q floats.
struct PoolKernels {
  void (*avg_forward)(float* y, const float* x, int64_t H, int64_t W, int64_t P, int64_t Q,
                      const int64_t* rows, const int64_t* cols, const float* divisor, float* row,
                      int64_t n0, int64_t n1);
  void (*avg_backward)(float* dx, const float* dy, int64_t H, int64_t W, int64_t P, int64_t Q,
                       const int64_t* rows, const int64_t* cols, const float* divisor,
                       float* row, int64_t n0, int64_t n1);
};

}  // namespace fastdl::cpu

FASTDL_PER_ISA(const PoolKernels& pool_kernels())
