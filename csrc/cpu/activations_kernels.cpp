// Activation bodies, compiled once per ISA (see dispatch.h): ReLU, sigmoid, tanh, forward and
// backward, float32, on one contiguous chunk of n floats on the calling thread.
// activations.cpp splits arrays across threads and calls the active ISA's table.
//
// Shapes: every array holds n floats. Backward passes take the forward's output y.
// Variants: one source, vectors of kW = 4 / 8 / 16 lanes (baseline / avx2 / avx512); the tail
// (n % kW) uses the same vector code through masked loads and stores, so every element gets the
// same arithmetic whatever n and the thread split are.
// The exp, sigmoid and tanh vector math is cpu/simd_math.h (shared with rnn_kernels.cpp).
// Tests: tests/test_kernels_activations.py (parity), tests/test_kernels_simd.py (every ISA,
// ulp error against float64). Bench: bench/ (activations).
#include "cpu/activations.h"
#include "cpu/simd.h"
#include "cpu/simd_math.h"

namespace fastdl::cpu::FASTDL_ISA {

namespace {

// y[i] = f(x[i]) for i < n, full vectors then one masked tail.
template <typename F>
inline void map_unary(float* __restrict y, const float* __restrict x, int64_t n, F f) {
  int64_t i = 0;
  for (; i + kW <= n; i += kW) store(y + i, f(load(x + i)));
  if (i < n) {
    const int rest = static_cast<int>(n - i);
    store_first(y + i, f(load_first(x + i, rest)), rest);
  }
}

// dx[i] = f(dy[i], y[i]) for i < n.
template <typename F>
inline void map_binary(float* __restrict dx, const float* __restrict dy,
                       const float* __restrict y, int64_t n, F f) {
  int64_t i = 0;
  for (; i + kW <= n; i += kW) store(dx + i, f(load(dy + i), load(y + i)));
  if (i < n) {
    const int rest = static_cast<int>(n - i);
    store_first(dx + i, f(load_first(dy + i, rest), load_first(y + i, rest)), rest);
  }
}

// ---- the table's entries: every array holds n floats ----

void relu_forward(float* y, const float* x, int64_t n) { map_unary(y, x, n, relu_ps); }

void relu_backward(float* dx, const float* dy, const float* y, int64_t n) {
  map_binary(dx, dy, y, n, [](vf g, vf out) { return (vf)((out > 0.0f) & (vi)g); });
}

void sigmoid_forward(float* y, const float* x, int64_t n) { map_unary(y, x, n, sigmoid_ps); }

void sigmoid_backward(float* dx, const float* dy, const float* y, int64_t n) {
  map_binary(dx, dy, y, n, [](vf g, vf out) { return g * out * (1.0f - out); });
}

void tanh_forward(float* y, const float* x, int64_t n) { map_unary(y, x, n, tanh_ps); }

void tanh_backward(float* dx, const float* dy, const float* y, int64_t n) {
  map_binary(dx, dy, y, n, [](vf g, vf out) { return g * (1.0f - out * out); });
}

void exp_forward(float* y, const float* x, int64_t n) { map_unary(y, x, n, exp_ps); }

constexpr ActivationKernels kActivations = {
    relu_forward,  relu_backward, sigmoid_forward, sigmoid_backward,
    tanh_forward,  tanh_backward, exp_forward,
};

}  // namespace

const ActivationKernels& activation_kernels() { return kActivations; }

}  // namespace fastdl::cpu::FASTDL_ISA
