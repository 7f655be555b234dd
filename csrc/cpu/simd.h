// The SIMD vocabulary of the per-ISA kernel bodies (csrc/cpu/*_kernels.cpp): one float vector
// type `vf` of kW lanes and a few helpers, written once with GCC vector extensions and compiled
// per ISA (see dispatch.h), so the AVX2 build that runs in CI proves the source of the AVX-512
// build, which differs only in width and flags.
//
//   baseline  kW = 4   SSE2 (any x86-64), mul + add
//   avx2      kW = 8   AVX2 + FMA
//   avx512    kW = 16  AVX-512 F/VL/BW/DQ + FMA
//
// NOTE: everything here lives in the per-ISA namespace (fastdl::cpu::FASTDL_ISA), so the linker
// never merges differently compiled copies of an inline function (ODR). For the same reason the
// kernel bodies avoid std:: function templates (std::min, std::fill...): an out-of-line copy
// instantiated in the AVX-512 build could be picked for every caller.
#pragma once

#ifndef FASTDL_ISA
#error "cpu/simd.h is for per-ISA kernel bodies only (compiled with -DFASTDL_ISA=<isa>)"
#endif

#include <cstdint>
#include <cstring>

#include "cpu/parallel.h"

#if defined(FASTDL_ISA_AVX2) || defined(FASTDL_ISA_AVX512)
#include <immintrin.h>
#elif defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace fastdl::cpu::FASTDL_ISA {

#if defined(FASTDL_ISA_AVX512)
constexpr int kW = 16;
#elif defined(FASTDL_ISA_AVX2)
constexpr int kW = 8;
#else
constexpr int kW = 4;
#endif

using vf = float __attribute__((vector_size(kW * sizeof(float))));
using vi = int32_t __attribute__((vector_size(kW * sizeof(int32_t))));

// Every lane x (a broadcast). NOTE: not vf{} + x, which turns -0.0f into +0.0f.
inline vf splat(float x) {
#if defined(FASTDL_ISA_AVX512)
  return _mm512_set1_ps(x);
#elif defined(FASTDL_ISA_AVX2)
  return _mm256_set1_ps(x);
#elif defined(__SSE2__)
  return _mm_set1_ps(x);
#else
  vf v = {};
  for (int i = 0; i < kW; ++i) v[i] = x;
  return v;
#endif
}

inline vf load(const float* p) {
  vf v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline void store(float* p, vf v) { std::memcpy(p, &v, sizeof v); }

// a * b + c, fused where the ISA has FMA (one rounding), else multiply then add.
inline vf fmadd(vf a, vf b, vf c) {
#if defined(FASTDL_ISA_AVX512)
  return _mm512_fmadd_ps(a, b, c);
#elif defined(FASTDL_ISA_AVX2)
  return _mm256_fmadd_ps(a, b, c);
#else
  return a * b + c;
#endif
}

// x clamped to [lo, hi]; NaN stays NaN (x86 max/min return their second operand when either is
// NaN, so x goes second).
inline vf clamp(vf x, float lo, float hi) {
#if defined(FASTDL_ISA_AVX512)
  return _mm512_min_ps(splat(hi), _mm512_max_ps(splat(lo), x));
#elif defined(FASTDL_ISA_AVX2)
  return _mm256_min_ps(splat(hi), _mm256_max_ps(splat(lo), x));
#elif defined(__SSE2__)
  return _mm_min_ps(splat(hi), _mm_max_ps(splat(lo), x));
#else
  x = x < lo ? splat(lo) : x;  // (comparisons with NaN are false)
  return x > hi ? splat(hi) : x;
#endif
}

// max(x, lo); NaN stays NaN (see clamp).
inline vf clamp_low(vf x, float lo) {
#if defined(FASTDL_ISA_AVX512)
  return _mm512_max_ps(splat(lo), x);
#elif defined(FASTDL_ISA_AVX2)
  return _mm256_max_ps(splat(lo), x);
#elif defined(__SSE2__)
  return _mm_max_ps(splat(lo), x);
#else
  return x < lo ? splat(lo) : x;
#endif
}

// Lane-wise select: mask lanes are all ones (true) or all zeros, as vector comparisons give.
inline vf select(vi mask, vf a, vf b) {
#if defined(FASTDL_ISA_AVX2)
  return _mm256_blendv_ps(b, a, (__m256)mask);
#else
  return (vf)((mask & (vi)a) | (~mask & (vi)b));
#endif
}

// ReLU lane by lane: x where x > 0, else +0.0. NOTE: NaN propagates (x > 0 and x == 0-or-below
// are both false for NaN), as in PyTorch.
inline vf relu_ps(vf x) {
  const vi keep = (x > 0.0f) | (x != x);
  return (vf)(keep & (vi)x);
}

inline vi lane_index() {
  vi v;
  for (int i = 0; i < kW; ++i) v[i] = i;
  return v;
}

// The first n lanes (0 <= n <= kW) of p; the others are 0. Reads only those n floats.
inline vf load_first(const float* p, int n) {
#if defined(FASTDL_ISA_AVX512)
  return _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << n) - 1u), p);
#elif defined(FASTDL_ISA_AVX2)
  return _mm256_maskload_ps(p, (__m256i)(lane_index() < n));
