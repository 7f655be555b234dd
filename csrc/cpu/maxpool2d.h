// maxpool2d kernels (csrc/cpu/maxpool2d.cpp): 2-D max pooling with argmax indices, float32.
//
// x is (N, C, H, W), y and indices are (N, C, P, Q), P = (H + 2ph - R) / sh + 1 (floor),
// Q likewise. The caller (the binding) has checked every size: R, S, sh, sw >= 1,
// 0 <= ph <= R / 2, 0 <= pw <= S / 2, P, Q >= 1, so every window holds at least one
// element of the input.
#pragma once
#include <algorithm>
#include <cstdint>

namespace fastdl::cpu {

// The running-max update of max pooling (also adaptive_maxpool2d's): v at `pos` replaces `best`
// when strictly greater (ties keep the first) or NaN (a later NaN replaces an earlier one, giving
// the last NaN's position, as PyTorch's CPU kernel does). Compiled to maxss and cmov; NaN takes
// a rarely-taken branch. For compiled-once files only (see simd.h on per-ISA inline functions).
template <typename Pos>
inline void keep_max(float v, Pos pos, float& best, Pos& best_pos) {
  if (v != v) {
    best = v;
    best_pos = pos;
    return;
  }
  best_pos = v > best ? pos : best_pos;
  best = std::max(best, v);  // the same select for non-NaN v, but GCC keeps this one branch-free
}

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
