// conv2d: 2-D cross-correlation with zero padding, forward and backward, float32
// (csrc/cpu/conv2d.cpp, bodies in csrc/cpu/conv2d_kernels.cpp compiled per ISA).
//
// Shapes: x is (N, C, H, W), w is (K, C, R, S), b is (K,), y and dy are (N, K, P, Q) with
// P = (H + 2 pad_h - R) / stride_h + 1 and Q = (W + 2 pad_w - S) / stride_w + 1.
// Variants: an implicit GEMM on the GEMM micro-kernel, reading the im2col matrix straight from
// the padded image (forward, weight gradient, and the input gradient of stride-1 convolutions
// as a forward with the flipped weight); Winograd F(2x2, 3x3) and F(4x4, 3x3) for 3x3 stride-1
// forwards (and so input gradients) and weight gradients; a direct vectorised path for one input
// channel; and
// im2col + GEMM + col2im for the input gradient of strided convolutions.
// Tests: tests/test_kernels_conv2d.py, tests/test_kernels_simd.py. Bench: bench/ (conv2d).
#pragma once
#include <cstdint>

#include "cpu/dispatch.h"

namespace fastdl::cpu {

// Which algorithm a 3x3 stride-1 convolution's forward, input and weight gradients run:
// `automatic` picks per shape for the forward and input gradient and keeps the GEMM for the
// weight gradient (conv2d.cpp: winograd_tile, carve_backward_plan); `winograd` forces Winograd
// with the tile automatic would pick (F(2x2) for the weight gradient), `winograd_2x2` /
// `winograd_4x4` force the tile; `gemm` keeps the implicit GEMM (or the one-channel path).
// Shapes Winograd cannot run (not 3x3 stride 1) ignore the choice.
enum class Conv2dAlgorithm : int { automatic, gemm, winograd, winograd_2x2, winograd_4x4 };

// Every size of one convolution. The bindings fill it and check it (stride >= 1, padding >= 0,
// R <= H + 2 pad_h, S <= W + 2 pad_w, P and Q as above, all products fit int64).
struct Conv2dParams {
  int64_t N, C, H, W;          // input
  int64_t K, R, S;             // weight: output channels, kernel height and width
  int64_t P, Q;                // output height and width
  int64_t stride_h, stride_w;
  int64_t pad_h, pad_w;
  Conv2dAlgorithm algorithm = Conv2dAlgorithm::automatic;  // (not a size: the path to take)
};

// Floats of scratch conv2d_forward needs with nthreads threads.
int64_t conv2d_forward_workspace_floats(const Conv2dParams& cp, int nthreads);

// y is (N, K, P, Q); x is (N, C, H, W); w is (K, C, R, S); b is (K,) or nullptr (no bias).
// workspace holds conv2d_forward_workspace_floats(cp, nthreads) floats.
void conv2d_forward(float* y, const float* x, const float* w, const float* b,
                    const Conv2dParams& cp, float* workspace, int nthreads);

// Floats of scratch conv2d_backward needs for the gradients requested.
int64_t conv2d_backward_workspace_floats(const Conv2dParams& cp, bool need_dx, bool need_dw,
                                         int nthreads);

// dx is (N, C, H, W), dw is (K, C, R, S), db is (K,): each computed only when non-null.
// dy is (N, K, P, Q); x is (N, C, H, W) (read only for dw); w is (K, C, R, S) (read only for dx).
// workspace holds conv2d_backward_workspace_floats(cp, dx != nullptr, dw != nullptr, nthreads).
void conv2d_backward(float* dx, float* dw, float* db, const float* dy, const float* x,
                     const float* w, const Conv2dParams& cp, float* workspace, int nthreads);

// The fused conv block of fastdl.compile: yp = maxpool2x2(relu(conv2d(x, w) + b)), yp
// (N, K, P / 2, Q / 2), and codes (the same shape, one byte each, or nullptr: inference) the
// argmax's place in its 2x2 window (0, 1: top row; 2, 3: bottom row; csrc/cpu/fused.h). One
// input channel (the direct path; not under a forced Winograd setting): each image's conv planes
// are computed, pooled and, in backward, rebuilt from dyp and codes in a worker's cache-sized
// scratch, so the full-size conv output and its gradient never reach memory. Winograd forwards
// pool each unit's rows as they leave the output transform (the conv output never reaches
// memory either). Otherwise: conv2d_forward into the workspace, then the pooling; in backward
// the dense gradient, then conv2d_backward. P and Q must be >= 2 (the binding checks).
int64_t conv2d_relu_maxpool2x2_forward_workspace_floats(const Conv2dParams& cp, int nthreads);
void conv2d_relu_maxpool2x2_forward(float* yp, uint8_t* codes, const float* x, const float* w,
                                    const float* b, const Conv2dParams& cp, float* workspace,
                                    int nthreads);

// dx, dw, db (each optional, as conv2d_backward) of the block: conv2d_backward of dz, where dz is
// zero except dyp at each window's argmax place where yp > 0 (yp, codes from the forward).
// With several input channels under the automatic setting, dw sums only those places (each
// window's g times the input patch under its argmax: a quarter of the multiply-adds), so it
// equals conv2d_backward's to rounding, with the same exact zeros, infinities and NaN.
// Returns how many codes were not 0..3 (their windows get no gradient; the binding raises).
int64_t conv2d_relu_maxpool2x2_backward_workspace_floats(const Conv2dParams& cp, bool need_dx,
                                                         bool need_dw, int nthreads);
int64_t conv2d_relu_maxpool2x2_backward(float* dx, float* dw, float* db, const float* dyp,
                                        const uint8_t* codes, const float* yp, const float* x,
                                        const float* w, const Conv2dParams& cp, float* workspace,
                                        int nthreads);

}  // namespace fastdl::cpu

