// cross_entropy: fused softmax cross-entropy forward (loss and log-probabilities) and backward
// (gradient of the loss with respect to the logits), float32.
//
// Shapes: logits, log_probs, dlogits (N, C); target (N,) int64 class indices, or (N, C) float32
// class probabilities; weight (C,) or none; loss and dloss (N,) for reduction "none", else one
// value. Variants: index targets (ignore_index, weights; "mean" divides by the summed weight of
// the samples not ignored) and probability targets ("mean" divides by N).
// Each row is one pass over the logits for the max, one for the sum of exponentials and one
// writing log-probabilities (the active ISA's cross_entropy_kernels.cpp, vectorised); the loss is
// read off the row while it is in L1. Stable for any finite logits: exponentials only ever see
// x - max <= 0. Threads split rows.
// Tests: tests/test_kernels_cross_entropy.py. Bench: bench/kernels.py (cross_entropy).
#include "cpu/cross_entropy.h"
#include "cpu/parallel.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace fastdl::cpu {

namespace {

// Below this many logits a second thread costs more than it saves (half parallel.h's
// kParallelMin: each logit costs an exp, not one load and store).
constexpr int64_t kLogitsParallelMin = kParallelMin / 2;

const CrossEntropyKernels& active() { return FASTDL_ACTIVE(CrossEntropyKernels, cross_entropy_kernels); }

inline bool out_of_range(int64_t t, int64_t C) {
  return static_cast<uint64_t>(t) >= static_cast<uint64_t>(C);
}

}  // namespace

// logits, log_probs are (N,C); target is (N,) int64; weight is (C,) or null; loss is (N,) or (1,).
int64_t cross_entropy_forward(float* loss, float* log_probs, const float* logits,
                              const int64_t* target, const float* weight, int64_t N, int64_t C,
                              Reduction reduction, int64_t ignore_index) {
  const CrossEntropyKernels& k = active();
  double total = 0.0, weight_sum = 0.0;
  int64_t first_bad = N;
#pragma omp parallel for schedule(static) num_threads(get_num_threads()) \
    reduction(+ : total, weight_sum) \
    reduction(min : first_bad) if (N * C >= kLogitsParallelMin)
  for (int64_t i = 0; i < N; ++i) {
    float* lp = log_probs + i * C;
    k.log_softmax_row(lp, logits + i * C, C);
    const int64_t t = target[i];
    float l = 0.0f;
    if (t != ignore_index) {
      if (out_of_range(t, C)) {
        first_bad = std::min(first_bad, i);
      } else {
        const float w = weight ? weight[t] : 1.0f;
        l = -w * lp[t];
        weight_sum += w;
      }
    }
    if (reduction == Reduction::kNone) loss[i] = l;
    total += l;
  }
  if (first_bad < N) return first_bad;
  // NOTE: "mean" with every sample ignored is 0 / 0 = NaN, as in PyTorch.
  if (reduction == Reduction::kSum) loss[0] = static_cast<float>(total);
  if (reduction == Reduction::kMean) loss[0] = static_cast<float>(total / weight_sum);
  return -1;
}

// logits, log_probs, target are (N,C); weight is (C,) or null; loss is (N,) or (1,).
void cross_entropy_forward(float* loss, float* log_probs, const float* logits,
                           const float* target, const float* weight, int64_t N, int64_t C,
                           Reduction reduction) {
  const CrossEntropyKernels& k = active();
  double total = 0.0;
#pragma omp parallel for schedule(static) num_threads(get_num_threads()) \
    reduction(+ : total) if (N * C >= kLogitsParallelMin)
  for (int64_t i = 0; i < N; ++i) {
    float* lp = log_probs + i * C;
    const float* t = target + i * C;
    k.log_softmax_row(lp, logits + i * C, C);
    double dot = 0.0;  // sum_c w[c] * t[c] * lp[c], read while the row is in L1
    for (int64_t c = 0; c < C; ++c) {
      const float wt = weight ? weight[c] * t[c] : t[c];
      dot += static_cast<double>(wt) * lp[c];
    }
    const float l = static_cast<float>(-dot);
    if (reduction == Reduction::kNone) loss[i] = l;
    total += l;
  }
  if (reduction == Reduction::kSum) loss[0] = static_cast<float>(total);
  if (reduction == Reduction::kMean) loss[0] = static_cast<float>(total / static_cast<double>(N));
}

