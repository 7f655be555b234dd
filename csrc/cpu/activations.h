// Activations: ReLU, sigmoid and tanh forward and backward (csrc/cpu/activations.cpp threads
// them; activations_kernels.cpp holds the per-ISA bodies). Plain C++17 on raw pointers with
// explicit sizes, arguments ordered outputs, inputs, sizes; they never see Python (the bindings
// in csrc/bindings/ check every argument first).
#pragma once
#include <cstdint>

#include "cpu/dispatch.h"

namespace fastdl::cpu {

// ---- activations (csrc/cpu/activations.cpp); all arrays hold n floats ----
// Threaded over the array; the math is the active ISA's (activations_kernels.cpp).
void relu_forward(float* y, const float* x, int64_t n);
void relu_backward(float* dx, const float* dy, const float* y, int64_t n);
void sigmoid_forward(float* y, const float* x, int64_t n);
void sigmoid_backward(float* dx, const float* dy, const float* y, int64_t n);
void tanh_forward(float* y, const float* x, int64_t n);
void tanh_backward(float* dx, const float* dy, const float* y, int64_t n);
// y = e^x, the vectorised exp under sigmoid and tanh (for tests and benchmarks).
void exp_forward(float* y, const float* x, int64_t n);

// One ISA build's activation bodies (activations_kernels.cpp), each on one chunk of n floats
// on the calling thread.
struct ActivationKernels {
  void (*relu_forward)(float* y, const float* x, int64_t n);
  void (*relu_backward)(float* dx, const float* dy, const float* y, int64_t n);
  void (*sigmoid_forward)(float* y, const float* x, int64_t n);
  void (*sigmoid_backward)(float* dx, const float* dy, const float* y, int64_t n);
  void (*tanh_forward)(float* y, const float* x, int64_t n);
  void (*tanh_backward)(float* dx, const float* dy, const float* y, int64_t n);
  void (*exp_forward)(float* y, const float* x, int64_t n);
};

}  // namespace fastdl::cpu

FASTDL_PER_ISA(const ActivationKernels& activation_kernels())
