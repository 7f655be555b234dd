// maxpool2d: 2-D max pooling forward (values and int64 argmax indices) and backward, float32.
//
// Shapes: x (N, C, H, W); y and indices (N, C, P, Q); kernel R x S, stride sh x sw, padding
// ph x pw (padding is -inf, never selected). indices[n, c, p, q] = h * W + w inside the plane,
// like PyTorch's return_indices=True; the backward scatters dy through them.
// Variants: 2x2 stride 2 without padding (CNNs' pool, P = H / 2, Q = W / 2) runs the per-ISA
// bodies of pool2x2_kernels.cpp, kW outputs per vector step. Any other window works one
// output row at a time, in three paths:
//   - fixed: 2x2 stride 2 (with padding) and 3x3 stride 1 whose windows lie inside the input;
//     the window loop unrolls and one vectorised pass over the columns keeps max and position
//     in registers;
//   - sweep: any other window (padding may cut its rows); blocks of 4 columns in vector
//     registers, one vector step per window element;
//   - edge: the few columns whose windows padding cuts, one scalar window each.
// All are branch-free on the data (random data would mispredict every branch), except a
// predictable test for NaN. Threads split output rows (forward) or planes (backward, so
// scattering from overlapping windows never races).
// Tests: tests/test_kernels_maxpool2d.py. Bench: bench/kernels.py (maxpool2d, G7, G9).
#include "cpu/maxpool2d.h"
#include "cpu/parallel.h"  // kParallelMin, get_num_threads
#include "cpu/pool2x2.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace fastdl::cpu {