namespace fastdl::cpu {

// Kernels with at most this many taps (R * S) and one input channel take the direct path.
constexpr int kConv2dMaxTapsC1 = 16;

// One ISA build's conv2d bodies (conv2d_kernels.cpp, which documents each in full).
struct Conv2dKernels {
  int64_t mr, nr;  // the micro-kernel's register tile (rows are pixels or weight taps)
  int64_t dw_mr;   // dw_block's tile rows (weight taps; its columns are nr)
  // xpad (C, H + 2 pad_h, W + 2 pad_w) then kW zeros = xn (C, H, W) zero-padded.
  void (*pad_image)(float* xpad, const float* xn, int64_t C, int64_t H, int64_t W,
                    int64_t pad_h, int64_t pad_w);
  // wt: ceil(K / NR) panels of CRS x NR from w (K, CRS).
  void (*pack_weight_t)(float* wt, const float* w, int64_t K, int64_t CRS);
  // dyt: ceil(K / NR) panels of PQ x NR from dyn (K, PQ); sums (K,) or null gets row sums.
  void (*pack_dy_t)(float* dyt, float* sums, const float* dyn, int64_t K, int64_t PQ);
  // yn (K, PQ), pixels [m0, m1), taps [t0, t0 + kc); first: start from the bias, else add.
  void (*forward_block)(float* yn, const float* xpad, const int64_t* pix_off,
                        const int64_t* crs_off, const float* wt, const float* bias, int64_t K,
                        int64_t PQ, int64_t CRS, int64_t m0, int64_t m1, int64_t t0, int64_t kc,
                        bool first);
  // dwt (round_up(CRS, dw_mr), ldw) += taps [r0, r1) x pixels [m0, m0 + kc) of one image;
  // first: = instead of +=.
  void (*dw_block)(float* dwt, int64_t ldw, const float* xpad, const int64_t* crs_off,
                   const int64_t* pix_off, const float* dyt, int64_t K, int64_t PQ, int64_t CRS,
                   int64_t r0, int64_t r1, int64_t m0, int64_t kc, bool first);
  // C = 1, stride (sh, 1): yn (K, P, Q) output rows [p0, p1).
  void (*forward_c1)(float* yn, const float* xpad, int64_t Wp, const float* w, const float* bias,
                     int64_t K, int64_t R, int64_t S, int64_t P, int64_t Q, int64_t sh,
                     int64_t p0, int64_t p1);
  // C = 1, stride (sh, 1): dwk (K, R * S) += one image's weight gradient; sums (K,) or null.
  void (*dw_c1)(float* dwk, float* sums, const float* xpad, int64_t Wp, const float* dyn,
                int64_t K, int64_t R, int64_t S, int64_t P, int64_t Q, int64_t sh);
  // The conv block's gradients from its pooled gradient: acc + dst[k] (T floats, a multiple of
  // kW) += the sum over items [first[k], first[k + 1]) of gs[i] * the T floats at xr + offs[i],
  // for lists k < K.
  void (*gather_patches)(float* acc, const int64_t* dst, const float* xr, int64_t T,
                    const int64_t* offs, const float* gs, const int64_t* first, int64_t K);
  // g[i] = dyp[i] where yp[i] > 0 and codes[i] <= 3, else 0, for i < n; returns how many
  // codes are above 3.
  int64_t (*pooled_gradient)(float* g, const float* dyp, const uint8_t* codes, const float* yp,
                             int64_t n);
  // The gathered gradients' patch layout: xr[p][col][r] = xt[p * sh + r][col] (rows of Cp floats,
  // a multiple of kW; P x Wx x R of them), and its adjoint dxt[p * sh + r][col] += dxr[p][col][r].
  void (*replicate_rows)(float* xr, const float* xt, int64_t P, int64_t Wx, int64_t R, int64_t Cp,
                         int64_t sh);
  void (*fold_rows)(float* dxt, const float* dxr, int64_t P, int64_t Wx, int64_t R, int64_t Cp,
                    int64_t sh);
  // Whether a[0, n) holds an inf or a NaN.
  bool (*any_nonfinite)(const float* a, int64_t n);
};

}  // namespace fastdl::cpu

