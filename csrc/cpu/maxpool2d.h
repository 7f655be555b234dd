// maxpool2d kernels (csrc/cpu/maxpool2d.cpp): 2-D max pooling with argmax indices, float32.
//
// x is (N, C, H, W), y and indices are (N, C, P, Q), P = (H + 2ph - R) / sh + 1 (floor),
// Q likewise. The caller (the binding) has checked every size: R, S, sh, sw >= 1,
// 0 <= ph <= R / 2, 0 <= pw <= S / 2, P, Q >= 1, so every window holds at least one
// element of the input.
#pragma once
#include <cstdint>

namespace fastdl::cpu {

// x is (N,C,H,W); y is (N,C,P,Q); indices is (N,C,P,Q), each the flat h * W + w of its max in
// its (H, W) plane. Ties keep the first element in row-major window order; a window holding
// NaNs yields NaN and the index of its last NaN (PyTorch's CPU kernel).
void maxpool2d_forward(float* y, int64_t* indices, const float* x, int64_t N, int64_t C,
                       int64_t H, int64_t W, int64_t P, int64_t Q, int64_t R, int64_t S,
                       int64_t sh, int64_t sw, int64_t ph, int64_t pw);

// dy and indices are (NC, PQ) (planes of PQ outputs); dx is (NC, HW), set to zeros and then each
// dy added at its index within its plane. Returns -1, or the flat position in `indices` of the
// first index outside [0, HW) (such entries are skipped, never written).
int64_t maxpool2d_backward(float* dx, const float* dy, const int64_t* indices, int64_t NC,
                           int64_t HW, int64_t PQ);

}  // namespace fastdl::cpu
