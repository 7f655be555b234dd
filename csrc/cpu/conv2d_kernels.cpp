// conv2d bodies, compiled once per ISA (see dispatch.h): the implicit GEMM on the micro-kernel
// of gemm_ukernel.h, and a direct vectorised path for one input channel. conv2d.cpp holds the
// plan, the threads and the general fallback, and calls the active ISA's table.
//
// Shapes: x (N, C, H, W), w (K, C, R, S), y / dy (N, K, P, Q); per image, xpad is x[n] with its
// zero padding made explicit, (C, Hp, Wp) with Hp = H + 2 pad_h, Wp = W + 2 pad_w, followed by
// kW zeros of slack. Two offset tables turn it into the im2col matrix without building it:
//   pix_off[m] = (p * sh) * Wp + q * sw       for output pixel m = p * Q + q
//   crs_off[t] = (c * Hp + r) * Wp + s         for weight tap t = (c * R + r) * S + s
//   col[t][m]  = xpad[pix_off[m] + crs_off[t]]
// Variants:
//   forward_block  y[n] (pixels x K, stored NCHW) = col^T (pixels x CRS) @ W^T (CRS x K):
//                  rows of the micro-tile are MR output pixels, broadcast straight from xpad;
//                  W^T is packed once into NR-wide panels; bias is added in the store.
//                  (The input gradient of a stride-1 convolution is this same forward on dy
//                  with the flipped, transposed weight; conv2d.cpp sets that up.)
//   dw_block       dw^T (CRS x K) += col (CRS x pixels) @ dy[n]^T (pixels x K): rows of the
//                  micro-tile are kDwMR (<= MR) weight taps, broadcast from xpad; dy[n]^T is packed per
//                  image (pack_dy_t, which also sums each channel for db).
//   forward_c1 / dw_c1   one input channel, stride_w 1 (the founding CNN's first layer): no
//                  GEMM (K = R * S is tiny); vectors run along an output row, the R * S shifted
//                  input rows are loaded once per vector and reused by every output channel.
//   gather_patches  the fused conv block's backward with several input channels: per list
//                  (an output channel's windows for dw, a window's argmax place for dx), the
//                  sum of g times a contiguous patch (x's, or w's), accumulators in registers.
// Tests: tests/test_kernels_conv2d.py, tests/test_kernels_fused.py, tests/test_kernels_simd.py.
// Bench: bench/ (conv2d).
#include "cpu/conv2d.h"
#include "cpu/gemm_ukernel.h"

#include <algorithm>
#include <array>
#include <utility>

