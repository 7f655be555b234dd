// optim kernels (csrc/cpu/optim.cpp): fused in-place SGD, Adam/AdamW (with AMSGrad), RMSprop,
// Adagrad and NAdam steps over every parameter of an optimizer in one call, float32.
//
// Each optimizer holds `count` parameter tensors; tensor j has sizes[j] elements, and
// params[j], grads[j] and each state buffer [j] point at that many floats. The caller (the
// binding) has checked the pointers, sizes and hyperparameters, and that no two written
// buffers overlap.
#pragma once
#include <cstdint>

#include "cpu/dispatch.h"

namespace fastdl::cpu {

struct SgdOptions {
  float lr = 0.0f;
  float momentum = 0.0f;
  float dampening = 0.0f;
  float weight_decay = 0.0f;
  bool nesterov = false;
  bool maximize = false;
  bool first_step = false;  // momentum buffers are set to the gradient, not updated
};

struct AdamOptions {
  double lr = 0.0;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  int64_t step = 1;          // the step count after incrementing, >= 1
  bool decoupled = false;    // AdamW: p *= 1 - lr * weight_decay, instead of g += wd * p
  bool maximize = false;
};

struct RmspropOptions {
  float lr = 0.01f;
  float alpha = 0.99f;
  float eps = 1e-8f;
  float weight_decay = 0.0f;
  float momentum = 0.0f;
  bool centered = false;
  bool maximize = false;
};

struct AdagradOptions {
  double lr = 0.01;
  double lr_decay = 0.0;
  double weight_decay = 0.0;
  double eps = 1e-10;
  int64_t step = 1;  // the step count after incrementing, >= 1
  bool maximize = false;
};

struct NadamOptions {
  double lr = 2e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  double momentum_decay = 4e-3;
  double mu_product = 0.0;  // prod of mu_t over steps 1..step, this step's included
  int64_t step = 1;         // the step count after incrementing, >= 1
  bool decoupled = false;   // p *= 1 - lr * weight_decay, instead of g += wd * p
  bool maximize = false;
};

// params[j], grads[j], momentum_buffers[j] each hold sizes[j] floats, j in [0, count);
// momentum_buffers may be null when opt.momentum == 0.
void sgd_step(float* const* params, const float* const* grads, float* const* momentum_buffers,
              const int64_t* sizes, int64_t count, const SgdOptions& opt);

// params[j], grads[j], exp_avgs[j], exp_avg_sqs[j], max_exp_avg_sqs[j] each hold sizes[j]
// floats, j in [0, count); max_exp_avg_sqs is null unless AMSGrad.
void adam_step(float* const* params, const float* const* grads, float* const* exp_avgs,
               float* const* exp_avg_sqs, float* const* max_exp_avg_sqs, const int64_t* sizes,
               int64_t count, const AdamOptions& opt);

// params[j], grads[j], square_avgs[j], grad_avgs[j], momentum_buffers[j] each hold sizes[j]
// floats; grad_avgs is null unless centered, momentum_buffers null when momentum == 0.
void rmsprop_step(float* const* params, const float* const* grads, float* const* square_avgs,
                  float* const* grad_avgs, float* const* momentum_buffers, const int64_t* sizes,
                  int64_t count, const RmspropOptions& opt);

// params[j], grads[j], state_sums[j] each hold sizes[j] floats.
void adagrad_step(float* const* params, const float* const* grads, float* const* state_sums,
                  const int64_t* sizes, int64_t count, const AdagradOptions& opt);

// params[j], grads[j], exp_avgs[j], exp_avg_sqs[j] each hold sizes[j] floats.
void nadam_step(float* const* params, const float* const* grads, float* const* exp_avgs,
                float* const* exp_avg_sqs, const int64_t* sizes, int64_t count,
                const NadamOptions& opt);

// Adam's per-step constants, as adam_step derives them from AdamOptions.
struct AdamConstants {
  float sign, wd, decay, b1, one_minus_b1, b2, one_minus_b2, step_size, inv_bc2_sqrt, eps;
};

// Adam's per-step constants from its options (optim.cpp): the CPU loops and the CUDA kernel
// (csrc/cuda/optim.cu) both take them from here, so they round alike.
AdamConstants adam_constants(const AdamOptions& opt);

// p, grad, m, v, vmax are (n,): one slice of one tensor; vmax is null unless AMSGrad.
using AdamSlice = void (*)(float* p, const float* grad, float* m, float* v, float* vmax,
                           int64_t n, const AdamConstants& k);

// One ISA build's element loops (optim_kernels.cpp): adam_slice[coupled decay][AMSGrad].
struct OptimKernels {
  AdamSlice adam_slice[2][2];
};

}  // namespace fastdl::cpu

FASTDL_PER_ISA(const OptimKernels& optim_kernels())
