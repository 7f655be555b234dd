// Activations: ReLU, sigmoid, tanh, forward and backward, float32 -- the threaded entry points.
//
// Shapes: every array is a flat buffer of n floats (the caller flattens).
// Backward passes take the forward's output y, not its input, so a layer only
// keeps one buffer: relu'(x) = [y > 0], sigmoid' = y(1-y), tanh' = 1-y^2.
// Memory-bound: one pass, split into one contiguous chunk per thread above a size where threads
// pay for themselves. The math lives in activations_kernels.cpp, compiled once per ISA; the
// active ISA's table is picked per call (dispatch.h). Elementwise, so results do not depend on
// the thread count.
// Tests: tests/test_kernels_activations.py, tests/test_kernels_simd.py.
// Bench: bench/ (activations).
#include "cpu/activations.h"

#include <algorithm>

#include "cpu/parallel.h"

namespace fastdl::cpu {

namespace {

// Chunks start on 64-byte boundaries (relative to the array), 16 floats.
constexpr int64_t kChunkAlign = 16;

const ActivationKernels& active() { return FASTDL_ACTIVE(ActivationKernels, activation_kernels); }

// Runs body(lo, hi) over [0, n) in one chunk per thread, each starting on a kChunkAlign boundary.
template <typename Body>
void split(int64_t n, Body body) {
  const int64_t chunks = (n + kChunkAlign - 1) / kChunkAlign;
  split_blocks(chunks, n, [&](int64_t c0, int64_t c1) {
    body(c0 * kChunkAlign, std::min(n, c1 * kChunkAlign));
  });
}

// y = f(x) and dx = f(dy, y), elementwise over [0, n), one chunk per thread.
template <typename Forward>
void forward(Forward f, float* y, const float* x, int64_t n) {
  split(n, [&](int64_t lo, int64_t hi) { f(y + lo, x + lo, hi - lo); });
}

template <typename Backward>
void backward(Backward f, float* dx, const float* dy, const float* y, int64_t n) {
  split(n, [&](int64_t lo, int64_t hi) { f(dx + lo, dy + lo, y + lo, hi - lo); });
}

}  // namespace

void relu_forward(float* y, const float* x, int64_t n) { forward(active().relu_forward, y, x, n); }

void relu_backward(float* dx, const float* dy, const float* y, int64_t n) {
  backward(active().relu_backward, dx, dy, y, n);
}

void sigmoid_forward(float* y, const float* x, int64_t n) {
  forward(active().sigmoid_forward, y, x, n);
}

void sigmoid_backward(float* dx, const float* dy, const float* y, int64_t n) {
  backward(active().sigmoid_backward, dx, dy, y, n);
}

void tanh_forward(float* y, const float* x, int64_t n) { forward(active().tanh_forward, y, x, n); }

void tanh_backward(float* dx, const float* dy, const float* y, int64_t n) {
  backward(active().tanh_backward, dx, dy, y, n);
}

void exp_forward(float* y, const float* x, int64_t n) { forward(active().exp_forward, y, x, n); }

}  // namespace fastdl::cpu
