// optim kernels (csrc/cpu/optim.cpp): fused in-place SGD and Adam/AdamW steps over every
// parameter of an optimizer in one call, float32.
//
// Each optimizer holds `count` parameter tensors; tensor j has sizes[j] elements, and
// params[j], grads[j] and each state buffer [j] point at that many floats. The caller (the
// binding) has checked the pointers, sizes and hyperparameters, and that no two written
// buffers overlap.
#pragma once
#include <cstdint>

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

// params[j], grads[j], momentum_buffers[j] each hold sizes[j] floats, j in [0, count);
// momentum_buffers may be null when opt.momentum == 0.
void sgd_step(float* const* params, const float* const* grads, float* const* momentum_buffers,
              const int64_t* sizes, int64_t count, const SgdOptions& opt);

// params[j], grads[j], exp_avgs[j], exp_avg_sqs[j] each hold sizes[j] floats, j in [0, count).
void adam_step(float* const* params, const float* const* grads, float* const* exp_avgs,
               float* const* exp_avg_sqs, const int64_t* sizes, int64_t count,
               const AdamOptions& opt);

}  // namespace fastdl::cpu
