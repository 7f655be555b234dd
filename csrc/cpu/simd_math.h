// Vectorised exponential, sigmoid and tanh on the `vf` vectors of simd.h, for the per-ISA kernel
// bodies (activations_kernels.cpp, rnn_kernels.cpp, cross_entropy_kernels.cpp).
//
// exp_ps: Cody-Waite reduction x = n ln2 + r, |r| <= ln2 / 2, a degree-6 polynomial for e^r,
// scaled by 2^n so that denormal results (down to e^-103.97) round once; about 1 ulp against
// float64. sigmoid uses only e^-|x| (no overflow); tanh uses e^-2|x| - 1 computed without
// cancellation (an expm1), so one formula holds from tiny |x| to saturation. Each divides
// once: about 2 ulp in all (tests hold them to 3).
// Tests: tests/test_kernels_simd.py (ulp error against float64 on every ISA).
#pragma once

#include "cpu/simd.h"

namespace fastdl::cpu::FASTDL_ISA {

// Range reduction shared by the exponentials: x = n ln2 + r with |r| <= ln2 / 2; returns r and
// sets ni = n (as integers). x must be clamped to a few hundred at most; NaN gives NaN in r.
inline vf reduce_ln2(vf x, vi& ni) {
  // n = round(x / ln 2): adding 1.5 * 2^23 leaves n in the low mantissa bits.
  const vf shifter = splat(12582912.0f);
  const vf t = fmadd(x, splat(1.44269504088896341f), shifter);
  const vf n = t - shifter;
  ni = (vi)t - (vi)shifter;
  // r = x - n ln2, with ln2 split so that n * ln2_hi is exact.
  const vf r = fmadd(n, splat(-0.693359375f), x);
  return fmadd(n, splat(2.12194440e-4f), r);
}

// e^r - 1 for |r| <= ln2 / 2, as r + r^2 Q(r): Q of degree 4 fitted to e^r's relative error
// (< 1 ulp), evaluated in Estrin's order (a dependency chain of 4 instead of 6: these functions
// are latency-bound).
inline vf expm1_reduced(vf r) {
  const vf r2 = r * r, r4 = r2 * r2;
  const vf q01 = fmadd(splat(0.1666652113199234f), r, splat(0.4999999403953552f));
  const vf q23 = fmadd(splat(0.008368710055947304f), r, splat(0.04166838899254799f));
  const vf q = fmadd(r4, splat(0.0013814617414027452f), fmadd(r2, q23, q01));
  return fmadd(r2, q, r);
}

// e^x for every lane (see the header). Arguments are clamped to [-104, 88.8]: below, the
// result rounds to 0; above, the scaling overflows to +inf. NaN stays NaN (the clamp keeps it,
// and NaN * 2^n is NaN). 2^n is applied as 2^n1 * 2^n2, n in [-150, 128], each half a normal
// float's exponent, so a denormal result is rounded once.
inline vf exp_ps(vf x) {
  vi ni;
  const vf r = reduce_ln2(clamp(x, -104.0f, 88.8f), ni);
  const vf p = expm1_reduced(r) + 1.0f;
  const vi n1 = ni >> 1;
  const vi n2 = ni - n1;
  return p * (vf)((n1 + 127) << 23) * (vf)((n2 + 127) << 23);
}

// e^x for x <= 0 (or NaN), cheaper: n in [-150, 0], so 2^(n + 64) is always a normal float and
// e^x = (p * 2^(n + 64)) * 2^-64, rounded once.
inline vf exp_nonpositive_ps(vf x) {
  vi ni;
  const vf r = reduce_ln2(clamp_low(x, -104.0f), ni);
  const vf p = expm1_reduced(r) + 1.0f;
  return p * (vf)((ni + (127 + 64)) << 23) * splat(5.42101086e-20f);  // 2^-64
}

// e^x - 1 for x in [-20, 0] (or NaN), accurate near 0 (no cancellation): for |x| < ln2 / 2,
// n = 0 and it is expm1_reduced(x) itself; else 2^n (e^r - 1) + (2^n - 1), 2^n - 1 exact.
inline vf expm1_nonpositive_ps(vf x) {
  vi ni;
  const vf r = reduce_ln2(x, ni);
  const vf s = (vf)((ni + 127) << 23);
  return fmadd(s, expm1_reduced(r), s - 1.0f);
}

inline vf abs_ps(vf x) { return (vf)((vi)x & 0x7fffffff); }

inline vf sigmoid_ps(vf x) {
  // 1 / (1 + e) for x >= 0, e / (1 + e) below, with e = e^-|x| in (0, 1] (no overflow); one
  // division, no rounding of a reciprocal in between.
  const vf e = exp_nonpositive_ps((vf)((vi)x | (vi)splat(-0.0f)));  // e^-|x|
  return select(x >= 0.0f, splat(1.0f), e) / (1.0f + e);
}

inline vf tanh_ps(vf x) {
  // tanh |x| = -m / (2 + m) with m = e^-2|x| - 1 in [-1, 0]: accurate from tiny |x| (m ~ -2|x|,
  // no cancellation) to saturation (|x| >= 10: m = -1 in float32, tanh = 1).
  const vf m = expm1_nonpositive_ps(clamp_low(-2.0f * abs_ps(x), -20.0f));
  const vf t = m / (m + 2.0f);  // -tanh |x|, <= 0
  return (vf)(((vi)t & 0x7fffffff) | ((vi)x & (vi)splat(-0.0f)));  // tanh is odd: x's sign
}

}  // namespace fastdl::cpu::FASTDL_ISA