#else
  vf v = {};
  for (int i = 0; i < n; ++i) v[i] = p[i];
  return v;
#endif
}

// Writes the first n lanes (0 <= n <= kW) of v to p; touches nothing else.
inline void store_first(float* p, vf v, int n) {
#if defined(FASTDL_ISA_AVX512)
  _mm512_mask_storeu_ps(p, static_cast<__mmask16>((1u << n) - 1u), v);
#elif defined(FASTDL_ISA_AVX2)
  _mm256_maskstore_ps(p, (__m256i)(lane_index() < n), v);
#else
  for (int i = 0; i < n; ++i) p[i] = v[i];
#endif
}

// The first n lanes (0 <= n <= kW) of v, each truncated to a byte, to p; touches nothing else.
inline void store_bytes_first(uint8_t* p, vi v, int n) {
#if defined(FASTDL_ISA_AVX512)
  _mm512_mask_cvtepi32_storeu_epi8(p, static_cast<__mmask16>((1u << n) - 1u), (__m512i)v);
#else
  for (int i = 0; i < n; ++i) p[i] = static_cast<uint8_t>(v[i]);
#endif
}

// The first n bytes (0 <= n <= kW) of p, zero-extended, in the first n lanes; the others are 0.
inline vi load_bytes_first(const uint8_t* p, int n) {
#if defined(FASTDL_ISA_AVX512)
  return (vi)_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(static_cast<__mmask16>((1u << n) - 1u), p));
#else
  int32_t lanes[kW] = {};
  for (int i = 0; i < n; ++i) lanes[i] = p[i];
  vi v;
  std::memcpy(&v, lanes, sizeof v);
  return v;
#endif
}

// The first n lanes (0 <= n <= kW) of v, sign-extended to int64, to p; touches nothing else.
inline void store_int64_first(int64_t* p, vi v, int n) {
#if defined(FASTDL_ISA_AVX512)
  const __m512i w = (__m512i)v;
  const unsigned lo = n < 8 ? (1u << n) - 1u : 0xffu, hi = n > 8 ? (1u << (n - 8)) - 1u : 0u;
  _mm512_mask_storeu_epi64(p, static_cast<__mmask8>(lo),
                           _mm512_cvtepi32_epi64(_mm512_castsi512_si256(w)));
  _mm512_mask_storeu_epi64(p + 8, static_cast<__mmask8>(hi),
                           _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(w, 1)));
#else
  for (int i = 0; i < n; ++i) p[i] = v[i];
#endif
}

// The lane-wise maximum of a 2x2 window's values a, b (top row), c, d (bottom row), and in code
// its place 0..3: the first of equal maxima, and a NaN over any number (2x2 max pooling's rule,
// PyTorch's; pool2x2_kernels.cpp and the conv block's pooling share it).
inline vf window_max(vf a, vf b, vf c, vf d, vi& code) {
  vf best = a;
  code = vi{};
  vi take = (b > best) | (b != b);
  best = select(take, b, best);
  code = (take & 1) | (~take & code);
  take = (c > best) | (c != c);
  best = select(take, c, best);
  code = (take & 2) | (~take & code);
  take = (d > best) | (d != d);
  best = select(take, d, best);
  code = (take & 3) | (~take & code);
  return best;
}

// One step of the kW x kW transpose: rows a and b, D rows apart, swap their off-diagonal D x D
// blocks (a's lanes with bit D set <-> b's lanes without it). Steps D = kW / 2, ..., 1 transpose.
template <int D>
inline void transpose_step(vf& a, vf& b) {
  vi lo, hi;
  for (int l = 0; l < kW; ++l) {
    lo[l] = (l & D) != 0 ? kW + l - D : l;
    hi[l] = (l & D) != 0 ? kW + l : l + D;
  }
  const vf na = __builtin_shuffle(a, b, lo), nb = __builtin_shuffle(a, b, hi);
  a = na, b = nb;
}

template <int D>
inline void transpose_steps(vf* r) {
  if constexpr (D >= 1) {
    for (int i = 0; i < kW; ++i) {
      if ((i & D) == 0) transpose_step<D>(r[i], r[i + D]);
    }
    transpose_steps<D / 2>(r);
  }
}

// out[j * ldo + i] = in[i * ldi + j] for i < rows, j < cols (rows, cols <= kW): a block of
// kW x kW transposed in registers, reading and writing only the rows x cols it names.
inline void transpose_block(float* out, int64_t ldo, const float* in, int64_t ldi, int rows,
                            int cols) {
  vf r[kW];
  for (int i = 0; i < kW; ++i) {
    r[i] = i >= rows ? vf{} : cols == kW ? load(in + i * ldi) : load_first(in + i * ldi, cols);
  }
  transpose_steps<kW / 2>(r);
  for (int j = 0; j < cols; ++j) {
    if (rows == kW) {
      store(out + j * ldo, r[j]);
    } else {
      store_first(out + j * ldo, r[j], rows);
    }
  }
}

inline float reduce_add(vf v) {
  float s = 0.0f;
  for (int i = 0; i < kW; ++i) s += v[i];
  return s;
}

inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }
// ceil_div and round_up: parallel.h's (this namespace is inside fastdl::cpu).

}  // namespace fastdl::cpu::FASTDL_ISA
