// conv2d's Winograd bodies, compiled once per ISA (see dispatch.h): F(2x2, 3x3) and F(4x4, 3x3)
// (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2015) for 3x3 stride-1
// convolutions. conv2d.cpp holds the plan and the threads and calls the active ISA's table.
//
// An output tile of m x m pixels (m = 2 or 4) is Y = A^T [U (.) V] A summed over input
// channels, with U = G g G^T the transformed 3x3 kernel and V = B^T d B the transformed
// alpha x alpha input patch (alpha = m + 2). Summing over channels first turns the work into
// alpha^2 independent GEMMs, one per transform point xi:
//   M[xi] (tiles x K) = V[xi] (tiles x C) @ U[xi] (C x K).
// The weight gradient is the adjoint: dU[xi] (C x K) = sum over tiles of V[xi]^T @ dM[xi], with
// dM = A dY A^T each output tile's gradient, then dg = G^T dU G.
// Layouts (Cp, Kp: C and K rounded up to the vector width and to NR):
//   xt      channels-last input band (rows, cols, Cp), zero outside the image and past C
//   v       (alpha^2, T, Cp): v[xi][t][c], tiles t of one unit (transform points ldv floats
//           apart, padded so that they do not fall on one L1 set; mt and dm likewise, ldm)
//   u       (alpha^2, Kp / NR, Cp, NR): u[xi] packed into NR-wide panels (pack_weight)
//   mt      (alpha^2, T, Kp): the GEMMs' output
//   stage   channels-last output band (rows, cols, Kp), then stored to NCHW (from_channels_last)
//   dm, du  the weight gradient's dM (alpha^2, T, Kp) and dU (alpha^2, Cp, Kp)
// Transforms run on vectors of kW channels (input) or kW output channels (output); the GEMM's
// register tile is MR tiles x NR output channels, broadcasting v, loading rows of u.
// Tests: tests/test_kernels_conv2d.py, tests/test_kernels_simd.py.
// Bench: bench/winograd.py, bench/ (conv2d).
#include "cpu/conv2d.h"
#include "cpu/simd.h"