namespace {

// Columns per vector step of the row paths: 4 floats (16 bytes, SSE2 or NEON) whatever the
// build's instruction set. Pooled CNN rows are short (7 to 28 columns), and wider vectors would
// leave more of them to the scalar path. (The 2x2 forward ran here at 40-78% of the copy
// bandwidth on a Zen 4 with AVX-512; its per-ISA bodies, with masked row tails, run at
// 117-141%: bench/RESULTS.md.) Vector loops run whole blocks of kLanes columns, the last block
// shifted back to end at the row's end (recomputing a few columns is harmless: every update is
// idempotent), so no scalar remainder loop runs.
constexpr int64_t kLanes = 4;

// kLanes floats, or int32s, in one vector register (GCC/Clang vector extensions).
typedef float VecF __attribute__((vector_size(kLanes * sizeof(float))));
typedef int32_t VecI __attribute__((vector_size(kLanes * sizeof(int32_t))));

// Lanes xs[0], xs[sw], ..., xs[(kLanes - 1) * sw]; kSW is sw when known at compile time, or 0.
template <int kSW>
inline VecF load_strided(const float* xs, int64_t sw) {
  VecF v;
  if constexpr (kSW == 1) {
    std::memcpy(&v, xs, sizeof v);
  } else {
    for (int64_t i = 0; i < kLanes; ++i) v[i] = xs[i * sw];
  }
  return v;
}

// Vector form of keep_max (maxpool2d.h): whether v replaces the running max `best`, strictly
// greater or NaN.
inline bool replaces(float v, float best) { return v > best || v != v; }

// Edge: one output whose window padding may cut. x is the (H, W) plane; h0, w0 are the window's
// top-left corner in input coordinates (possibly negative).
inline void pool_one(float* y, int64_t* index, const float* x, int64_t H, int64_t W, int64_t R,
                     int64_t S, int64_t h0, int64_t w0) {
  const int64_t r0 = std::max<int64_t>(0, -h0), r1 = std::min(R, H - h0);
  const int64_t s0 = std::max<int64_t>(0, -w0), s1 = std::min(S, W - w0);
  int64_t best_at = (h0 + r0) * W + (w0 + s0);
  float best = x[best_at];
  for (int64_t r = r0; r < r1; ++r) {
    for (int64_t s = s0; s < s1; ++s) {
      const int64_t at = (h0 + r) * W + (w0 + s);
      keep_max(x[at], at, best, best_at);
    }
  }
  *y = best;
  *index = best_at;
}

// Sweep: columns [q0, q1) of one output row, whose windows lie inside the input horizontally
// (padding may cut rows); h0 is the window's top row. Works on blocks of kLanes columns held
// in vector registers: for each window element in row-major order, one vector step updates the
// block's running max and its position. Explicit vectors (GCC/Clang vector extensions) because
// GCC 12 spills auto-vectorised lane arrays to the stack for a runtime-sized window.
// kSW is the column stride when known at compile time (1: one contiguous load per step instead
// of kLanes scalar ones), else 0 and sw_any is used.
template <int kSW>
void pool_sweep(float* y, int64_t* index, const float* x, int64_t H, int64_t W, int64_t R,
                int64_t S, int64_t sw_any, int64_t pw, int64_t h0, int64_t q0, int64_t q1) {
  const int64_t sw = kSW ? kSW : sw_any;
  if (q1 - q0 < kLanes) {  // too few columns for one vector: scalar windows
    for (int64_t q = q0; q < q1; ++q) pool_one(y + q, index + q, x, H, W, R, S, h0, q * sw - pw);
    return;
  }
  const int64_t r0 = std::max<int64_t>(0, -h0), r1 = std::min(R, H - h0);
  for (int64_t block = q0; block < q1; block += kLanes) {
    const int64_t b = std::min(block, q1 - kLanes);
    // Lane i is column b + i; its element (r, s) sits at x[base + (b + i) * sw] with
    // base = (h0 + r) * W + s - pw. `at` holds the base of each lane's running max: 32 bits, as
    // wide as the floats, so the selects need no widening. Start from element (r0, 0);
    // visiting it again below changes nothing.
    const int32_t base0 = static_cast<int32_t>((h0 + r0) * W - pw);
    VecF best = load_strided<kSW>(x + (base0 + b * sw), sw);
    VecI at = VecI{} + base0;
    for (int64_t r = r0; r < r1; ++r) {
      for (int64_t s = 0; s < S; ++s) {
        const int32_t base = static_cast<int32_t>((h0 + r) * W + s - pw);
        const VecF v = load_strided<kSW>(x + (base + b * sw), sw);
        const VecI take = (v > best) | (v != v);  // replaces(), lane by lane
        best = take ? v : best;
        at = take ? VecI{} + base : at;
      }
    }
    for (int64_t i = 0; i < kLanes; ++i) {
      y[b + i] = best[i];
      index[b + i] = at[i] + (b + i) * sw;
    }
  }
}

// Fixed: columns [q0, q1) of one output row (at least kLanes of them) for a window R x S and
// column stride SW lying wholly inside the input; h0 is the window's top row.
template <int R, int S, int SW>
void pool_fixed(float* y, int64_t* index, const float* x, int64_t W, int64_t pw, int64_t h0,
                int64_t q0, int64_t q1) {
  const int64_t corner0 = h0 * W - pw;  // window q's top-left is at corner0 + q * SW
  for (int64_t block = q0; block < q1; block += kLanes) {
    const int64_t b = std::min(block, q1 - kLanes);
#pragma omp simd
    for (int64_t q = b; q < b + kLanes; ++q) {
      const int64_t corner = corner0 + q * SW;
      float best = x[corner];
      int32_t at = 0;  // position of best relative to the corner
      for (int r = 0; r < R; ++r) {
        for (int s = 0; s < S; ++s) {
          const float v = x[corner + r * W + s];
          const bool take = replaces(v, best);
          best = take ? v : best;
          at = take ? static_cast<int32_t>(r * W + s) : at;
        }
      }
      y[q] = best;
      index[q] = corner + at;
    }
  }
}

using FixedPath = void (*)(float*, int64_t*, const float*, int64_t, int64_t, int64_t, int64_t,
                           int64_t);

// The fixed path for this window and column stride, or null. (3x3 stride 2 is left to the
// sweep: GCC 12 does not vectorise its overlapping stride-2 loads.)
FixedPath fixed_path(int64_t R, int64_t S, int64_t sw) {
  if (R == 2 && S == 2 && sw == 2) return pool_fixed<2, 2, 2>;
  if (R == 3 && S == 3 && sw == 1) return pool_fixed<3, 3, 1>;
  return nullptr;
}

// Output row p of one plane: x is the (H, W) plane, y and index the (Q,) row. Columns [qa, qb)
// have windows inside the input horizontally; `fixed` is fixed_path(R, S, sw).
void pool_row(float* y, int64_t* index, const float* x, int64_t H, int64_t W, int64_t Q,
              int64_t R, int64_t S, int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t p,
              int64_t qa, int64_t qb, FixedPath fixed) {
  const int64_t h0 = p * sh - ph;
  // Positions from -W (padding) to H * W must fit 32 bits; a plane of 2^31 elements or more
  // takes the edge path throughout.
  if ((H + 1) * W > INT32_MAX) qa = qb = Q;
  for (int64_t q = 0; q < qa; ++q) pool_one(y + q, index + q, x, H, W, R, S, h0, q * sw - pw);
  for (int64_t q = qb; q < Q; ++q) pool_one(y + q, index + q, x, H, W, R, S, h0, q * sw - pw);
  const int64_t r0 = std::max<int64_t>(0, -h0), r1 = std::min(R, H - h0);
  if (fixed && r0 == 0 && r1 == R && qb - qa >= kLanes) {
    fixed(y, index, x, W, pw, h0, qa, qb);
    return;
  }
  const auto sweep = sw == 1 ? pool_sweep<1> : pool_sweep<0>;
  sweep(y, index, x, H, W, R, S, sw, pw, h0, qa, qb);
}

}  // namespace

