// fastdl CPU kernels: declarations of the thread controls and the activation kernels
// (the other families have their own header: gemm.h, conv2d.h, maxpool2d.h, ...).
//
// Plain C++17 functions on raw pointers with explicit sizes. Argument order:
// outputs, inputs, sizes. They never see Python; the bindings (csrc/bindings/) check every
// argument before calling them. Sizes are int64_t throughout.
#pragma once
#include <cstdint>

#include "cpu/dispatch.h"

namespace fastdl::cpu {

// ---- threads (csrc/cpu/parallel.cpp) ----
// One process-wide count, read by every parallel region; set_num_threads clamps it to
// [1, max_num_threads()] (the binding refuses counts outside that range).
void set_num_threads(int n);
int get_num_threads();
int max_num_threads();

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
