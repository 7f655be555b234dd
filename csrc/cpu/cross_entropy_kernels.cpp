// cross_entropy row bodies, compiled once per ISA (see dispatch.h): the log-softmax of one row
// and the three gradient rows, float32, on simd.h's vectors with simd_math.h's exp (about 1 ulp).
// cross_entropy.cpp handles targets, weights, reductions and threads and calls the active ISA's
// table.
//
// Shapes: every row holds C floats. A row of a wide batch (C = 1000: 4 KB) stays in L1, so the
// passes after the first read it from there: one pass for the max, one for the sum of
// exponentials, one writing log-probabilities; the gradient is one pass over the log-probs.
// Sums run in float vectors over blocks of kSumBlock floats and in double across blocks.
// Tails (C % kW) use masked loads and stores. NaN anywhere gives a NaN row, as in the reference.
// Tests: tests/test_kernels_cross_entropy.py, tests/test_kernels_simd.py (every ISA).
// Bench: bench/kernels.py (cross_entropy).
#include "cpu/cross_entropy.h"
#include "cpu/simd.h"
#include "cpu/simd_math.h"

namespace fastdl::cpu::FASTDL_ISA {

namespace {

constexpr int64_t kSumBlock = 1024;

// The first n lanes (n < kW) of x, the others `fill`.
inline vf load_first_or(const float* x, int n, float fill) {
  return select(lane_index() < n, load_first(x, n), splat(fill));
}

// x and lp are (C,): lp = x - max - log(sum(exp(x - max))).
void log_softmax_row(float* lp, const float* x, int64_t C) {
  const int64_t full = C / kW * kW;
  const int tail = static_cast<int>(C - full);
  // NaN: max drops it, but exp(NaN - m) is NaN, so the sum and every lp are NaN.
  vf mv = splat(-__builtin_inff());
  for (int64_t c = 0; c < full; c += kW) {
    const vf v = load(x + c);
    mv = select(v > mv, v, mv);
  }
  if (tail) {
    const vf v = load_first_or(x + full, tail, -__builtin_inff());
    mv = select(v > mv, v, mv);
  }
  float m = mv[0];
  for (int i = 1; i < kW; ++i) m = mv[i] > m ? mv[i] : m;
  const vf ms = splat(m);
  double sum = 0.0;
  for (int64_t b = 0; b < full; b += kSumBlock) {
    const int64_t end = min64(full, b + kSumBlock);
    vf s = vf{};
    for (int64_t c = b; c < end; c += kW) s += exp_nonpositive_ps(load(x + c) - ms);
    sum += reduce_add(s);
  }
  if (tail) {
    const vf e = exp_nonpositive_ps(load_first_or(x + full, tail, -__builtin_inff()) - ms);
    sum += reduce_add(e);
  }
  // (x - m) - log_sum, not x - (m + log_sum): x - m is exact near the max, and m + log_sum
  // would round to m's ulp (1e-3 at |m| = 1e4).
  const vf log_sum = splat(static_cast<float>(__builtin_log(sum)));
  for (int64_t c = 0; c < full; c += kW) store(lp + c, (load(x + c) - ms) - log_sum);
  if (tail) store_first(lp + full, (load_first(x + full, tail) - ms) - log_sum, tail);
}

// d and lp are (C,): d = coef * exp(lp) (softmax times coef).
void softmax_scaled_row(float* d, const float* lp, int64_t C, float coef) {
  const vf k = splat(coef);
  int64_t c = 0;
  for (; c + kW <= C; c += kW) store(d + c, k * exp_nonpositive_ps(load(lp + c)));
  if (c < C) {
    const int rest = static_cast<int>(C - c);
    store_first(d + c, k * exp_nonpositive_ps(load_first(lp + c, rest)), rest);
  }
}

// d, lp, t are (C,), w is (C,) or null: d = g * (exp(lp) * mass - w * t).
void softmax_minus_target_row(float* d, const float* lp, const float* t, const float* w,
                              int64_t C, float g, float mass) {
  const vf gv = splat(g), mv = splat(mass);
  int64_t c = 0;
  for (; c + kW <= C; c += kW) {
    const vf wt = w ? load(w + c) * load(t + c) : load(t + c);
    store(d + c, gv * (exp_nonpositive_ps(load(lp + c)) * mv - wt));
  }
  if (c < C) {
    const int rest = static_cast<int>(C - c);
    const vf tv = load_first(t + c, rest);
    const vf wt = w ? load_first(w + c, rest) * tv : tv;
    store_first(d + c, gv * (exp_nonpositive_ps(load_first(lp + c, rest)) * mv - wt), rest);
  }
}

constexpr CrossEntropyKernels kCrossEntropy = {log_softmax_row, softmax_scaled_row,
                                               softmax_minus_target_row};

}  // namespace

const CrossEntropyKernels& cross_entropy_kernels() { return kCrossEntropy; }

}  // namespace fastdl::cpu::FASTDL_ISA