namespace fastdl::cpu::FASTDL_ISA {

namespace {

// ---- padding and packing ----

// xpad (C, Hp, Wp) + kW floats of slack = x[n] (C, H, W) zero-padded by (pad_h, pad_w). Rows
// are written in order with whole vectors, which may also write zeros over up to kW floats
// after a row's end: padding, the slack, or data of a row written next.
void pad_image(float* xpad, const float* xn, int64_t C, int64_t H, int64_t W, int64_t pad_h,
               int64_t pad_w) {
  const int64_t Hp = H + 2 * pad_h, Wp = W + 2 * pad_w;
  for (int64_t c = 0; c < C; ++c) {
    float* plane = xpad + c * Hp * Wp;
    std::memset(plane, 0, sizeof(float) * (pad_h * Wp + pad_w));  // and the first left padding
    for (int64_t h = 0; h < H; ++h) {
      float* out = plane + (pad_h + h) * Wp + pad_w;
      const float* src = xn + (c * H + h) * W;
      int64_t i = 0;
      for (; i + kW <= W; i += kW) store(out + i, load(src + i));
      if (i < W) store(out + i, load_first(src + i, static_cast<int>(W - i)));
      // The right padding and the next row's left padding (the last row: the bottom rows follow).
      const int64_t gap = h + 1 < H ? 2 * pad_w : pad_w;
      if (gap > kW) {
        std::memset(out + W, 0, sizeof(float) * gap);
      } else if (gap > 0) {
        store(out + W, vf{});  // (one store, not a call to memset per row)
      }
    }
    std::memset(plane + (pad_h + H) * Wp, 0, sizeof(float) * pad_h * Wp);
  }
  std::memset(xpad + C * Hp * Wp, 0, sizeof(float) * kW);
}

// wt holds ceil(K / NR) panels of CRS x NR floats: wt[(jp * CRS + t) * NR + j] = w[jp * NR + j][t]
// (0 past K); w is (K, CRS).
void pack_weight_t(float* wt, const float* w, int64_t K, int64_t CRS) {
  for (int64_t jp = 0; jp * kNR < K; ++jp) {
    float* panel = wt + jp * CRS * kNR;
    const int64_t cols = min64(kNR, K - jp * kNR);
    for (int64_t t = 0; t < CRS; ++t) {
      for (int64_t j = 0; j < cols; ++j) panel[t * kNR + j] = w[(jp * kNR + j) * CRS + t];
      for (int64_t j = cols; j < kNR; ++j) panel[t * kNR + j] = 0.0f;
    }
  }
}

// dyt holds ceil(K / NR) panels of PQ x NR floats:
// dyt[(jp * PQ + m) * NR + j] = dyn[jp * NR + j][m]
// (0 past K); dyn is (K, PQ). When sums is not null, sums[k] = the sum of dyn[k] (for db).
void pack_dy_t(float* dyt, float* sums, const float* dyn, int64_t K, int64_t PQ) {
  for (int64_t jp = 0; jp * kNR < K; ++jp) {
    float* panel = dyt + jp * PQ * kNR;
    const float* src = dyn + jp * kNR * PQ;
    const int64_t cols = min64(kNR, K - jp * kNR);
    // Blocks of kW channels x kW pixels, transposed in registers; then the zeros past K.
    for (int64_t j = 0; j < cols; j += kW) {
      const int channels = static_cast<int>(min64(kW, cols - j));
      for (int64_t m = 0; m < PQ; m += kW) {
        transpose_block(panel + m * kNR + j, kNR, src + j * PQ + m, PQ, channels,
                        static_cast<int>(min64(kW, PQ - m)));
      }
    }
    for (int64_t m = 0; m < PQ && cols < kNR; ++m) {
      std::fill(panel + m * kNR + cols, panel + (m + 1) * kNR, 0.0f);
    }
  }
  if (sums == nullptr) return;
  // In double (a plane can hold many pixels), in 8 partial sums (not one serial chain of adds).
  for (int64_t k = 0; k < K; ++k) {
    const float* row = dyn + k * PQ;
    double part[8] = {};
    int64_t m = 0;
    for (; m + 8 <= PQ; m += 8) {
      for (int l = 0; l < 8; ++l) part[l] += row[m + l];
    }
    for (; m < PQ; ++m) part[0] += row[m];
    sums[k] = static_cast<float>(((part[0] + part[1]) + (part[2] + part[3])) +
                                 ((part[4] + part[5]) + (part[6] + part[7])));
  }
}

// ---- the implicit GEMM ----

// yn (K, PQ) for the pixels [m0, m1) of one image and the taps [t0, t0 + kc):
// yn[k][m] = (first ? (bias ? bias[k] : 0) : yn[k][m]) + sum_t xpad[pix_off[m] + crs_off[t]] *
// w[k][t], where wt is pack_weight_t's (K, CRS) weight.
void forward_block(float* yn, const float* xpad, const int64_t* pix_off, const int64_t* crs_off,
                   const float* wt, const float* bias, int64_t K, int64_t PQ, int64_t CRS,
                   int64_t m0, int64_t m1, int64_t t0, int64_t kc, bool first) {
  const int64_t* offs = crs_off + t0;
  const auto off = [offs](int64_t p) { return offs[p]; };
  alignas(64) float tile[kMR][kNR];
  for (int64_t i0 = m0; i0 < m1; i0 += kMR) {
    const int64_t mr = min64(kMR, m1 - i0);
    const float* rows[kMR];
    for (int i = 0; i < kMR; ++i) rows[i] = xpad + pix_off[i0 + min64(i, mr - 1)];
    for (int64_t jp = 0; jp * kNR < K; ++jp) {
      Acc acc;
      zero(acc);
      ukernel(acc, rows, off, wt + (jp * CRS + t0) * kNR, kNR, kc);
      for (int i = 0; i < kMR; ++i) {
        for (int v = 0; v < kNV; ++v) store(&tile[i][v * kW], acc[i][v]);
      }
      // The NCHW store: channel k's MR pixels are contiguous in yn.
      const int64_t nr = min64(kNR, K - jp * kNR);
      for (int64_t j = 0; j < nr; ++j) {
        float* out = yn + (jp * kNR + j) * PQ + i0;
        if (first) {
          const float b = bias != nullptr ? bias[jp * kNR + j] : 0.0f;
          for (int64_t i = 0; i < mr; ++i) out[i] = tile[i][j] + b;
        } else {
          for (int64_t i = 0; i < mr; ++i) out[i] += tile[i][j];
        }
      }
    }
  }
}

// Rows (weight taps) of dw_block's tile: at most 8. Its rows are read through one pointer each,
// and 14 (AVX-512's kMR) do not fit in the general registers with the loop's own: the spills
// held the AVX-512 loop at 92% of the FMA peak on Zen 4, 8 x 32 reaches 99% (one core, conv2's
// shape; AVX2's 6 x 16 also 99%).
constexpr int kDwMR = kMR < 8 ? kMR : 8;

// dwt (CRS rounded up to kDwMR) x ldw, ldw = NR * ceil(K / NR), for the taps [r0, r1) (r0 a
// multiple of kDwMR): dwt[t][k] = (first ? 0 : dwt[t][k]) + the sum over pixels m in
// [m0, m0 + kc) of xpad[crs_off[t] + pix_off[m]] * dyn[k][m], where dyt is pack_dy_t's dyn.
// Rows of dwt past CRS receive garbage and are never read.
void dw_block(float* dwt, int64_t ldw, const float* xpad, const int64_t* crs_off,
              const int64_t* pix_off, const float* dyt, int64_t K, int64_t PQ, int64_t CRS,
              int64_t r0, int64_t r1, int64_t m0, int64_t kc, bool first) {
  const int64_t* offs = pix_off + m0;
  const auto off = [offs](int64_t p) { return offs[p]; };
  for (int64_t i0 = r0; i0 < r1; i0 += kDwMR) {
    const float* rows[kDwMR];
    for (int i = 0; i < kDwMR; ++i) rows[i] = xpad + crs_off[min64(i0 + i, CRS - 1)];
    for (int64_t jp = 0; jp * kNR < K; ++jp) {
      float* c = dwt + i0 * ldw + jp * kNR;
      vf acc[kDwMR][kNV];
      for (int i = 0; i < kDwMR; ++i) {
        for (int v = 0; v < kNV; ++v) acc[i][v] = first ? vf{} : load(c + i * ldw + v * kW);
      }
      ukernel(acc, rows, off, dyt + (jp * PQ + m0) * kNR, kNR, kc);
      for (int i = 0; i < kDwMR; ++i) {
        for (int v = 0; v < kNV; ++v) store(c + i * ldw + v * kW, acc[i][v]);
      }
    }
  }
}

// ---- one input channel ----

constexpr int kMaxTapsC1 = kConv2dMaxTapsC1;

// yn (K, P, Q) rows [p0, p1) of one image with C = 1, stride (sh, 1):
// yn[k][p][q] = bias[k] + sum_{r,s} w[k][r][s] * xpad[(p * sh + r) * Wp + q + s]; xpad is
// pad_image's (1, Hp, Wp) image with its slack. Each output channel's R * S weights are
// broadcast once and stay in registers while its rows are computed (the shifted input rows are
// reloaded from L1). Kernels other than 3x3 (those take forward_c1_3x3).
void forward_c1_rs(float* yn, const float* xpad, int64_t Wp, const float* w, const float* bias,
                   int64_t K, int64_t R, int64_t S, int64_t P, int64_t Q, int64_t sh, int64_t p0,
                   int64_t p1) {
  const int64_t taps = R * S, q_full = Q / kW * kW;
  const int tail = static_cast<int>(Q - q_full);
  for (int64_t k = 0; k < K; ++k) {
    vf wk[kMaxTapsC1];
    for (int64_t t = 0; t < taps; ++t) wk[t] = splat(w[k * taps + t]);
    const vf b = splat(bias != nullptr ? bias[k] : 0.0f);
    // One output vector at q0 of row p; lanes past Q (tail) compute garbage, never stored.
    auto vector_at = [&](int64_t p, int64_t q0) {
      vf acc = b;
      for (int64_t r = 0; r < R; ++r) {
        const float* xrow = xpad + (p * sh + r) * Wp + q0;
        for (int64_t s = 0; s < S; ++s) acc = fmadd(wk[r * S + s], load(xrow + s), acc);
      }
      return acc;
    };
    for (int64_t p = p0; p < p1; ++p) {
      float* out = yn + (k * P + p) * Q;
      for (int64_t q0 = 0; q0 < q_full; q0 += kW) store(out + q0, vector_at(p, q0));
      if (tail == 0) continue;
      // The tail vector's extra lanes may spill into the rows after p when this call writes
      // them next (a full store is much cheaper than a masked one); else mask.
      if ((p1 - 1 - p) * Q >= kW - tail) {
        store(out + q_full, vector_at(p, q_full));
      } else {
        store_first(out + q_full, vector_at(p, q_full), tail);
      }
    }
  }
}

// Output channels [k, k + kKb) of one output vector (row p, columns q0...) of forward_c1_3x3,
// from its 9 shifted inputs xv: kKb independent FMA chains, the weights read as broadcasts.
template <int kKb>
inline void c1_3x3_channels(float* yn, const vf* xv, const float* w, const float* bias,
                            int64_t k, int64_t P, int64_t Q, int64_t p, int64_t q0, int n) {
  vf acc[kKb];
  for (int j = 0; j < kKb; ++j) acc[j] = splat(bias != nullptr ? bias[k + j] : 0.0f);
  for (int t = 0; t < 9; ++t) {
    for (int j = 0; j < kKb; ++j) acc[j] = fmadd(splat(w[(k + j) * 9 + t]), xv[t], acc[j]);
  }
  for (int j = 0; j < kKb; ++j) {
    float* out = yn + ((k + j) * P + p) * Q + q0;
    if (n == kW) {
      store(out, acc[j]);
    } else {
      store_first(out, acc[j], n);
    }
  }
}

// forward_c1_rs for 3x3 kernels, the other way round: each output vector's 9 shifted inputs
// are loaded once into registers and serve every output channel, 4 channels at a time. Per
// output the same multiply-adds in the same order as forward_c1_rs: the same results.
void forward_c1_3x3(float* yn, const float* xpad, int64_t Wp, const float* w, const float* bias,
                    int64_t K, int64_t P, int64_t Q, int64_t sh, int64_t p0, int64_t p1) {
  constexpr int64_t kKb = 4;
  const int tail = static_cast<int>(Q % kW);
  const int64_t q_full = Q - tail;
  for (int64_t p = p0; p < p1; ++p) {
    // The tail vector's extra lanes may spill into row p + 1 when this call writes it next
    // (see forward_c1_rs); else the tail is stored masked.
    const bool spill_ok = (p1 - 1 - p) * Q >= kW - tail;
    for (int64_t q0 = 0; q0 < Q; q0 += kW) {
      const int n = q0 < q_full || spill_ok ? kW : tail;  // lanes to store
      vf xv[9];
      for (int64_t r = 0; r < 3; ++r) {
        const float* xrow = xpad + (p * sh + r) * Wp + q0;
        for (int64_t s = 0; s < 3; ++s) xv[r * 3 + s] = load(xrow + s);
      }
      int64_t k = 0;
      for (; k + kKb <= K; k += kKb) c1_3x3_channels<kKb>(yn, xv, w, bias, k, P, Q, p, q0, n);
      for (; k < K; ++k) c1_3x3_channels<1>(yn, xv, w, bias, k, P, Q, p, q0, n);
    }
  }
}

void forward_c1(float* yn, const float* xpad, int64_t Wp, const float* w, const float* bias,
                int64_t K, int64_t R, int64_t S, int64_t P, int64_t Q, int64_t sh, int64_t p0,
                int64_t p1) {
  if (R == 3 && S == 3) {
    forward_c1_3x3(yn, xpad, Wp, w, bias, K, P, Q, sh, p0, p1);
  } else {
    forward_c1_rs(yn, xpad, Wp, w, bias, K, R, S, P, Q, sh, p0, p1);
  }
}

// dwk (K, R * S) += the weight gradient of one image with C = 1, stride (sh, 1):
// dwk[k][r * S + s] += sum_{p,q} dyn[k][p][q] * xpad[(p * sh + r) * Wp + q + s], and, when sums
// is not null, sums[k] = sum_{p,q} dyn[k][p][q] (for db). kR, kS: the kernel size when known at
// compile time (the accumulators then stay in registers), else 0 and R, S at run time.
template <int kR, int kS>
void dw_c1_rs(float* dwk, float* sums, const float* xpad, int64_t Wp, const float* dyn,
              int64_t K, int64_t R, int64_t S, int64_t P, int64_t Q, int64_t sh) {
  if constexpr (kR > 0) R = kR, S = kS;
  const int64_t taps = R * S, q_full = Q / kW * kW;
  const int tail = static_cast<int>(Q - q_full);
  for (int64_t k = 0; k < K; ++k) {
    vf acc[kMaxTapsC1];
    for (int64_t t = 0; t < taps; ++t) acc[t] = vf{};
    vf total = vf{};
    for (int64_t p = 0; p < P; ++p) {
      const float* dyrow = dyn + (k * P + p) * Q;
      for (int64_t q0 = 0; q0 < q_full; q0 += kW) {
        const vf d = load(dyrow + q0);
        total += d;
        for (int64_t r = 0; r < R; ++r) {
          const float* xrow = xpad + (p * sh + r) * Wp + q0;
          for (int64_t s = 0; s < S; ++s) acc[r * S + s] = fmadd(d, load(xrow + s), acc[r * S + s]);
        }
      }
      if (tail > 0) {
        // Lanes past Q are zero in both factors (not just dy), so an inf or NaN read past the
        // row end never turns 0 * x into NaN. (Masking x with an and is much cheaper than
        // masked loads; the reads stay inside xpad and its slack.)
        const vi valid = lane_index() < tail;
        const vf d = load_first(dyrow + q_full, tail);
        total += d;
        for (int64_t r = 0; r < R; ++r) {
          const float* xrow = xpad + (p * sh + r) * Wp + q_full;
          for (int64_t s = 0; s < S; ++s) {
            const vf xv = (vf)(valid & (vi)load(xrow + s));
            acc[r * S + s] = fmadd(d, xv, acc[r * S + s]);
          }
        }
      }
    }
    for (int64_t t = 0; t < taps; ++t) dwk[k * taps + t] += reduce_add(acc[t]);
    if (sums != nullptr) sums[k] = reduce_add(total);
  }
}

void dw_c1(float* dwk, float* sums, const float* xpad, int64_t Wp, const float* dyn, int64_t K,
           int64_t R, int64_t S, int64_t P, int64_t Q, int64_t sh) {
  if (R == 3 && S == 3) {
    dw_c1_rs<3, 3>(dwk, sums, xpad, Wp, dyn, K, R, S, P, Q, sh);
  } else {
    dw_c1_rs<0, 0>(dwk, sums, xpad, Wp, dyn, K, R, S, P, Q, sh);
  }
}

// ---- the conv block's gathered gradients (conv2d.cpp gathered_dw / gathered_dx) ----

// Accumulators one call keeps in registers: 32 vector registers on AVX-512, 16 otherwise (the
// loads feed the multiply-adds as memory operands, so a few registers are enough beside them).
#if defined(FASTDL_ISA_AVX512)
constexpr int kGatherMaxV = 24;
#else
constexpr int kGatherMaxV = 12;
#endif

// acc (V vectors) += the sum over items i < n of gs[i] * the V vectors at xr + offs[i].
template <int V>
void gather_fma(float* acc, const float* xr, const int64_t* offs, const float* gs, int64_t n) {
  vf a[V];
#pragma GCC unroll 24
  for (int v = 0; v < V; ++v) a[v] = load(acc + v * kW);
  for (int64_t i = 0; i < n; ++i) {
    const float* patch = xr + offs[i];
    const vf g = splat(gs[i]);
#pragma GCC unroll 24
    for (int v = 0; v < V; ++v) a[v] = fmadd(g, load(patch + v * kW), a[v]);
  }
#pragma GCC unroll 24
  for (int v = 0; v < V; ++v) store(acc + v * kW, a[v]);
}

using GatherFma = void (*)(float*, const float*, const int64_t*, const float*, int64_t);

template <int... V>
constexpr std::array<GatherFma, sizeof...(V)> gather_table(std::integer_sequence<int, V...>) {
  return {gather_fma<V + 1>...};
}

constexpr std::array<GatherFma, kGatherMaxV> kGather =
    gather_table(std::make_integer_sequence<int, kGatherMaxV>{});

// For each list k < K: acc + dst[k] (T floats, T a multiple of kW) += the sum over items
// [first[k], first[k + 1]) of gs[i] * the T floats at xr + offs[i]; in chunks of at most
// kGatherMaxV vectors, each a pass over k's items with its accumulators in registers.
void gather_patches(float* acc, const int64_t* dst, const float* xr, int64_t T, const int64_t* offs,
               const float* gs, const int64_t* first, int64_t K) {
  const int64_t vectors = T / kW, chunks = ceil_div(vectors, kGatherMaxV);
  const int64_t per = ceil_div(vectors, std::max<int64_t>(chunks, 1));
  for (int64_t v0 = 0; v0 < vectors; v0 += per) {
    const GatherFma run = kGather[std::min(per, vectors - v0) - 1];
    for (int64_t k = 0; k < K; ++k) {
      const int64_t i0 = first[k], n = first[k + 1] - i0;
      if (n > 0) run(acc + dst[k] + v0 * kW, xr + v0 * kW, offs + i0, gs + i0, n);
    }
  }
}

// g[i] = dyp[i] where yp[i] > 0 and codes[i] <= 3, else 0, for i < n: the conv block's
// gradient at each window's argmax. Returns how many codes are above 3.
int64_t pooled_gradient(float* g, const float* dyp, const uint8_t* codes, const float* yp,
                        int64_t n) {
  vi bad = vi{};
  for (int64_t i = 0; i < n; i += kW) {
    const int m = static_cast<int>(min64(kW, n - i));
    const vi c = load_bytes_first(codes + i, m);
    const vf y = m == kW ? load(yp + i) : load_first(yp + i, m);
    const vf d = m == kW ? load(dyp + i) : load_first(dyp + i, m);
    bad += c > 3;
    const vf out = select((y > 0.0f) & (c <= 3), d, vf{});
    if (m == kW) {
      store(g + i, out);
    } else {
      store_first(g + i, out, m);
    }
  }
  int64_t total = 0;
  for (int i = 0; i < kW; ++i) total -= bad[i];
  return total;
}

// The conv block's gathered gradients' patch layout (conv2d.cpp gathered_dw / gathered_dx):
// xr[p][col][r] = xt[p * sh + r][col] for p < P, col < Wx, r < R, rows of Cp floats (a multiple
// of kW); fold_rows is its adjoint, dxt[p * sh + r][col] += dxr[p][col][r].
void replicate_rows(float* xr, const float* xt, int64_t P, int64_t Wx, int64_t R, int64_t Cp,
                    int64_t sh) {
  for (int64_t p = 0; p < P; ++p) {
    for (int64_t col = 0; col < Wx; ++col) {
      for (int64_t r = 0; r < R; ++r) {
        float* dst = xr + ((p * Wx + col) * R + r) * Cp;
        const float* src = xt + ((p * sh + r) * Wx + col) * Cp;
        for (int64_t c = 0; c < Cp; c += kW) store(dst + c, load(src + c));
      }
    }
  }
}

void fold_rows(float* dxt, const float* dxr, int64_t P, int64_t Wx, int64_t R, int64_t Cp,
               int64_t sh) {
  for (int64_t p = 0; p < P; ++p) {
    for (int64_t r = 0; r < R; ++r) {
      float* out = dxt + (p * sh + r) * Wx * Cp;
      for (int64_t col = 0; col < Wx; ++col) {
        const float* in = dxr + ((p * Wx + col) * R + r) * Cp;
        for (int64_t c = 0; c < Cp; c += kW) {
          store(out + col * Cp + c, load(out + col * Cp + c) + load(in + c));
        }
      }
    }
  }
}

// Whether a[0, n) holds an inf or a NaN (an all-ones exponent).
bool any_nonfinite(const float* a, int64_t n) {
  const vi exponent = vi{} + 0x7f800000;
  vi seen = vi{};
  int64_t i = 0;
  for (; i + kW <= n; i += kW) seen |= ((vi)load(a + i) & exponent) == exponent;
  if (i < n) seen |= ((vi)load_first(a + i, static_cast<int>(n - i)) & exponent) == exponent;
  for (int l = 0; l < kW; ++l) {
    if (seen[l] != 0) return true;
  }
  return false;
}

constexpr Conv2dKernels kKernels = {
    kMR,       kNR,           kDwMR,         pad_image, pack_weight_t, pack_dy_t,
    forward_block, dw_block, forward_c1, dw_c1,
    gather_patches, pooled_gradient, replicate_rows, fold_rows, any_nonfinite,
};

}  // namespace

const Conv2dKernels& conv2d_kernels() { return kKernels; }

}  // namespace fastdl::cpu::FASTDL_ISA
