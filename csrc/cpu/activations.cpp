// Activations: ReLU, sigmoid, tanh, forward and backward, float32.
//
// Shapes: every array is a flat buffer of n floats (the caller flattens).
// Backward passes take the forward's output y, not its input, so a layer only
// keeps one buffer: relu'(x) = [y > 0], sigmoid' = y(1-y), tanh' = 1-y^2.
// Memory-bound: one pass, threaded above a size where threads pay for themselves.
// Tests: tests/test_kernels_activations.py. Bench: bench/ (activations).
#include <cmath>

#include "cpu/kernels.h"

namespace fastdl::cpu {

namespace {
// Below this many elements a second thread costs more than it saves.
constexpr int64_t kParallelMin = 1 << 15;
}  // namespace

void relu_forward(float* y, const float* x, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    // NOTE: NaN propagates (x > 0 is false for NaN, so select x itself), as in PyTorch.
    y[i] = x[i] > 0.0f ? x[i] : (x[i] != x[i] ? x[i] : 0.0f);
  }
}

void relu_backward(float* dx, const float* dy, const float* y, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

void sigmoid_forward(float* y, const float* x, int64_t n) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = 1.0f / (1.0f + std::exp(-x[i]));
}

void sigmoid_backward(float* dx, const float* dy, const float* y, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * y[i] * (1.0f - y[i]);
}

void tanh_forward(float* y, const float* x, int64_t n) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
}

void tanh_backward(float* dx, const float* dy, const float* y, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * (1.0f - y[i] * y[i]);
}

}  // namespace fastdl::cpu