namespace fastdl::cpu::FASTDL_ISA {

namespace {

#if defined(FASTDL_ISA_AVX512)
constexpr int kTileMR = 8;
#else
constexpr int kTileMR = 6;
#endif
constexpr int kTileNV = 2;
constexpr int kTileNR = kTileNV * kW;

// ---- the 1-D transforms (B^T, A^T, G), on vectors ----

template <int M>
struct Tile;

// F(2, 3): points 0, 1, -1, infinity.
template <>
struct Tile<2> {
  static constexpr int kAlpha = 4;
  // v = B^T d.
  static void input(vf* v, const vf* d) {
    v[0] = d[0] - d[2];
    v[1] = d[1] + d[2];
    v[2] = d[2] - d[1];
    v[3] = d[1] - d[3];
  }
  // y = A^T m.
  static void output(vf* y, const vf* m) {
    y[0] = m[0] + m[1] + m[2];
    y[1] = m[1] - m[2] - m[3];
  }
  // d = A g (the adjoint of output: an output tile's gradient to its transform points).
  static void grad(vf* d, const vf* g) {
    d[0] = g[0];
    d[1] = g[0] + g[1];
    d[2] = g[0] - g[1];
    d[3] = -g[1];
  }
  // g = G^T d (the adjoint of weight), in double.
  static void weight_grad(double* g, const double* d) {
    g[0] = d[0] + 0.5 * (d[1] + d[2]);
    g[1] = 0.5 * (d[1] - d[2]);
    g[2] = 0.5 * (d[1] + d[2]) + d[3];
  }
  // u = G g.
  static void weight(vf* u, const vf* g) {
    u[0] = g[0];
    u[1] = 0.5f * (g[0] + g[1] + g[2]);
    u[2] = 0.5f * (g[0] - g[1] + g[2]);
    u[3] = g[2];
  }
};

// F(4, 3): points 0, 1, -1, 2, -2, infinity.
template <>
struct Tile<4> {
  static constexpr int kAlpha = 6;
  static void input(vf* v, const vf* d) {
    const vf four = splat(4.0f), five = splat(5.0f), two = splat(2.0f);
    const vf d13 = d[1] + d[2], d24 = d[3] + d[4];
    v[0] = fmadd(four, d[0], d[4]) - five * d[2];
    v[1] = d24 - four * d13;
    v[2] = fmadd(four, d[1] - d[2], d[4] - d[3]);
    v[3] = fmadd(two, d[3] - d[1], d[4] - d[2]);
    v[4] = (d[4] - d[2]) - two * (d[3] - d[1]);
    v[5] = fmadd(four, d[1], d[5]) - five * d[3];
  }
  static void output(vf* y, const vf* m) {
    const vf s12 = m[1] + m[2], d12 = m[1] - m[2], s34 = m[3] + m[4], d34 = m[3] - m[4];
    y[0] = m[0] + s12 + s34;
    y[1] = fmadd(splat(2.0f), d34, d12);
    y[2] = fmadd(splat(4.0f), s34, s12);
    y[3] = fmadd(splat(8.0f), d34, d12) + m[5];
  }
  static void grad(vf* d, const vf* g) {
    const vf e = g[0] + g[2], o = g[1] + g[3];  // even and odd parts at +-1
    const vf e2 = fmadd(splat(4.0f), g[2], g[0]), o2 = fmadd(splat(8.0f), g[3], 2.0f * g[1]);
    d[0] = g[0];
    d[1] = e + o;
    d[2] = e - o;
    d[3] = e2 + o2;
    d[4] = e2 - o2;
    d[5] = g[3];
  }
  static void weight_grad(double* g, const double* d) {
    g[0] = d[0] / 4 - (d[1] + d[2]) / 6 + (d[3] + d[4]) / 24;
    g[1] = (d[2] - d[1]) / 6 + (d[3] - d[4]) / 12;
    g[2] = (d[3] + d[4]) / 6 - (d[1] + d[2]) / 6 + d[5];
  }
  static void weight(vf* u, const vf* g) {
    const vf g02 = g[0] + g[2], g02q = fmadd(splat(1.0f / 24), g[0], splat(1.0f / 6) * g[2]);
    u[0] = 0.25f * g[0];
    u[1] = (-1.0f / 6) * (g02 + g[1]);
    u[2] = (-1.0f / 6) * (g02 - g[1]);
    u[3] = fmadd(splat(1.0f / 12), g[1], g02q);
    u[4] = g02q - (1.0f / 12) * g[1];
    u[5] = g[2];
  }
};

// ---- layouts ----

// xt (rows, cols, Cp): xt[r][s][c] = xn[c][h0 + r][w0 + s] inside the image and c < C, else 0.
// xn is one image (C, H, W); h0 and w0 may be negative (padding).
void to_channels_last(float* xt, const float* xn, int64_t C, int64_t H, int64_t W, int64_t Cp,
                      int64_t h0, int64_t rows, int64_t w0, int64_t cols) {
  const int64_t s_lo = min64(cols, max64(0, -w0)), s_hi = max64(s_lo, min64(cols, W - w0));
  const int64_t r_lo = min64(rows, max64(0, -h0)), r_hi = max64(r_lo, min64(rows, H - h0));
  // The zeros: rows outside the image, then the columns outside it and the channels past C.
  std::memset(xt, 0, sizeof(float) * r_lo * cols * Cp);
  std::memset(xt + r_hi * cols * Cp, 0, sizeof(float) * (rows - r_hi) * cols * Cp);
  for (int64_t r = r_lo; r < r_hi; ++r) {
    float* row = xt + r * cols * Cp;
    std::memset(row, 0, sizeof(float) * s_lo * Cp);
    std::memset(row + s_hi * Cp, 0, sizeof(float) * (cols - s_hi) * Cp);
    for (int64_t s = s_lo; s < s_hi && Cp > C; ++s) {
      std::memset(row + s * Cp + C, 0, sizeof(float) * (Cp - C));
    }
  }
  const float* src = xn + (h0 + r_lo) * W + w0;  // row r of channel c at src + c * H * W + r * W
  float* dst = xt + r_lo * cols * Cp;
  // Blocks of kW channels x kW pixels of a row, transposed in registers.
  for (int64_t c = 0; c < C; c += kW) {
    const int block_c = static_cast<int>(min64(kW, C - c));
    for (int64_t r = 0; r < r_hi - r_lo; ++r) {
      for (int64_t s = s_lo; s < s_hi; s += kW) {
        transpose_block(dst + (r * cols + s) * Cp + c, Cp, src + c * H * W + r * W + s, H * W,
                        block_c, static_cast<int>(min64(kW, s_hi - s)));
      }
    }
  }
}

// yn (K, P, Q) rows [p0, p0 + rows), every q < Q, from stage (rows, cols, Kp): the channels-last
// output band of a unit, cols >= Q.
void from_channels_last(float* yn, const float* stage, int64_t K, int64_t P, int64_t Q,
                        int64_t Kp, int64_t p0, int64_t rows, int64_t cols) {
  const int64_t PQ = P * Q;
  // Blocks of kW pixels of a row x kW output channels, transposed in registers.
  for (int64_t k = 0; k < K; k += kW) {
    const int block_k = static_cast<int>(min64(kW, K - k));
    for (int64_t r = 0; r < rows; ++r) {
      const float* in = stage + r * cols * Kp + k;
      float* out = yn + (k * P + p0 + r) * Q;
      for (int64_t q = 0; q < Q; q += kW) {
        transpose_block(out + q, PQ, in + q * Kp, Kp, static_cast<int>(min64(kW, Q - q)),
                        block_k);
      }
    }
  }
}

// The fused conv block's pooling straight from a unit's channels-last output: ReLU and 2x2 max
// pooling of stage (rows, cols, Kp) (conv rows p0 + r, p0 even; column q < Q), vectors along the
// channels, into the image's yp (K, Pp, Qp) rows from p0 / 2 and codes (or null) the same shape;
// an odd last row or column is the pooling's floor. Each window by simd.h's window_max, as
// pool2x2_kernels.cpp's pool_row: the same numbers and codes. buf holds
// (rows / 2) * (Q / 2) * Kp * 2 + K * (rows / 2) * (Q / 2) floats.
void pool_channels_last(float* yp, uint8_t* codes, const float* stage, int64_t K, int64_t Kp,
                        int64_t rows, int64_t cols, int64_t Q, int64_t Pp, int64_t p0,
                        float* buf) {
  const int64_t pr = rows / 2, Qp = Q / 2, windows = pr * Qp;
  float* best_cl = buf;                   // (pr, Qp, Kp)
  float* code_cl = buf + windows * Kp;    // (pr, Qp, Kp): codes as int32 bits
  float* code_t = code_cl + windows * Kp;  // (K, pr, Qp)
  for (int64_t i = 0; i < pr; ++i) {
    for (int64_t j = 0; j < Qp; ++j) {
      const float* top = stage + (2 * i * cols + 2 * j) * Kp;
      const float* bottom = top + cols * Kp;
      float* out = best_cl + (i * Qp + j) * Kp;
      float* out_code = code_cl + (i * Qp + j) * Kp;
      for (int64_t k = 0; k < Kp; k += kW) {
        const vf a = relu_ps(load(top + k)), b = relu_ps(load(top + Kp + k));
        const vf c = relu_ps(load(bottom + k)), d = relu_ps(load(bottom + Kp + k));
        vi code;
        const vf best = window_max(a, b, c, d, code);
        store(out + k, best);
        store(out_code + k, (vf)code);
      }
    }
  }
  // The unit's windows are one run in both layouts (rows p0 / 2... of a plane are contiguous):
  // blocks of kW windows x kW channels, whatever the row length.
  const int64_t plane = Pp * Qp, first = (p0 / 2) * Qp;
  for (int64_t k = 0; k < K; k += kW) {
    const int block_k = static_cast<int>(min64(kW, K - k));
    for (int64_t w = 0; w < windows; w += kW) {
      const int n = static_cast<int>(min64(kW, windows - w));
      transpose_block(yp + k * plane + first + w, plane, best_cl + w * Kp + k, Kp, n, block_k);
      if (codes != nullptr) {
        transpose_block(code_t + k * windows + w, windows, code_cl + w * Kp + k, Kp, n, block_k);
      }
    }
  }
  if (codes == nullptr) return;
  for (int64_t k = 0; k < K; ++k) {
    const float* run = code_t + k * windows;
    uint8_t* dst = codes + k * plane + first;
    for (int64_t w = 0; w < windows; w += kW) {
      const int n = static_cast<int>(min64(kW, windows - w));
      store_bytes_first(dst + w, (vi)load_first(run + w, n), n);
    }
  }
}

// u (alpha^2, Kp / NR, Cp, NR) = G g G^T of w (K, C, 3, 3), zero past K and C, packed in
// NR-wide panels of output channels; vectors run along output channels.
template <int M>
void pack_weight(float* u, const float* w, int64_t K, int64_t C, int64_t Cp, int64_t Kp) {
  constexpr int A = Tile<M>::kAlpha;
  const int64_t plane = Kp * Cp;
  for (int64_t c = 0; c < Cp; ++c) {
    for (int64_t k0 = 0; k0 < Kp; k0 += kW) {
      alignas(64) float taps[9][kW];  // taps[t][l] = w[k0 + l][c][t]
      for (int64_t l = 0; l < kW; ++l) {
        const bool inside = k0 + l < K && c < C;
        for (int t = 0; t < 9; ++t) taps[t][l] = inside ? w[((k0 + l) * C + c) * 9 + t] : 0.0f;
      }
      vf rows[3][A];  // rows[i] = G applied along kernel row i
      for (int i = 0; i < 3; ++i) {
        const vf g[3] = {load(taps[3 * i]), load(taps[3 * i + 1]), load(taps[3 * i + 2])};
        Tile<M>::weight(rows[i], g);
      }
      float* dst = u + ((k0 / kTileNR) * Cp + c) * kTileNR + k0 % kTileNR;
      for (int j = 0; j < A; ++j) {
        const vf g[3] = {rows[0][j], rows[1][j], rows[2][j]};
        vf out[A];
        Tile<M>::weight(out, g);
        for (int i = 0; i < A; ++i) store(dst + (i * A + j) * plane, out[i]);
      }
    }
  }
}

// ---- the transforms of a band of tiles ----

// v[xi][t_first + i][.] for the tiles of a band: tile_rows x tiles_w tiles in row-major order,
// tile (a, b) reading xt (tile_rows * M + 2, tiles_w * M + 2, Cp) at row a * M, column b * M.
// ldv = T * Cp, the distance between transform points in v.
template <int M>
void input_tiles(float* v, int64_t ldv, int64_t t_first, const float* xt, int64_t Cp,
                 int64_t tile_rows, int64_t tiles_w) {
  constexpr int A = Tile<M>::kAlpha;
  const int64_t cols = tiles_w * M + 2;
  for (int64_t a = 0; a < tile_rows; ++a) {
    for (int64_t b = 0; b < tiles_w; ++b) {
      const float* patch = xt + (a * M * cols + b * M) * Cp;
      float* vt = v + (t_first + a * tiles_w + b) * Cp;
      for (int64_t c = 0; c < Cp; c += kW) {
        vf tmp[A][A];  // B^T applied down each column, then along each row
        for (int j = 0; j < A; ++j) {
          vf d[A], out[A];
          for (int i = 0; i < A; ++i) d[i] = load(patch + (i * cols + j) * Cp + c);
          Tile<M>::input(out, d);
          for (int i = 0; i < A; ++i) tmp[i][j] = out[i];
        }
        for (int i = 0; i < A; ++i) {
          vf out[A];
          Tile<M>::input(out, tmp[i]);
          for (int j = 0; j < A; ++j) store(vt + (i * A + j) * ldv + c, out[j]);
        }
      }
    }
  }
}

// stage (tile_rows * M, tiles_w * M, Kp) = A^T mt A (+ bias) for the tiles of a band, which
// start at tile t_first of mt; ldm = T * Kp, the distance between transform points in mt.
template <int M>
void output_tiles(float* stage, const float* mt, int64_t ldm, int64_t t_first, int64_t Kp,
                  int64_t tile_rows, int64_t tiles_w, const float* bias, int64_t K) {
  constexpr int A = Tile<M>::kAlpha;
  const int64_t cols = tiles_w * M;
  for (int64_t a = 0; a < tile_rows; ++a) {
    for (int64_t b = 0; b < tiles_w; ++b) {
      const float* mtt = mt + (t_first + a * tiles_w + b) * Kp;
      float* out = stage + (a * M * cols + b * M) * Kp;
      for (int64_t k = 0; k < Kp; k += kW) {
        vf bv = vf{};
        if (bias != nullptr) {
          bv = load_first(bias + k, static_cast<int>(min64(kW, max64(0, K - k))));
        }
        vf tmp[A][M];  // A^T along each row, then down each column
        for (int i = 0; i < A; ++i) {
          vf m[A];
          for (int j = 0; j < A; ++j) m[j] = load(mtt + (i * A + j) * ldm + k);
          Tile<M>::output(tmp[i], m);
        }
        for (int j = 0; j < M; ++j) {
          vf col[A], y[M];
          for (int i = 0; i < A; ++i) col[i] = tmp[i][j];
          Tile<M>::output(y, col);
          for (int i = 0; i < M; ++i) store(out + (i * cols + j) * Kp + k, y[i] + bv);
        }
      }
    }
  }
}

// dm[xi][t_first + t] (ldm apart per xi) = A dY A^T for a band of tile_rows x tiles_w tiles of
// the output gradient dyt (tile_rows * M, tiles_w * M, Kp), channels-last: the weight gradient's
// view of each output tile.
// The two passes are input_tiles' with M points in, kept apart on purpose: as one template
// taking the 1-D transform, GCC -O3 kept it out of line (a call per kW channels).
template <int M>
void grad_tiles(float* dm, int64_t ldm, int64_t t_first, const float* dyt, int64_t Kp,
                int64_t tile_rows, int64_t tiles_w) {
  constexpr int A = Tile<M>::kAlpha;
  const int64_t cols = tiles_w * M;
  for (int64_t a = 0; a < tile_rows; ++a) {
    for (int64_t b = 0; b < tiles_w; ++b) {
      const float* patch = dyt + (a * M * cols + b * M) * Kp;
      float* dmt = dm + (t_first + a * tiles_w + b) * Kp;
      for (int64_t k = 0; k < Kp; k += kW) {
        vf tmp[A][M];  // A down each column, then along each row
        for (int j = 0; j < M; ++j) {
          vf g[M], out[A];
          for (int i = 0; i < M; ++i) g[i] = load(patch + (i * cols + j) * Kp + k);
          Tile<M>::grad(out, g);
          for (int i = 0; i < A; ++i) tmp[i][j] = out[i];
        }
        for (int i = 0; i < A; ++i) {
          vf out[A];
          Tile<M>::grad(out, tmp[i]);
          for (int j = 0; j < A; ++j) store(dmt + (i * A + j) * ldm + k, out[j]);
        }
      }
    }
  }
}

// dw (K, C, 3, 3) = G^T du G from du (alpha^2, Cp, Kp): the weight gradient from its transform.
template <int M>
void unpack_weight_grad(float* dw, const float* du, int64_t K, int64_t C, int64_t Cp,
                        int64_t Kp) {
  constexpr int A = Tile<M>::kAlpha;
  for (int64_t k = 0; k < K; ++k) {
    for (int64_t c = 0; c < C; ++c) {
      double cols[A][3];  // G^T applied down each column of du[.][c][k]
      for (int j = 0; j < A; ++j) {
        double d[A];
        for (int i = 0; i < A; ++i) d[i] = du[((i * A + j) * Cp + c) * Kp + k];
        Tile<M>::weight_grad(cols[j], d);
      }
      for (int r = 0; r < 3; ++r) {
        double d[A], g[3];
        for (int j = 0; j < A; ++j) d[j] = cols[j][r];
        Tile<M>::weight_grad(g, d);
        for (int s = 0; s < 3; ++s) dw[((k * C + c) * 3 + r) * 3 + s] = static_cast<float>(g[s]);
      }
    }
  }
}

// ---- the batched GEMM ----

// c (mr <= MR rows, ldc) = (accumulate ? c : 0) + a @ b over kc steps, where a's row i, step p
// is a[i * rs_a + p * cs_a] and b's step p is the NR floats at b + p * ldb; rows past mr repeat
// the last one and are not stored.
void gemm_tile(float* c, int64_t ldc, const float* a, int64_t rs_a, int64_t cs_a, int64_t mr,
               const float* b, int64_t ldb, int64_t kc, bool accumulate) {
  const float* rows[kTileMR];
  for (int i = 0; i < kTileMR; ++i) rows[i] = a + min64(i, mr - 1) * rs_a;
  vf acc[kTileMR][kTileNV];
#pragma GCC unroll 16
  for (int i = 0; i < kTileMR; ++i) {
#pragma GCC unroll 4
    for (int v = 0; v < kTileNV; ++v) {
      acc[i][v] = accumulate && i < mr ? load(c + i * ldc + v * kW) : vf{};
    }
  }
#pragma GCC unroll 2
  for (int64_t p = 0; p < kc; ++p) {
    vf bv[kTileNV];
#pragma GCC unroll 4
    for (int v = 0; v < kTileNV; ++v) bv[v] = load(b + p * ldb + v * kW);
#pragma GCC unroll 16
    for (int i = 0; i < kTileMR; ++i) {
      const vf ai = splat(rows[i][p * cs_a]);
#pragma GCC unroll 4
      for (int v = 0; v < kTileNV; ++v) acc[i][v] = fmadd(ai, bv[v], acc[i][v]);
    }
  }
  if (mr == kTileMR) {
#pragma GCC unroll 16
    for (int i = 0; i < kTileMR; ++i) {
#pragma GCC unroll 4
      for (int v = 0; v < kTileNV; ++v) store(c + i * ldc + v * kW, acc[i][v]);
    }
    return;
  }
  for (int64_t i = 0; i < mr; ++i) {
    for (int v = 0; v < kTileNV; ++v) store(c + i * ldc + v * kW, acc[i][v]);
  }
}

// mt[xi] (T, Kp) = v[xi] (T, Cp) @ u[xi] (Cp, Kp) for xi < points; v[xi] at v + xi * ldv,
// mt[xi] at mt + xi * ldm.
void gemm_points(float* mt, int64_t ldm, const float* v, int64_t ldv, const float* u,
                 int64_t points, int64_t T, int64_t Cp, int64_t Kp) {
  for (int64_t xi = 0; xi < points; ++xi) {
    for (int64_t jp = 0; jp * kTileNR < Kp; ++jp) {
      const float* panel = u + (xi * Kp + jp * kTileNR) * Cp;  // (Cp, NR)
      for (int64_t t0 = 0; t0 < T; t0 += kTileMR) {
        gemm_tile(mt + xi * ldm + t0 * Kp + jp * kTileNR, Kp, v + xi * ldv + t0 * Cp, Cp, 1,
                  min64(kTileMR, T - t0), panel, kTileNR, Cp, false);
      }
    }
  }
}

// du[xi] (Cp, Kp) += v[xi]^T (Cp, T) @ dm[xi] (T, Kp) for xi < points (strides as gemm_points).
void gemm_points_dw(float* du, const float* v, int64_t ldv, const float* dm, int64_t ldm,
                    int64_t points, int64_t T, int64_t Cp, int64_t Kp) {
  for (int64_t xi = 0; xi < points; ++xi) {
    for (int64_t jp = 0; jp * kTileNR < Kp; ++jp) {
      for (int64_t c0 = 0; c0 < Cp; c0 += kTileMR) {
        gemm_tile(du + (xi * Cp + c0) * Kp + jp * kTileNR, Kp, v + xi * ldv + c0, 1, Cp,
                  min64(kTileMR, Cp - c0), dm + xi * ldm + jp * kTileNR, Kp, T, true);
      }
    }
  }
}

constexpr Conv2dWinogradKernels kKernels = {
    kTileMR,
    kTileNR,
    kW,
    to_channels_last,
    from_channels_last,
    {pack_weight<2>, pack_weight<4>},
    {input_tiles<2>, input_tiles<4>},
    {output_tiles<2>, output_tiles<4>},
    gemm_points,
    {grad_tiles<2>, grad_tiles<4>},
    {unpack_weight_grad<2>, unpack_weight_grad<4>},
    gemm_points_dw,
    pool_channels_last,
};

}  // namespace

const Conv2dWinogradKernels& conv2d_winograd_kernels() { return kKernels; }

}  // namespace fastdl::cpu::FASTDL_ISA
