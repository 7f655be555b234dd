// fastdl CPU kernels: declarations of every kernel family in csrc/cpu/.
//
// Plain C++17 functions on raw pointers with explicit sizes. Argument order:
// outputs, inputs, sizes. They never see Python; the bindings (csrc/bindings.cpp)
// check every argument before calling them. Sizes are int64_t throughout.
#pragma once
#include <cstdint>

namespace fastdl::cpu {

// ---- threads (csrc/cpu/parallel.cpp) ----
void set_num_threads(int n);
int get_num_threads();

// ---- activations (csrc/cpu/activations.cpp); all arrays hold n floats ----
void relu_forward(float* y, const float* x, int64_t n);
void relu_backward(float* dx, const float* dy, const float* y, int64_t n);
void sigmoid_forward(float* y, const float* x, int64_t n);
void sigmoid_backward(float* dx, const float* dy, const float* y, int64_t n);
void tanh_forward(float* y, const float* x, int64_t n);
void tanh_backward(float* dx, const float* dy, const float* y, int64_t n);

}  // namespace fastdl::cpu
