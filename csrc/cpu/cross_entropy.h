// cross_entropy kernels (csrc/cpu/cross_entropy.cpp): fused log-softmax + negative
// log-likelihood over rows of logits, float32.
//
// logits and log_probs are (N, C). The target is either int64 class indices (N,) (with an
// ignore_index and optional per-class weights) or float32 class probabilities (N, C). The caller
// (the binding) has checked shapes, C >= 1 and the reduction; index targets are checked here,
// in the same pass that uses them.
#pragma once
#include <cstdint>

#include "cpu/dispatch.h"

namespace fastdl::cpu {

enum class Reduction { kNone, kSum, kMean };

// logits, log_probs are (N,C); target is (N,) int64; weight is (C,) or null; loss is (N,) for
// kNone, else (1,). Returns -1, or the first row whose target is neither in [0, C) nor
// ignore_index (the outputs are then unspecified).
int64_t cross_entropy_forward(float* loss, float* log_probs, const float* logits,
                              const int64_t* target, const float* weight, int64_t N, int64_t C,
                              Reduction reduction, int64_t ignore_index);

// logits, log_probs, target are (N,C) (target holds probabilities); weight is (C,) or null;
// loss is (N,) for kNone, else (1,).
void cross_entropy_forward(float* loss, float* log_probs, const float* logits,
                           const float* target, const float* weight, int64_t N, int64_t C,
                           Reduction reduction);

// dlogits, log_probs are (N,C); target is (N,) int64; weight is (C,) or null; dloss is (N,) for
// kNone, else (1,). Returns -1, or the first row with an out-of-range target.
int64_t cross_entropy_backward(float* dlogits, const float* dloss, const float* log_probs,
                               const int64_t* target, const float* weight, int64_t N, int64_t C,
                               Reduction reduction, int64_t ignore_index);

// dlogits, log_probs, target are (N,C) (target holds probabilities); weight is (C,) or null;
// dloss is (N,) for kNone, else (1,).
void cross_entropy_backward(float* dlogits, const float* dloss, const float* log_probs,
                            const float* target, const float* weight, int64_t N, int64_t C,
                            Reduction reduction);

}  // namespace fastdl::cpu

namespace fastdl::cpu {

// One ISA build's row bodies (cross_entropy_kernels.cpp); every row holds C floats.
struct CrossEntropyKernels {
  // lp = x - max - log(sum(exp(x - max))).
  void (*log_softmax_row)(float* lp, const float* x, int64_t C);
  // d = coef * exp(lp).
  void (*softmax_scaled_row)(float* d, const float* lp, int64_t C, float coef);
  // d = g * (exp(lp) * mass - w * t); w may be null (all ones).
  void (*softmax_minus_target_row)(float* d, const float* lp, const float* t, const float* w,
                                   int64_t C, float g, float mass);
};

}  // namespace fastdl::cpu

FASTDL_PER_ISA(const CrossEntropyKernels& cross_entropy_kernels())