// x is (N,C,H,W); y and indices are (N,C,P,Q).
void maxpool2d_forward(float* y, int64_t* indices, const float* x, int64_t N, int64_t C,
                       int64_t H, int64_t W, int64_t P, int64_t Q, int64_t R, int64_t S,
                       int64_t sh, int64_t sw, int64_t ph, int64_t pw) {
  if (R == 2 && S == 2 && sh == 2 && sw == 2 && ph == 0 && pw == 0 && P == H / 2 && Q == W / 2 &&
      H * W < INT32_MAX) {
    // 2x2 stride 2 (CNNs' pool): the per-ISA body, kW outputs per step (pool2x2_kernels.cpp).
    const Pool2x2Kernels& k = FASTDL_ACTIVE(Pool2x2Kernels, pool2x2_kernels);
    split_blocks(N * C, N * C * H * W, [&](int64_t p0, int64_t p1) {
      k.maxpool_indices(y, indices, x, H, W, p0, p1);
    });
    return;
  }
  // Interior columns: q * sw - pw >= 0 and q * sw - pw + S <= W.
  const int64_t qa = std::min(Q, pw / sw + (pw % sw != 0));
  const int64_t qb = W - S + pw >= 0 ? std::max(qa, std::min(Q, (W - S + pw) / sw + 1)) : qa;
  const FixedPath fixed = fixed_path(R, S, sw);
  const int64_t NC = N * C;
#pragma omp parallel for collapse(2) schedule(static) num_threads(get_num_threads()) \
    if (NC * H * W >= kParallelMin)
  for (int64_t plane = 0; plane < NC; ++plane) {
    for (int64_t p = 0; p < P; ++p) {
      const int64_t row = plane * P + p;
      pool_row(y + row * Q, indices + row * Q, x + plane * H * W, H, W, Q, R, S, sh, sw, ph, pw,
               p, qa, qb, fixed);
    }
  }
}

// dy and indices are (NC, PQ); dx is (NC, HW).
int64_t maxpool2d_backward(float* dx, const float* dy, const int64_t* indices, int64_t NC,
                           int64_t HW, int64_t PQ) {
  int64_t first_bad = NC * PQ;  // min-reduced over threads; NC * PQ means none
#pragma omp parallel for schedule(static) num_threads(get_num_threads()) \
    reduction(min : first_bad) if (NC * HW >= kParallelMin)
  for (int64_t plane = 0; plane < NC; ++plane) {
    float* dxp = dx + plane * HW;
    const float* dyp = dy + plane * PQ;
    const int64_t* ip = indices + plane * PQ;
    std::memset(dxp, 0, sizeof(float) * HW);
    for (int64_t o = 0; o < PQ; ++o) {
      const int64_t at = ip[o];
      // NOTE: indices come from Python; one outside the plane is reported, never written.
      if (static_cast<uint64_t>(at) < static_cast<uint64_t>(HW)) {
        dxp[at] += dyp[o];
      } else {
        first_bad = std::min(first_bad, plane * PQ + o);
      }
    }
  }
  return first_bad == NC * PQ ? -1 : first_bad;
}

}  // namespace fastdl::cpu