namespace fastdl::cpu {

// One ISA build's Winograd bodies (conv2d_winograd_kernels.cpp, which documents each and the
// layouts); the arrays hold F(2x2, 3x3) at [0] and F(4x4, 3x3) at [1].
struct Conv2dWinogradKernels {
  int64_t mr, nr;  // the batched GEMM's register tile: MR tiles x NR output channels
  int64_t cw;      // channels per vector of the transforms (Cp is a multiple)
  // xt (rows, cols, Cp) = xn (C, H, W) rows from h0, columns from w0, channels-last, zero outside.
  void (*to_channels_last)(float* xt, const float* xn, int64_t C, int64_t H, int64_t W,
                           int64_t Cp, int64_t h0, int64_t rows, int64_t w0, int64_t cols);
  // yn (K, P, Q) rows [p0, p0 + rows) from stage (rows, cols, Kp).
  void (*from_channels_last)(float* yn, const float* stage, int64_t K, int64_t P, int64_t Q,
                             int64_t Kp, int64_t p0, int64_t rows, int64_t cols);
  // u (alpha^2, Kp / NR, Cp, NR) = the transformed w (K, C, 3, 3).
  void (*pack_weight[2])(float* u, const float* w, int64_t K, int64_t C, int64_t Cp, int64_t Kp);
  // v[xi][t_first + t] (ldv apart per xi) for a band of tile_rows x tiles_w tiles of xt.
  void (*input_tiles[2])(float* v, int64_t ldv, int64_t t_first, const float* xt, int64_t Cp,
                         int64_t tile_rows, int64_t tiles_w);
  // stage (tile_rows * m, tiles_w * m, Kp) from mt's tiles [t_first, ...) plus bias (K,) or null.
  void (*output_tiles[2])(float* stage, const float* mt, int64_t ldm, int64_t t_first,
                          int64_t Kp, int64_t tile_rows, int64_t tiles_w, const float* bias,
                          int64_t K);
  // mt[xi] (T, Kp) = v[xi] (T, Cp) @ u[xi] for xi < points, v[xi] ldv and mt[xi] ldm floats apart.
  void (*gemm_points)(float* mt, int64_t ldm, const float* v, int64_t ldv, const float* u,
                      int64_t points, int64_t T, int64_t Cp, int64_t Kp);
  // The weight gradient: dm[xi][t_first + t] = A dY A^T for a band of the channels-last dy.
  void (*grad_tiles[2])(float* dm, int64_t ldm, int64_t t_first, const float* dyt, int64_t Kp,
                        int64_t tile_rows, int64_t tiles_w);
  // dw (K, C, 3, 3) = G^T du G from du (alpha^2, Cp, Kp).
  void (*unpack_weight_grad[2])(float* dw, const float* du, int64_t K, int64_t C, int64_t Cp,
                                int64_t Kp);
  // du[xi] (Cp, Kp) += v[xi]^T @ dm[xi] (T, Kp) for xi < points (strides as gemm_points).
  void (*gemm_points_dw)(float* du, const float* v, int64_t ldv, const float* dm, int64_t ldm,
                         int64_t points, int64_t T, int64_t Cp, int64_t Kp);
  // The fused conv block: ReLU and 2x2 max pooling of stage (rows, cols, Kp), conv rows from p0
  // (even), into an image's yp (K, Pp, Q / 2) rows from p0 / 2 and codes (or null); buf holds
  // (rows / 2) * (Q / 2) * (2 Kp + K) floats.
  void (*pool_channels_last)(float* yp, uint8_t* codes, const float* stage, int64_t K,
                             int64_t Kp, int64_t rows, int64_t cols, int64_t Q, int64_t Pp,
                             int64_t p0, float* buf);
};

}  // namespace fastdl::cpu

FASTDL_PER_ISA(const Conv2dKernels& conv2d_kernels())
FASTDL_PER_ISA(const Conv2dWinogradKernels& conv2d_winograd_kernels())
