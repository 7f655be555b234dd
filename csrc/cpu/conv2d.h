// conv2d: 2-D cross-correlation with zero padding, forward and backward, float32
// (csrc/cpu/conv2d.cpp), on top of the GEMM in csrc/cpu/gemm.h.
//
// Shapes: x is (N, C, H, W), w is (K, C, R, S), b is (K,), y and dy are (N, K, P, Q) with
// P = (H + 2 pad_h - R) / stride_h + 1 and Q = (W + 2 pad_w - S) / stride_w + 1.
// Variants: im2col + GEMM (the general case); a 1x1 / stride 1 / no padding kernel skips
// im2col and multiplies the input directly.
// Tests: tests/test_kernels_conv2d.py. Bench: bench/ (conv2d).
#pragma once
#include <cstdint>

namespace fastdl::cpu {

// Every size of one convolution. The bindings fill it and check it (stride >= 1, padding >= 0,
// R <= H + 2 pad_h, S <= W + 2 pad_w, P and Q as above, all products fit int64).
struct Conv2dParams {
  int64_t N, C, H, W;          // input
  int64_t K, R, S;             // weight: output channels, kernel height and width
  int64_t P, Q;                // output height and width
  int64_t stride_h, stride_w;
  int64_t pad_h, pad_w;
};

// Floats of scratch conv2d_forward needs with nthreads threads.
int64_t conv2d_forward_workspace_floats(const Conv2dParams& cp, int nthreads);

// y is (N, K, P, Q); x is (N, C, H, W); w is (K, C, R, S); b is (K,) or nullptr (no bias).
// workspace holds conv2d_forward_workspace_floats(cp, nthreads) floats.
void conv2d_forward(float* y, const float* x, const float* w, const float* b,
                    const Conv2dParams& cp, float* workspace, int nthreads);

// Floats of scratch conv2d_backward needs for the gradients requested.
int64_t conv2d_backward_workspace_floats(const Conv2dParams& cp, bool need_dx, bool need_dw,
                                         int nthreads);

// dx is (N, C, H, W), dw is (K, C, R, S), db is (K,): each computed only when non-null.
// dy is (N, K, P, Q); x is (N, C, H, W) (read only for dw); w is (K, C, R, S) (read only for dx).
// workspace holds conv2d_backward_workspace_floats(cp, dx != nullptr, dw != nullptr, nthreads).
void conv2d_backward(float* dx, float* dw, float* db, const float* dy, const float* x,
                     const float* w, const Conv2dParams& cp, float* workspace, int nthreads);

}  // namespace fastdl::cpu