// dlogits, log_probs are (N,C); target is (N,) int64; weight is (C,) or null; dloss (N,) or (1,).
int64_t cross_entropy_backward(float* dlogits, const float* dloss, const float* log_probs,
                               const int64_t* target, const float* weight, int64_t N, int64_t C,
                               Reduction reduction, int64_t ignore_index) {
  // A short pass over the targets: check them all and sum the weights "mean" divides by,
  // before any row is written.
  double weight_sum = 0.0;
  int64_t first_bad = N;
#pragma omp parallel for schedule(static) num_threads(get_num_threads()) \
    reduction(+ : weight_sum) reduction(min : first_bad) \
    if (N >= kLogitsParallelMin)
  for (int64_t i = 0; i < N; ++i) {
    const int64_t t = target[i];
    if (t == ignore_index) continue;
    if (out_of_range(t, C)) {
      first_bad = std::min(first_bad, i);
    } else {
      weight_sum += weight ? weight[t] : 1.0f;
    }
  }
  if (first_bad < N) return first_bad;

  const CrossEntropyKernels& k = active();
  float g_all = 0.0f;  // the upstream gradient of every sample, for "sum" and "mean"
  if (reduction == Reduction::kSum) g_all = dloss[0];
  if (reduction == Reduction::kMean) g_all = static_cast<float>(dloss[0] / weight_sum);

#pragma omp parallel for schedule(static) num_threads(get_num_threads()) if (N * C >= kLogitsParallelMin)
  for (int64_t i = 0; i < N; ++i) {
    float* d = dlogits + i * C;
    const float* lp = log_probs + i * C;
    const int64_t t = target[i];
    if (t == ignore_index) {
      std::memset(d, 0, sizeof(float) * C);
      continue;
    }
    const float g = reduction == Reduction::kNone ? dloss[i] : g_all;
    const float coef = g * (weight ? weight[t] : 1.0f);
    k.softmax_scaled_row(d, lp, C, coef);
    d[t] = coef * (std::exp(lp[t]) - 1.0f);
  }
  return -1;
}

// dlogits, log_probs, target are (N,C); weight is (C,) or null; dloss is (N,) or (1,).
void cross_entropy_backward(float* dlogits, const float* dloss, const float* log_probs,
                            const float* target, const float* weight, int64_t N, int64_t C,
                            Reduction reduction) {
  const CrossEntropyKernels& k = active();
  float g_all = 0.0f;
  if (reduction == Reduction::kSum) g_all = dloss[0];
  if (reduction == Reduction::kMean) g_all = static_cast<float>(dloss[0] / static_cast<double>(N));

#pragma omp parallel for schedule(static) num_threads(get_num_threads()) if (N * C >= kLogitsParallelMin)
  for (int64_t i = 0; i < N; ++i) {
    float* d = dlogits + i * C;
    const float* lp = log_probs + i * C;
    const float* t = target + i * C;
    const float g = reduction == Reduction::kNone ? dloss[i] : g_all;
    // d/dx_c of -sum_k w_k t_k lp_k is softmax_c * sum_k(w_k t_k) - w_c t_c.
    double target_mass = 0.0;
    for (int64_t c = 0; c < C; ++c) target_mass += weight ? weight[c] * t[c] : t[c];
    k.softmax_minus_target_row(d, lp, t, weight, C, g, static_cast<float>(target_mass));
  }
}

}  // namespace fastdl::cpu
