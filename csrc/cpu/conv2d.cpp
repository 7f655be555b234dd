// conv2d forward and backward (cross-correlation, zero padding, any stride), float32: the plan,
// the threads and the general fallback (compiled once; the per-ISA bodies are in
// conv2d_kernels.cpp, which also explains the implicit GEMM's offset tables).
//
// Shapes: x (N, C, H, W), w (K, C, R, S), b (K,), y / dy (N, K, P, Q); CRS = C * R * S taps,
// PQ = P * Q pixels per image.
// Paths:
//   forward  3x3 stride 1 where winograd_tile says so (cp.algorithm, or a cost model under
//            automatic): Winograd F(2x2, 3x3) or F(4x4, 3x3) (conv2d_winograd_kernels.cpp).
//            C == 1 and stride_w == 1 (and R * S <= 16): forward_c1, vectors along output rows.
//            otherwise: the implicit GEMM, y[n] (PQ x K) = col[n]^T @ w^T with bias in the store.
//   dx       stride 1 and padding <= kernel - 1: the forward of dy with the flipped weight
//            wf[c][k][r][s] = w[k][c][R-1-r][S-1-s] and padding R-1-pad (Winograd for 3x3 where
//            winograd_tile says so, else the implicit GEMM).
//            otherwise: per image dcol (CRS, PQ) = w^T @ dy[n] on the GEMM, then col2im.
//   dw, db   when the setting asks for Winograd (automatic never does: see carve_backward_plan):
//            du[xi] += v[xi]^T @ (A dY A^T)[xi], then dw = G^T du G; db in its own pass.
//            Else C == 1 as forward: dw_c1; otherwise the
//            implicit GEMM dw^T (CRS x K) += col[n] @ dy[n]^T. Both sum each dy[n][k] plane on
//            the way, so db costs no extra pass. The next image is prefetched while one
//            computes. NOTE: products with the padding are not skipped: 0 * inf must give NaN,
//            as PyTorch's and the reference's do when dy holds an inf.
//            The fused conv block's dw (several input channels, automatic): gathered from the
//            pooled gradient, each window's g times the input patch under its argmax (a quarter
//            of the dense product's multiply-adds; see gathered_dw).
// Threads: work is cut into about four units per thread, handed out first come, first served (a
// thread slowed by another process's load on its core does not hold the others up). Forward and
// dx: units are chunks of pixel tiles (or output rows, C == 1) of one image, or for Winograd a few
// whole images or tile rows of one; each thread pads the images it works on into its own buffer.
// dw: the batch is summed in up to 8 groups of images, each into its own accumulator (threads
// claim groups from a counter), then the groups are added in order; with one group (batch 1),
// threads split the taps (Winograd: one thread). db: plane sums per image, added in image order
// in double. Every output is thus summed in an order fixed by the shapes alone: no result
// depends on the thread count.
// Tests: tests/test_kernels_conv2d.py, tests/test_kernels_fused.py (the conv block),
// tests/test_kernels_simd.py. Bench: bench/ (conv2d).
#include "cpu/conv2d.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <new>
#include <numeric>

#include "cpu/fused.h"
#include "cpu/gemm.h"
#include "cpu/parallel.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace fastdl::cpu {

namespace {

constexpr int64_t kAlignFloats = 16;  // workspace regions start on 64-byte boundaries
// Taps per block of the implicit GEMM's K loop (a kc x NR panel of the packed weight).
constexpr int64_t kTapsKC = 576;
// Pixels per block of the weight gradient's K loop.
constexpr int64_t kPixelsKC = 1024;
// Work is cut into about this many units per thread and handed out first come, first served, so
// a thread slowed by another process on its core does not hold the others up.
constexpr int64_t kUnitsPerWorker = 4;
// The threads a convolution of geometry cp runs on, given the caller's nthreads: one below
// parallel.h's kParallelMinMacs (the direct convolution's count). The CNN's conv2 at batch 1
// (3.6M) took 77 -> 103 us forward and 177 -> 219 us backward on two threads instead of one.
int conv_threads(const Conv2dParams& cp, int nthreads) {
  const double macs = static_cast<double>(cp.N) * cp.K * cp.C * cp.R * cp.S * cp.P * cp.Q;
  return macs < kParallelMinMacs ? 1 : std::max(1, nthreads);
}
// The weight gradient sums the batch in at most this many groups of images, each into its own
// accumulator (threads take groups first come, first served), then adds the groups in order:
// the result depends on the batch size only, never on the threads.
constexpr int64_t kDwGroups = 8;
// ... as long as the accumulators take at most this many floats together.
constexpr int64_t kDwGroupFloats = int64_t{1} << 22;

const Conv2dKernels* const kKernels[kIsaCount] = FASTDL_ISA_TABLE(conv2d_kernels);

int64_t ceil_div_nonneg(int64_t a, int64_t b) { return a <= 0 ? 0 : (a + b - 1) / b; }
// Balanced block size: the fewest blocks of at most `most`, all about the same size.
int64_t balanced(int64_t total, int64_t most) {
  return total <= 0 ? 1 : ceil_div(total, ceil_div(total, most));
}


// Hands out consecutive, 64-byte-aligned regions of a float workspace (sizes in floats). The
// same calls on a null base only add up the size, so sizing and carving share one code path.
class Carver {
 public:
  explicit Carver(float* base) : next_(base == nullptr ? nullptr : align64(base)) {}
  float* floats(int64_t n) {
    float* p = next_;
    used_ += round_up(std::max<int64_t>(n, 0), kAlignFloats);
    if (next_ != nullptr) next_ += round_up(std::max<int64_t>(n, 0), kAlignFloats);
    return p;
  }
  int64_t* int64s(int64_t n) {
    float* p = floats(2 * n);
    return p == nullptr ? nullptr : new (p) int64_t[std::max<int64_t>(n, 1)];
  }
  int64_t size() const { return used_ + kAlignFloats; }

 private:
  float* next_;
  int64_t used_ = 0;
};

// One implicit-GEMM convolution: input (C, H, W) per image, padded by (ph, pw), kernel (R, S),
// stride (sh, sw), output (K, P, Q) per image. For dx this is dy as input and dx as output.
struct Implicit {
  int64_t N, C, H, W, K, R, S, P, Q, sh, sw, ph, pw;
  int64_t Hp() const { return H + 2 * ph; }
  int64_t Wp() const { return W + 2 * pw; }
  int64_t CRS() const { return C * R * S; }
  int64_t PQ() const { return P * Q; }
  bool padded() const { return ph > 0 || pw > 0; }
  int64_t xpad_floats(int64_t slack) const { return C * Hp() * Wp() + slack; }
};

Implicit forward_geometry(const Conv2dParams& cp) {
  return {cp.N, cp.C, cp.H, cp.W, cp.K, cp.R, cp.S, cp.P, cp.Q,
          cp.stride_h, cp.stride_w, cp.pad_h, cp.pad_w};
}

// dx of a stride-1 convolution as a forward: input dy (K, P, Q), output dx (C, H, W).
Implicit dx_geometry(const Conv2dParams& cp) {
  return {cp.N, cp.K, cp.P, cp.Q, cp.C, cp.R, cp.S, cp.H, cp.W,
          1, 1, cp.R - 1 - cp.pad_h, cp.S - 1 - cp.pad_w};
}

bool use_c1(const Conv2dParams& cp) {
  return cp.C == 1 && cp.stride_w == 1 && cp.R * cp.S <= kConv2dMaxTapsC1;
}

bool dx_as_forward(const Conv2dParams& cp) {
  return cp.stride_h == 1 && cp.stride_w == 1 && cp.pad_h <= cp.R - 1 && cp.pad_w <= cp.S - 1;
}

// The largest kW of any ISA build: the slack pad_image writes after each padded image.
constexpr int64_t kSlack = 16;

// pix_off (PQ) and crs_off (CRS) of conv2d_kernels.cpp's header, for geometry g.
void fill_offsets(int64_t* pix_off, int64_t* crs_off, const Implicit& g) {
  const int64_t Hp = g.padded() ? g.Hp() : g.H, Wp = g.padded() ? g.Wp() : g.W;
  for (int64_t p = 0; p < g.P; ++p) {
    for (int64_t q = 0; q < g.Q; ++q) pix_off[p * g.Q + q] = p * g.sh * Wp + q * g.sw;
  }
  for (int64_t c = 0; c < g.C; ++c) {
    for (int64_t r = 0; r < g.R; ++r) {
      for (int64_t s = 0; s < g.S; ++s) crs_off[(c * g.R + r) * g.S + s] = (c * Hp + r) * Wp + s;
    }
  }
}

// ---- the implicit-GEMM forward (y, and dx of stride-1 convolutions) ----

// Scratch of implicit_forward for geometry g; wt_src_floats extra floats for a flipped weight.
struct ForwardScratch {
  float* wt;
  int64_t* pix_off;
  int64_t* crs_off;
  float* xpads;  // one per worker, xpad_stride floats apart
  int64_t xpad_stride;
};

ForwardScratch carve_forward(Carver& cv, const Implicit& g, int64_t nr, int workers) {
  ForwardScratch s{};
  s.wt = cv.floats(ceil_div(g.K, nr) * g.CRS() * nr);
  s.pix_off = cv.int64s(g.PQ());
  s.crs_off = cv.int64s(g.CRS());
  s.xpad_stride = g.padded() ? round_up(g.xpad_floats(kSlack), kAlignFloats) : 0;
  s.xpads = cv.floats(s.xpad_stride * workers);
  return s;
}

// y (N, K, P, Q) = the convolution of x (N, C, H, W) in geometry g with the weight w (K, CRS)
// plus bias (K,) or nullptr, on nthreads threads.
void implicit_forward(float* y, const float* x, const float* w, const float* bias,
                      const Implicit& g, const ForwardScratch& s, const Conv2dKernels& kr,
                      int nthreads) {
  const int64_t CRS = g.CRS(), PQ = g.PQ(), chw = g.C * g.H * g.W;
  if (g.N == 0 || PQ == 0) return;  // y is empty (and the partition below would divide by 0)
  if (CRS == 0) {  // no taps: y is the bias
    for (int64_t n = 0; n < g.N; ++n) {
      for (int64_t k = 0; k < g.K; ++k) {
        std::fill(y + (n * g.K + k) * PQ, y + (n * g.K + k + 1) * PQ, bias ? bias[k] : 0.0f);
      }
    }
    return;
  }
  kr.pack_weight_t(s.wt, w, g.K, CRS);
  fill_offsets(s.pix_off, s.crs_off, g);
  const int64_t kc = balanced(CRS, kTapsKC);
  const int workers = std::max(1, nthreads);
  // Units: chunks of pixel tiles of one image (whole images when the batch is large enough).
  const int64_t tiles = ceil_div(PQ, kr.mr);
  const int64_t per_image = std::min(tiles, ceil_div(kUnitsPerWorker * workers, g.N));
  const int64_t chunk = ceil_div(tiles, per_image), chunks = ceil_div(tiles, chunk);
#pragma omp parallel num_threads(workers) if (workers > 1)
  {
    float* xpad = s.xpads + (workers > 1 ? thread_index() : 0) * s.xpad_stride;
    int64_t padded_n = -1;  // the image xpad holds
#pragma omp for schedule(dynamic, 1) nowait
    for (int64_t u = 0; u < g.N * chunks; ++u) {
      const int64_t n = u / chunks, part = u % chunks;
      const int64_t m0 = part * chunk * kr.mr, m1 = std::min(PQ, (part + 1) * chunk * kr.mr);
      const float* src = x + n * chw;
      if (g.padded()) {
        if (padded_n != n) kr.pad_image(xpad, src, g.C, g.H, g.W, g.ph, g.pw);
        padded_n = n;
        src = xpad;
      }
      float* yn = y + n * g.K * PQ;
      for (int64_t t0 = 0; t0 < CRS; t0 += kc) {
        kr.forward_block(yn, src, s.pix_off, s.crs_off, s.wt, bias, g.K, PQ, CRS, m0, m1, t0,
                         std::min(kc, CRS - t0), t0 == 0);
      }
    }
  }
}

// ---- Winograd F(m x m, 3x3): 3x3 stride-1 forwards (y, and dx as a forward), and dw ----

const Conv2dWinogradKernels* const kWinograd[kIsaCount] = FASTDL_ISA_TABLE(conv2d_winograd_kernels);

// A unit's transformed input and GEMM output (v and mt) take about this many floats together,
// so that they stay in L2 with the transformed weight.
constexpr int64_t kWinogradUnitFloats = int64_t{1} << 17;
// The weight gradient's GEMMs sum over a unit's tiles, loading and storing du once per unit:
// its units are larger, and each group of images has at least this many tiles where the batch
// allows (with fewer tiles in all, 16 on batch-1 conv2, it took 2.2x torch's time).
constexpr int64_t kWinogradDwUnitFloats = int64_t{1} << 19;
constexpr int64_t kWinogradDwGroupTiles = 64;

// The output tile m (2 or 4) Winograd runs geometry g with, or 0: the implicit GEMM (or the
// one-channel path) runs it. `automatic` compares a cost model, in multiply-adds, fitted on a
// sweep of shapes (1 thread, AMD EPYC Zen 4; conv2: GEMM 5.1 ms, F(2x2) 3.6, F(4x4) 3.1):
//   implicit GEMM  pixels * 9 * C * K rounded up to the GEMM's NR (its register tile)
//   Winograd       tiles * (alpha^2 * Cp * Kp + kTransformCost[m] * (Cp + Kp)), the batched
//                  GEMMs plus the transforms and layout changes of each tile and channel
// and takes Winograd only while its transformed weight (alpha^2 * Cp * Kp floats) fits
// kWinogradMaxWeightFloats: past that its GEMMs stream the weight from memory for every unit
// of tiles (512 -> 512 channels on 7x7, 2 images: F(4x4) 3.3x the GEMM's time; 256 -> 256, a
// quarter of the weight, still 0.7x).
constexpr double kTransformCost[2] = {230, 700};  // F(2x2), F(4x4)
constexpr int64_t kWinogradMaxWeightFloats = int64_t{1} << 22;

// only_2x2: automatic and winograd consider F(2x2) alone (the weight gradient, see
// carve_backward_plan).
int winograd_tile(const Implicit& g, Conv2dAlgorithm algorithm, int isa, bool only_2x2 = false) {
  if (g.R != 3 || g.S != 3 || g.sh != 1 || g.sw != 1 || g.N == 0 || g.C == 0 || g.PQ() == 0) {
    return 0;
  }
  const Conv2dWinogradKernels& kw = *kWinograd[isa];
  const int64_t Cp = round_up(g.C, kw.cw), Kp = round_up(g.K, kw.nr);
  const auto cost = [&](int64_t m) {
    const double tiles = static_cast<double>(g.N * ceil_div(g.P, m) * ceil_div(g.Q, m));
    const double alpha2 = static_cast<double>((m + 2) * (m + 2));
    return tiles * (alpha2 * Cp * Kp + kTransformCost[m / 4] * (Cp + Kp));
  };
  const int best = !only_2x2 && cost(4) <= cost(2) ? 4 : 2;
  switch (algorithm) {
    case Conv2dAlgorithm::gemm:
      return 0;
    case Conv2dAlgorithm::winograd_2x2:
      return 2;
    case Conv2dAlgorithm::winograd_4x4:
      return 4;
    case Conv2dAlgorithm::winograd:
      return best;
    case Conv2dAlgorithm::automatic:
      break;
  }
  const double gemm = static_cast<double>(g.N * g.PQ()) * 9.0 * static_cast<double>(g.C) *
                      static_cast<double>(round_up(g.K, kKernels[isa]->nr));
  const int64_t weight = (best + 2) * (best + 2) * Cp * Kp;
  return cost(best) < gemm && weight <= kWinogradMaxWeightFloats ? best : 0;
}

// Scratch and partition of winograd_forward. A unit is `images` whole images (rows == tiles_h)
// or `rows` tile rows of one image; each worker transforms, multiplies and stores a unit at a
// time in its own buffers.
struct WinogradScratch {
  int m, alpha;
  int64_t tiles_h, tiles_w, Cp, Kp;
  int64_t images, rows;  // per unit
  float* u;              // the transformed weight (alpha^2, Kp / NR, Cp, NR)
  float *xts, *vs, *mts, *stages;  // per worker, *_stride floats apart
  int64_t xt_stride, v_stride, mt_stride, stage_stride;
  float* planes;  // per worker, the pooling's scratch (pool_channels_last's buf; pooling only)
  int64_t plane_stride;
  // Units per image when they are chunks of tile rows; 0 when they are whole images.
  int64_t row_chunks() const { return rows < tiles_h ? ceil_div(tiles_h, rows) : 0; }
  struct Buffers {
    float *xt, *v, *mt, *stage, *planes;
  };
  Buffers worker(int wk) const {
    return {xts + wk * xt_stride, vs + wk * v_stride, mts + wk * mt_stride,
            stages + wk * stage_stride, planes + wk * plane_stride};
  }
};

// The distance in floats between transform points of v and mt for n floats per point (a
// multiple of the vector width): n, or n + 16 where n is an even multiple of 16, so that the
// 36 points' rows, which a tile's transform reads or writes together, spread over the L1 sets
// (at T * Cp = 1024 floats, 4 KiB apart, they all fell on one set; measured on conv2).
constexpr int64_t kPointPad = 16;
int64_t point_stride(int64_t n) { return (n / kPointPad) % 2 == 0 ? n + kPointPad : n; }

// budget: floats of v and mt per unit; share: the units should give each of this many workers
// kUnitsPerWorker of them (the weight gradient, parallel over groups of images, passes 1);
// pool: room for the output rows the fused conv block pools.
WinogradScratch carve_winograd(Carver& cv, const Implicit& g, int m,
                               const Conv2dWinogradKernels& kw, int workers, int64_t budget,
                               int share, bool pool = false) {
  WinogradScratch s{};
  s.m = m, s.alpha = m + 2;
  s.tiles_h = ceil_div(g.P, m), s.tiles_w = ceil_div(g.Q, m);
  s.Cp = round_up(g.C, kw.cw), s.Kp = round_up(g.K, kw.nr);
  const int64_t points = s.alpha * s.alpha, per_image = s.tiles_h * s.tiles_w;
  // Tiles per unit: what fits the budget, at most a 1 / kUnitsPerWorker share of a worker's
  // tiles, at least one register tile.
  int64_t most = budget / (points * (s.Cp + s.Kp));
  most = std::min(most, ceil_div(g.N * per_image, kUnitsPerWorker * share));
  most = std::max(most, kw.mr);
  if (per_image <= most) {
    s.rows = s.tiles_h;
    s.images = ceil_div(g.N, ceil_div(g.N, std::max<int64_t>(1, most / per_image)));
  } else {
    s.images = 1;
    s.rows = std::max<int64_t>(1, most / s.tiles_w);
    s.rows = ceil_div(s.tiles_h, ceil_div(s.tiles_h, s.rows));
  }
  const int64_t tiles = s.images * s.rows * s.tiles_w;
  s.u = cv.floats(points * s.Cp * s.Kp);
  s.xt_stride = round_up((s.rows * m + 2) * (s.tiles_w * m + 2) * s.Cp, kAlignFloats);
  s.v_stride = round_up(points * (tiles * s.Cp + kPointPad), kAlignFloats);
  s.mt_stride = round_up(points * (tiles * s.Kp + kPointPad), kAlignFloats);
  s.stage_stride = round_up(s.rows * m * s.tiles_w * m * s.Kp, kAlignFloats);
  s.xts = cv.floats(s.xt_stride * workers);
  s.vs = cv.floats(s.v_stride * workers);
  s.mts = cv.floats(s.mt_stride * workers);
  s.stages = cv.floats(s.stage_stride * workers);
  s.plane_stride =
      pool ? round_up((s.rows * m / 2) * (g.Q / 2) * (2 * s.Kp + g.K), kAlignFloats) : 0;
  s.planes = cv.floats(s.plane_stride * workers);
  return s;
}

// v (alpha^2, T, Cp) = the transformed input tiles of images [n0, n1), tile rows [r0, r1) of
// each, of x (N, C, H, W) in geometry g (T tiles in all), through the channels-last band xt.
// An array's images one at a time, as the kernels that go image by image read them:
// images(n, worker) is image n; source(n) and source_floats() what to prefetch for it.
// DenseImages: the array's own images. (UnpooledImages, in the conv block below, rebuilds each
// in a worker's scratch.)
struct DenseImages {
  const float* a;
  int64_t floats;  // per image
  const float* operator()(int64_t n, int) const { return a + n * floats; }
  const float* source(int64_t n) const { return a + n * floats; }
  int64_t source_floats() const { return floats; }
};

template <typename Images>
void winograd_inputs(float* v, float* xt, const Images& xs, int worker, const Implicit& g,
                     const WinogradScratch& s, const Conv2dWinogradKernels& kw, int64_t n0,
                     int64_t n1, int64_t r0, int64_t r1) {
  const int64_t m = s.m, band = (r1 - r0) * s.tiles_w, T = (n1 - n0) * band;
  for (int64_t n = n0; n < n1; ++n) {
    kw.to_channels_last(xt, xs(n, worker), g.C, g.H, g.W, s.Cp, r0 * m - g.ph,
                        (r1 - r0) * m + 2, -g.pw, s.tiles_w * m + 2);
    kw.input_tiles[m == 4 ? 1 : 0](v, point_stride(T * s.Cp), (n - n0) * band, xt, s.Cp, r1 - r0,
                                   s.tiles_w);
  }
}

// Where the fused conv block's forward pools its output (see conv2d_relu_maxpool2x2_forward).
struct PoolTo {
  float* yp;       // (N, K, P / 2, Q / 2)
  uint8_t* codes;  // the same shape, or null
};

// y (N, K, P, Q) = the 3x3 stride-1 convolution of x (N, C, H, W) in geometry g with the weight
// w (K, C, 3, 3) plus bias (K,) or nullptr, by Winograd F(s.m x s.m, 3x3), on nthreads threads.
// With pool, y is not written: each unit's rows go through ReLU and 2x2 max pooling into
// pool->yp and pool->codes as they leave the output transform.
template <typename Images>
void winograd_forward(float* y, const Images& xs, const float* w, const float* bias,
                      const Implicit& g, const WinogradScratch& s,
                      const Conv2dWinogradKernels& kw, int nthreads,
                      const PoolTo* pool = nullptr) {
  const int mi = s.m == 4 ? 1 : 0;
  const int64_t m = s.m, points = s.alpha * s.alpha, kpq = g.K * g.PQ();
  kw.pack_weight[mi](s.u, w, g.K, g.C, s.Cp, s.Kp);
  const int64_t chunks = s.row_chunks();
  const int64_t units = chunks > 0 ? g.N * chunks : ceil_div(g.N, s.images);
  const int workers = static_cast<int>(std::min<int64_t>(std::max(1, nthreads), units));
#pragma omp parallel num_threads(workers) if (workers > 1)
  {
    const int wk = workers > 1 ? thread_index() : 0;
    const WinogradScratch::Buffers b = s.worker(wk);
#pragma omp for schedule(dynamic, 1) nowait
    for (int64_t unit = 0; unit < units; ++unit) {
      int64_t n0 = unit * s.images, n1 = std::min(g.N, n0 + s.images), r0 = 0, r1 = s.tiles_h;
      if (chunks > 0) {
        n0 = unit / chunks, n1 = n0 + 1;
        r0 = (unit % chunks) * s.rows, r1 = std::min(s.tiles_h, r0 + s.rows);
      }
      const int64_t band = (r1 - r0) * s.tiles_w, T = (n1 - n0) * band;
      winograd_inputs(b.v, b.xt, xs, wk, g, s, kw, n0, n1, r0, r1);
      const int64_t ldv = point_stride(T * s.Cp), ldm = point_stride(T * s.Kp);
      kw.gemm_points(b.mt, ldm, b.v, ldv, s.u, points, T, s.Cp, s.Kp);
      for (int64_t n = n0; n < n1; ++n) {
        kw.output_tiles[mi](b.stage, b.mt, ldm, (n - n0) * band, s.Kp, r1 - r0, s.tiles_w,
                            bias, g.K);
        const int64_t p0 = r0 * m, rows = std::min(g.P, r1 * m) - p0;
        if (pool == nullptr) {
          kw.from_channels_last(y + n * kpq, b.stage, g.K, g.P, g.Q, s.Kp, p0, rows,
                                s.tiles_w * m);
          continue;
        }
        // The unit's rows pooled from the channels-last stage into rows [p0 / 2, ...) of yp (p0
        // is even: m is 2 or 4; an odd last row is the pooling's floor).
        const int64_t Pp = g.P / 2, at = n * g.K * Pp * (g.Q / 2);
        kw.pool_channels_last(pool->yp + at, pool->codes != nullptr ? pool->codes + at : nullptr,
                              b.stage, g.K, s.Kp, rows, s.tiles_w * m, g.Q, Pp, p0, b.planes);
      }
    }
  }
}

// ---- one input channel (forward_c1 / dw_c1) ----

// Groups of images the weight gradient sums separately (see kDwGroups), for `block` floats each.
int64_t dw_groups(int64_t N, int64_t block) {
  const int64_t fit = kDwGroupFloats / std::max<int64_t>(block, 1);
  return std::max<int64_t>(1, std::min({N, kDwGroups, fit}));
}

struct C1Scratch {
  float* xpads;
  int64_t xpad_stride;
  float* dw_acc;  // dw_groups x K x R x S weight gradients (backward only)
  float* sums;    // N x K plane sums of dy (backward only)
  float* planes;  // per worker, K x P x Q: the fused conv block's output planes (fused only)
  int64_t plane_stride;
};

C1Scratch carve_c1(Carver& cv, const Conv2dParams& cp, int workers, bool backward,
                   bool fused = false) {
  C1Scratch s{};
  const Implicit g = forward_geometry(cp);
  s.xpad_stride = round_up(g.xpad_floats(kSlack), kAlignFloats);
  s.xpads = cv.floats(s.xpad_stride * workers);
  if (backward) {
    const int64_t taps = cp.K * cp.R * cp.S;
    s.dw_acc = cv.floats(dw_groups(cp.N, taps) * taps);
    s.sums = cv.floats(cp.N * cp.K);
  }
  if (fused) {
    s.plane_stride = round_up(cp.K * cp.P * cp.Q, kAlignFloats);
    s.planes = cv.floats(s.plane_stride * workers);
  }
  return s;
}

void forward_c1(float* y, const float* x, const float* w, const float* b, const Conv2dParams& cp,
                const C1Scratch& s, const Conv2dKernels& kr, int nthreads) {
  const int64_t Wp = cp.W + 2 * cp.pad_w;
  const int workers = std::max(1, nthreads);
  if (cp.N == 0 || cp.P == 0 || cp.Q == 0) return;  // y is empty
  // Units: chunks of output rows of one image (whole images when the batch is large enough).
  const int64_t per_image = std::min(cp.P, ceil_div(kUnitsPerWorker * workers, cp.N));
  const int64_t chunk = ceil_div(cp.P, per_image), chunks = ceil_div(cp.P, chunk);
#pragma omp parallel num_threads(workers) if (workers > 1)
  {
    float* xpad = s.xpads + (workers > 1 ? thread_index() : 0) * s.xpad_stride;
    int64_t padded_n = -1;
#pragma omp for schedule(dynamic, 1) nowait
    for (int64_t u = 0; u < cp.N * chunks; ++u) {
      const int64_t n = u / chunks, p0 = (u % chunks) * chunk, p1 = std::min(cp.P, p0 + chunk);
      if (padded_n != n) kr.pad_image(xpad, x + n * cp.H * cp.W, 1, cp.H, cp.W, cp.pad_h, cp.pad_w);
      padded_n = n;
      kr.forward_c1(y + n * cp.K * cp.P * cp.Q, xpad, Wp, w, b, cp.K, cp.R, cp.S, cp.P, cp.Q,
                    cp.stride_h, p0, p1);
    }
  }
}

// The fused conv block's forward on the one-channel path: each unit (a block of output
// channels of one image) computes its conv planes into the worker's s.planes, where they stay
// in cache for the ReLU and the pooling; only the pooled planes reach yp. (forward_c1's units
// are chunks of rows instead: a pooled plane needs all of its rows, and there are many planes.)
void forward_c1_relu_pool(float* yp, uint8_t* codes, const float* x, const float* w,
                          const float* b, const Conv2dParams& cp, const C1Scratch& s,
                          const Conv2dKernels& kr, int nthreads) {
  const int64_t Wp = cp.W + 2 * cp.pad_w, RS = cp.R * cp.S;
  const int64_t pooled = (cp.P / 2) * (cp.Q / 2);
  const int workers = std::max(1, nthreads);
  const int64_t per_image = std::min(cp.K, ceil_div(kUnitsPerWorker * workers, cp.N));
  const int64_t chunk = ceil_div(cp.K, per_image), chunks = ceil_div(cp.K, chunk);
#pragma omp parallel num_threads(workers) if (workers > 1)
  {
    const int t = workers > 1 ? thread_index() : 0;
    float* xpad = s.xpads + t * s.xpad_stride;
    float* planes = s.planes + t * s.plane_stride;
    int64_t padded_n = -1;
#pragma omp for schedule(dynamic, 1) nowait
    for (int64_t u = 0; u < cp.N * chunks; ++u) {
      const int64_t n = u / chunks, k0 = (u % chunks) * chunk, k1 = std::min(cp.K, k0 + chunk);
      if (padded_n != n) kr.pad_image(xpad, x + n * cp.H * cp.W, 1, cp.H, cp.W, cp.pad_h, cp.pad_w);
      padded_n = n;
      kr.forward_c1(planes, xpad, Wp, w + k0 * RS, b != nullptr ? b + k0 : nullptr, k1 - k0, cp.R,
                    cp.S, cp.P, cp.Q, cp.stride_h, 0, cp.P);
      const int64_t first = (n * cp.K + k0) * pooled;
      relu_maxpool2x2_codes(yp + first, codes != nullptr ? codes + first : nullptr, planes, cp.P,
                            cp.Q, 0, k1 - k0);
    }
  }
}

// dw (K, 1, R, S) and the plane sums s.sums (N, K) (when sums is wanted) of a C == 1
// convolution. dys(n, worker) is image n's dy (K, P, Q): dy's own planes (DenseImages), or
// planes the worker rebuilds in its scratch (the fused conv block's UnpooledImages).
template <typename Images>
void dw_c1(float* dw, bool sums, const Images& dys, const float* x, const Conv2dParams& cp,
           const C1Scratch& s, const Conv2dKernels& kr, int nthreads) {
  const int64_t taps = cp.K * cp.R * cp.S, Wp = cp.W + 2 * cp.pad_w;
  const int64_t groups = dw_groups(cp.N, taps);
  const int workers = static_cast<int>(std::min<int64_t>(std::max(1, nthreads), groups));
#pragma omp parallel num_threads(workers) if (workers > 1)
  {
    const int t = workers > 1 ? thread_index() : 0;
    float* xpad = s.xpads + t * s.xpad_stride;
#pragma omp for schedule(dynamic, 1) nowait
    for (int64_t grp = 0; grp < groups; ++grp) {
      float* acc = s.dw_acc + grp * taps;
      std::fill(acc, acc + taps, 0.0f);
      for (int64_t n = cp.N * grp / groups; n < cp.N * (grp + 1) / groups; ++n) {
        kr.pad_image(xpad, x + n * cp.H * cp.W, 1, cp.H, cp.W, cp.pad_h, cp.pad_w);
        kr.dw_c1(acc, sums ? s.sums + n * cp.K : nullptr, xpad, Wp, dys(n, t), cp.K, cp.R,
                 cp.S, cp.P, cp.Q, cp.stride_h);
      }
    }
  }
  for (int64_t i = 0; i < taps; ++i) {
    float total = 0.0f;
    for (int64_t grp = 0; grp < groups; ++grp) total += s.dw_acc[grp * taps + i];
    dw[i] = total;
  }
}

// ---- the implicit-GEMM weight gradient ----

struct DwScratch {
  int64_t* pix_off;
  int64_t* crs_off;
  float* dwt;          // groups x rows x ldw
  int64_t rows, ldw;   // dw^T rounded up to dw_mr rows and NR columns
  int64_t groups;      // dw_groups: image groups with their own dw^T (1: threads split taps)
  float* xpads;        // per worker
  int64_t xpad_stride;
  float* dyts;         // per worker, dyt_stride floats apart
  int64_t dyt_stride;
  float* sums;         // N x K plane sums of dy
};

DwScratch carve_dw(Carver& cv, const Conv2dParams& cp, int64_t mr, int64_t nr, int nthreads) {
  const Implicit g = forward_geometry(cp);
  DwScratch s{};
  const int workers = std::max(1, nthreads);
  s.pix_off = cv.int64s(g.PQ());
  s.crs_off = cv.int64s(g.CRS());
  s.rows = round_up(std::max<int64_t>(g.CRS(), 1), mr);
  s.ldw = round_up(std::max<int64_t>(cp.K, 1), nr);
  s.groups = dw_groups(cp.N, s.rows * s.ldw);
  s.dwt = cv.floats(s.groups * s.rows * s.ldw);
  s.xpad_stride = g.padded() ? round_up(g.xpad_floats(kSlack), kAlignFloats) : 0;
  s.xpads = cv.floats(s.xpad_stride * workers);
  s.dyt_stride = round_up(ceil_div(cp.K, nr) * g.PQ() * nr, kAlignFloats);
  s.dyts = cv.floats(s.dyt_stride * workers);
  s.sums = cv.floats(cp.N * cp.K);
  return s;
}

// Asks for `floats` floats from p (nothing if p is null) into L2 in `parts` slices, one per
// slice(i) call, i < parts: spread over a computation, they keep few misses in flight at once.
class L2Prefetch {
 public:
  L2Prefetch(const float* p, int64_t floats, int64_t parts)
      : p_(reinterpret_cast<const char*>(p)),
        bytes_(p == nullptr ? 0 : floats * int64_t{sizeof(float)}),
        per_part_(round_up(ceil_div(bytes_, std::max<int64_t>(parts, 1)), 64)) {}
  void slice(int64_t i) const {
    for (int64_t b = i * per_part_; b < std::min(bytes_, (i + 1) * per_part_); b += 64) {
      __builtin_prefetch(p_ + b, 0, 2);
    }
  }

 private:
  const char* p_;
  int64_t bytes_, per_part_;
};

// dw (K, C, R, S) and the plane sums s.sums (N, K) (when sums is wanted): each group of images
// sums into its own dw^T; with a single group, threads split the taps of one shared dw^T.
template <typename Images>
void implicit_dw(float* dw, bool sums, const Images& dys, const float* x, const Conv2dParams& cp,
                 const DwScratch& s, const Conv2dKernels& kr, int nthreads) {
  const Implicit g = forward_geometry(cp);
  const int64_t CRS = g.CRS(), PQ = g.PQ(), chw = g.C * g.H * g.W;
  fill_offsets(s.pix_off, s.crs_off, g);
  const int64_t kc = balanced(PQ, kPixelsKC);
  const int64_t block = s.rows * s.ldw, tap_tiles = s.rows / kr.dw_mr;
  const bool by_groups = s.groups > 1;
  const int workers = static_cast<int>(
      std::min<int64_t>(std::max(1, nthreads), by_groups ? s.groups : tap_tiles));
  std::atomic<int64_t> next_group{0};  // (by groups) the next group a thread may claim
#pragma omp parallel num_threads(workers) if (workers > 1)
  {
    const int wk = workers > 1 ? thread_index() : 0;
    float* xpad = s.xpads + wk * s.xpad_stride;
    float* dyt = s.dyts + wk * s.dyt_stride;
    // Images [n_lo, n_hi) of group grp into taps [r_lo, r_hi) of its dw^T (the first image
    // stores, the others add). At the last image, then() names the image this thread takes
    // next, or -1.
    auto run = [&](int64_t grp, int64_t n_lo, int64_t n_hi, int64_t r_lo, int64_t r_hi,
                   bool my_sums, auto&& then) {
      float* dwt = s.dwt + grp * block;
      for (int64_t n = n_lo; n < n_hi; ++n) {
        const float* src = x + n * chw;
        if (g.padded()) {
          kr.pad_image(xpad, src, g.C, g.H, g.W, g.ph, g.pw);
          src = xpad;
        }
        kr.pack_dy_t(dyt, my_sums ? s.sums + n * cp.K : nullptr, dys(n, wk), cp.K, PQ);
        // The next image's x and dy are asked into L2 a slice per tile of taps, while this one
        // computes (its pad and pack would otherwise wait on memory).
        const int64_t ahead = n + 1 < n_hi ? n + 1 : then();
        const int64_t calls = ceil_div(PQ, kc) * ceil_div(r_hi - r_lo, kr.dw_mr);
        L2Prefetch next_x{ahead >= 0 ? x + ahead * chw : nullptr, chw, calls};
        L2Prefetch next_dy{ahead >= 0 ? dys.source(ahead) : nullptr, dys.source_floats(), calls};
        int64_t call = 0;
        for (int64_t m0 = 0; m0 < PQ; m0 += kc) {
          for (int64_t i0 = r_lo; i0 < r_hi; i0 += kr.dw_mr, ++call) {
            next_x.slice(call);
            next_dy.slice(call);
            kr.dw_block(dwt, s.ldw, src, s.crs_off, s.pix_off, dyt, cp.K, PQ, CRS, i0,
                        i0 + kr.dw_mr, m0, std::min(kc, PQ - m0), n == n_lo && m0 == 0);
          }
        }
      }
    };
    if (by_groups) {
      // Groups go first come, first served; a thread claims its next group as it starts the
      // last image of the one it has, so that image can prefetch the next group's first.
      const auto first_image = [&](int64_t grp) { return cp.N * grp / s.groups; };
      int64_t grp = next_group.fetch_add(1);
      while (grp < s.groups) {
        int64_t following = s.groups;
        run(grp, first_image(grp), first_image(grp + 1), 0, s.rows, sums, [&] {
          following = next_group.fetch_add(1);
          return following < s.groups ? first_image(following) : int64_t{-1};
        });
        grp = following;
      }
    } else {
      const int team = workers > 1 ? team_size() : 1;  // (the team may be smaller)
      run(0, 0, cp.N, tap_tiles * wk / team * kr.dw_mr, tap_tiles * (wk + 1) / team * kr.dw_mr,
          sums && wk == 0, [] { return int64_t{-1}; });
    }
  }
  // dw[k][t] = the sum over groups, in order, of dwt[grp][t][k]: summed into group 0's row t
  // (contiguous along k, so it vectorises), then written to dw's column t.
  const int threads = cp.K * CRS * s.groups >= (1 << 16) ? std::max(1, nthreads) : 1;
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
  for (int64_t t = 0; t < CRS; ++t) {
    float* total = s.dwt + t * s.ldw;
    for (int64_t grp = 1; grp < s.groups; ++grp) {
      const float* part = s.dwt + grp * block + t * s.ldw;
      for (int64_t k = 0; k < cp.K; ++k) total[k] += part[k];
    }
    for (int64_t k = 0; k < cp.K; ++k) dw[k * CRS + t] = total[k];
  }
}

// ---- the Winograd weight gradient (3x3 stride 1) ----

// dw (K, C, 3, 3) by Winograd F(s.m x s.m, 3x3): each group of images (dw_groups of
// du_floats) sums du[xi] (Cp, Kp) += v[xi]^T @ dm[xi] over its tiles, where v is the forward's
// transformed input and dm = A dY A^T each output tile's gradient, in the forward's units; the
// groups are then added in order and dw = G^T du G. s is carve_winograd's scratch (its mts hold
// dm, its stages the channels-last dy of a band, its u the sum); dus holds groups x du_floats.
void winograd_dw(float* dw, const float* dy, const float* x, const Implicit& g,
                 const WinogradScratch& s, float* dus, int64_t groups,
                 const Conv2dWinogradKernels& kw, int nthreads) {
  const int mi = s.m == 4 ? 1 : 0;
  const int64_t m = s.m, points = s.alpha * s.alpha, kpq = g.K * g.PQ();
  const int64_t du_floats = points * s.Cp * s.Kp, chunks = s.row_chunks();
  const int workers = static_cast<int>(std::min<int64_t>(std::max(1, nthreads), groups));
#pragma omp parallel num_threads(workers) if (workers > 1)
  {
    // The forward's buffers; mt holds dm, stage the channels-last dy of a band.
    const WinogradScratch::Buffers b = s.worker(workers > 1 ? thread_index() : 0);
    // Images [n0, n1), tile rows [r0, r1) of each, into du.
    auto run = [&](float* du, int64_t n0, int64_t n1, int64_t r0, int64_t r1) {
      const int64_t band = (r1 - r0) * s.tiles_w, T = (n1 - n0) * band;
      winograd_inputs(b.v, b.xt, DenseImages{x, g.C * g.H * g.W}, 0, g, s, kw, n0, n1, r0, r1);
      for (int64_t n = n0; n < n1; ++n) {
        kw.to_channels_last(b.stage, dy + n * kpq, g.K, g.P, g.Q, s.Kp, r0 * m, (r1 - r0) * m, 0,
                            s.tiles_w * m);
        kw.grad_tiles[mi](b.mt, point_stride(T * s.Kp), (n - n0) * band, b.stage, s.Kp, r1 - r0,
                          s.tiles_w);
      }
      kw.gemm_points_dw(du, b.v, point_stride(T * s.Cp), b.mt, point_stride(T * s.Kp), points, T,
                        s.Cp, s.Kp);
    };
#pragma omp for schedule(dynamic, 1) nowait
    for (int64_t grp = 0; grp < groups; ++grp) {
      float* du = dus + grp * du_floats;
      std::fill(du, du + du_floats, 0.0f);
      const int64_t n_lo = g.N * grp / groups, n_hi = g.N * (grp + 1) / groups;
      if (chunks > 0) {
        for (int64_t n = n_lo; n < n_hi; ++n) {
          for (int64_t r0 = 0; r0 < s.tiles_h; r0 += s.rows) {
            run(du, n, n + 1, r0, std::min(s.tiles_h, r0 + s.rows));
          }
        }
      } else {
        for (int64_t n0 = n_lo; n0 < n_hi; n0 += s.images) {
          run(du, n0, std::min(n_hi, n0 + s.images), 0, s.tiles_h);
        }
      }
    }
  }
  // The groups in order, then the inverse weight transform.
  const int threads = du_floats >= (1 << 16) ? std::max(1, nthreads) : 1;
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
  for (int64_t i = 0; i < du_floats; ++i) {
    float total = dus[i];
    for (int64_t grp = 1; grp < groups; ++grp) total += dus[grp * du_floats + i];
    s.u[i] = total;
  }
  kw.unpack_weight_grad[mi](dw, s.u, g.K, g.C, s.Cp, s.Kp);
}

// db (K,) from plane sums (N, K), added in image order in double.
void db_from_sums(float* db, const float* sums, const Conv2dParams& cp) {
  for (int64_t k = 0; k < cp.K; ++k) {
    double total = 0.0;
    for (int64_t n = 0; n < cp.N; ++n) total += sums[n * cp.K + k];
    db[k] = static_cast<float>(total);
  }
}

// db is (K,); dy is (N, K, P, Q). Sums in float per image plane, in double across images.
void bias_backward(float* db, const float* dy, const Conv2dParams& cp, int nthreads) {
  const int64_t PQ = cp.P * cp.Q;
  const bool parallel = nthreads > 1 && cp.N * cp.K * PQ >= (1 << 15);
#pragma omp parallel for schedule(static) num_threads(nthreads) if (parallel)
  for (int64_t k = 0; k < cp.K; ++k) {
    double total = 0.0;
    for (int64_t n = 0; n < cp.N; ++n) {
      const float* plane = dy + (n * cp.K + k) * PQ;
      float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
      for (int64_t i = 0; i < PQ; ++i) sum += plane[i];
      total += sum;
    }
    db[k] = static_cast<float>(total);
  }
}

// ---- the general input gradient: dcol = w^T @ dy[n] on the GEMM, then col2im ----

// The q range [lo, hi) where iw = q * sw - pw + s lies inside [0, W); the rest is padding.
struct Span {
  int64_t lo, hi;
};

Span valid_q(const Conv2dParams& cp, int64_t s) {
  const int64_t lo = std::min(cp.Q, ceil_div_nonneg(cp.pad_w - s, cp.stride_w));
  const int64_t last = cp.W - 1 + cp.pad_w - s;  // q * sw <= last
  const int64_t hi = last < 0 ? 0 : std::min(cp.Q, last / cp.stride_w + 1);
  return {lo, std::max(lo, hi)};
}

// dxn is one image (C, H, W), overwritten; dcol is (C*R*S, P*Q). The adjoint of im2col:
// every column entry is added back to the input pixel it was read from.
void col2im(float* dxn, const float* dcol, const Conv2dParams& cp) {
  const int64_t PQ = cp.P * cp.Q;
  for (int64_t c = 0; c < cp.C; ++c) {
    float* dxc = dxn + c * cp.H * cp.W;
    std::fill(dxc, dxc + cp.H * cp.W, 0.0f);
    for (int64_t r = 0; r < cp.R; ++r) {
      for (int64_t s = 0; s < cp.S; ++s) {
        const float* row = dcol + ((c * cp.R + r) * cp.S + s) * PQ;
        const Span qs = valid_q(cp, s);
        if (qs.lo == qs.hi) continue;
        const int64_t iw0 = qs.lo * cp.stride_w - cp.pad_w + s;
        for (int64_t p = 0; p < cp.P; ++p) {
          const int64_t ih = p * cp.stride_h - cp.pad_h + r;
          if (ih < 0 || ih >= cp.H) continue;
          float* out = dxc + ih * cp.W + iw0;
          const float* in = row + p * cp.Q;
          for (int64_t q = qs.lo; q < qs.hi; ++q) out[(q - qs.lo) * cp.stride_w] += in[q];
        }
      }
    }
  }
}

struct GemmDxScratch {
  float* dcols;  // per worker
  float* gemms;  // per worker
  int64_t dcol_stride, gemm_stride;
};

GemmDxScratch carve_gemm_dx(Carver& cv, const Conv2dParams& cp, int nthreads) {
  const int64_t CRS = cp.C * cp.R * cp.S, PQ = cp.P * cp.Q;
  const int workers = std::max(1, nthreads);
  GemmDxScratch s{};
  s.dcol_stride = round_up(CRS * PQ, kAlignFloats);
  s.gemm_stride = round_up(gemm_workspace_floats(CRS, PQ, cp.K, 1) + kAlignFloats, kAlignFloats);
  s.dcols = cv.floats(s.dcol_stride * workers);
  s.gemms = cv.floats(s.gemm_stride * workers);
  return s;
}

void gemm_dx(float* dx, const float* dy, const float* w, const Conv2dParams& cp,
             const GemmDxScratch& s, int nthreads) {
  const int64_t CRS = cp.C * cp.R * cp.S, PQ = cp.P * cp.Q;
  const int workers = static_cast<int>(std::min<int64_t>(std::max(1, nthreads), cp.N));
#pragma omp parallel for schedule(static) num_threads(workers) if (workers > 1)
  for (int wk = 0; wk < workers; ++wk) {
    float* dcol = s.dcols + wk * s.dcol_stride;
    for (int64_t n = cp.N * wk / workers; n < cp.N * (wk + 1) / workers; ++n) {
      // dcol (CRS, PQ) = w^T @ dy[n]; w is stored (K, CRS).
      gemm(dcol, w, dy + n * cp.K * PQ, CRS, PQ, cp.K, PQ, CRS, PQ, true, false, 1.0f, 0.0f,
           s.gemms + wk * s.gemm_stride, 1);
      col2im(dx + n * cp.C * cp.H * cp.W, dcol, cp);
    }
  }
}

// ---- workspace plans (the same calls size the workspace and carve it) ----

struct ForwardPlan {
  int wino;  // winograd_tile (0: not Winograd)
  C1Scratch c1;
  ForwardScratch fw;
  WinogradScratch wg;
};

// The paths of the forward and their scratch, for the ISA build `isa`.
ForwardPlan carve_forward_plan(Carver& cv, const Conv2dParams& cp, int isa, int nthreads,
                               bool pool = false) {
  ForwardPlan p{};
  const Implicit g = forward_geometry(cp);
  p.wino = cp.algorithm == Conv2dAlgorithm::automatic && use_c1(cp)
               ? 0
               : winograd_tile(g, cp.algorithm, isa);
  if (p.wino != 0) {
    p.wg = carve_winograd(cv, g, p.wino, *kWinograd[isa], std::max(1, nthreads),
                          kWinogradUnitFloats, std::max(1, nthreads), pool);
  } else if (use_c1(cp)) {
    p.c1 = carve_c1(cv, cp, std::max(1, nthreads), false);
  } else {
    p.fw = carve_forward(cv, g, kKernels[isa]->nr, std::max(1, nthreads));
  }
  return p;
}

struct BackwardPlan {
  int dx_wino;  // winograd_tile of the input gradient (0: not Winograd)
  int dw_wino;  // winograd_tile of the weight gradient (0: not Winograd)
  C1Scratch c1;
  DwScratch dw;
  WinogradScratch dw_wg;
  float* dw_dus;  // dw_groups x alpha^2 x Cp x Kp
  int64_t dw_groups;
  ForwardScratch dx_fw;
  WinogradScratch dx_wg;
  float* w_flipped;
  GemmDxScratch dx_gemm;
};

// The paths of the backward and their scratch, for the ISA build `isa`.
BackwardPlan carve_backward_plan(Carver& cv, const Conv2dParams& cp, int isa, bool need_dx,
                                 bool need_dw, int nthreads) {
  const Conv2dKernels& kr = *kKernels[isa];
  BackwardPlan p{};
  if (need_dw) {
    const Implicit g = forward_geometry(cp);
    // Winograd only when asked for (F(2x2) under `winograd`): automatic keeps the GEMM. NOTE:
    // a weight tap whose inputs are all zero (a dead channel at the image's edge) gets an exact
    // 0 from the GEMM but about 1e-9 from Winograd's G^T du G, and Adam's first step turns
    // that into a 0.1 * lr move (eps = 1e-8): tests/test_seed_cnn.py catches it.
    p.dw_wino = cp.algorithm == Conv2dAlgorithm::automatic
                    ? 0
                    : winograd_tile(g, cp.algorithm, isa, true);
    if (p.dw_wino != 0) {
      p.dw_wg = carve_winograd(cv, g, p.dw_wino, *kWinograd[isa], std::max(1, nthreads),
                               kWinogradDwUnitFloats, 1);
      const int64_t du_floats = (p.dw_wino + 2) * (p.dw_wino + 2) * p.dw_wg.Cp * p.dw_wg.Kp;
      const int64_t tiles = cp.N * p.dw_wg.tiles_h * p.dw_wg.tiles_w;
      p.dw_groups = std::max<int64_t>(
          1, std::min(dw_groups(cp.N, du_floats), tiles / kWinogradDwGroupTiles));
      p.dw_dus = cv.floats(p.dw_groups * du_floats);
    } else if (use_c1(cp)) {
      p.c1 = carve_c1(cv, cp, std::max(1, nthreads), true);
    } else {
      p.dw = carve_dw(cv, cp, kr.dw_mr, kr.nr, nthreads);
    }
  }
  if (need_dx) {
    if (dx_as_forward(cp)) {
      const Implicit g = dx_geometry(cp);
      p.w_flipped = cv.floats(cp.K * cp.C * cp.R * cp.S);
      p.dx_wino = winograd_tile(g, cp.algorithm, isa);
      if (p.dx_wino != 0) {
        p.dx_wg = carve_winograd(cv, g, p.dx_wino, *kWinograd[isa], std::max(1, nthreads),
                                 kWinogradUnitFloats, std::max(1, nthreads));
      } else {
        p.dx_fw = carve_forward(cv, g, kr.nr, std::max(1, nthreads));
      }
    } else {
      p.dx_gemm = carve_gemm_dx(cv, cp, nthreads);
    }
  }
  return p;
}

// The largest workspace any ISA build needs (see gemm.h on switching ISAs).
template <typename Carve>
int64_t most_floats(Carve carve) {
  int64_t most = 0;
  for (int isa = 0; isa < kIsaCount; ++isa) {
    Carver sizer(nullptr);
    carve(sizer, isa);
    most = std::max(most, sizer.size());
  }
  return most;
}

}  // namespace

int64_t conv2d_forward_workspace_floats(const Conv2dParams& cp, int nthreads) {
  if (cp.N == 0) return 0;
  nthreads = conv_threads(cp, nthreads);
  return most_floats([&](Carver& cv, int isa) { carve_forward_plan(cv, cp, isa, nthreads); });
}

// y (N, K, P, Q); x (N, C, H, W); w (K, C, R, S); b (K,) or nullptr.
void conv2d_forward(float* y, const float* x, const float* w, const float* b,
                    const Conv2dParams& cp, float* workspace, int nthreads) {
  if (cp.N == 0) return;
  nthreads = conv_threads(cp, nthreads);
  const int isa = static_cast<int>(simd_level());
  Carver cv(workspace);
  const ForwardPlan plan = carve_forward_plan(cv, cp, isa, nthreads);
  const Conv2dKernels& kr = *kKernels[isa];
  if (plan.wino != 0) {
    winograd_forward(y, DenseImages{x, cp.C * cp.H * cp.W}, w, b, forward_geometry(cp), plan.wg,
                     *kWinograd[isa], nthreads);
  } else if (use_c1(cp)) {
    forward_c1(y, x, w, b, cp, plan.c1, kr, nthreads);
  } else {
    implicit_forward(y, x, w, b, forward_geometry(cp), plan.fw, kr, nthreads);
  }
}

int64_t conv2d_backward_workspace_floats(const Conv2dParams& cp, bool need_dx, bool need_dw,
                                         int nthreads) {
  if (cp.N == 0) return 0;
  nthreads = conv_threads(cp, nthreads);
  return most_floats([&](Carver& cv, int isa) {
    carve_backward_plan(cv, cp, isa, need_dx, need_dw, nthreads);
  });
}

namespace {

// conv2d_backward's paths after its checks: dw_dys and dx_dys give dy an image at a time to
// the paths that read it so (the implicit-GEMM dw, the Winograd dx); dy (or null) is all of it,
// for the others (the fused conv block passes null only where those two paths are taken).
template <typename DwImages, typename DxImages>
void backward_with(float* dx, float* dw, float* db, const float* dy, const DwImages& dw_dys,
                   const DxImages& dx_dys, const float* x, const float* w,
                   const Conv2dParams& cp, const BackwardPlan& plan, int isa, int nthreads) {
  const Conv2dKernels& kr = *kKernels[isa];
  bool db_done = false;
  if (dw != nullptr && plan.dw_wino != 0) {
    winograd_dw(dw, dy, x, forward_geometry(cp), plan.dw_wg, plan.dw_dus, plan.dw_groups,
                *kWinograd[isa], nthreads);
  } else if (dw != nullptr) {
    if (use_c1(cp)) {
      dw_c1(dw, db != nullptr, dw_dys, x, cp, plan.c1, kr, nthreads);
      if (db != nullptr) db_from_sums(db, plan.c1.sums, cp);
    } else {
      implicit_dw(dw, db != nullptr, dw_dys, x, cp, plan.dw, kr, nthreads);
      if (db != nullptr) db_from_sums(db, plan.dw.sums, cp);
    }
    db_done = db != nullptr;
  }
  if (db != nullptr && !db_done) bias_backward(db, dy, cp, nthreads);
  if (dx != nullptr) {
    if (dx_as_forward(cp)) {
      // wf (C, K, R, S): wf[c][k][r][s] = w[k][c][R-1-r][S-1-s].
      const int64_t RS = cp.R * cp.S;
      for (int64_t k = 0; k < cp.K; ++k) {
        for (int64_t c = 0; c < cp.C; ++c) {
          const float* src = w + (k * cp.C + c) * RS;
          float* dst = plan.w_flipped + (c * cp.K + k) * RS;
          for (int64_t i = 0; i < RS; ++i) dst[i] = src[RS - 1 - i];
        }
      }
      if (plan.dx_wino != 0) {
        winograd_forward(dx, dx_dys, plan.w_flipped, nullptr, dx_geometry(cp), plan.dx_wg,
                         *kWinograd[isa], nthreads);
      } else {
        implicit_forward(dx, dy, plan.w_flipped, nullptr, dx_geometry(cp), plan.dx_fw, kr,
                         nthreads);
      }
    } else {
      gemm_dx(dx, dy, w, cp, plan.dx_gemm, nthreads);
    }
  }
}

}  // namespace

// dx (N, C, H, W), dw (K, C, R, S), db (K,) each optional; dy (N, K, P, Q); x; w.
void conv2d_backward(float* dx, float* dw, float* db, const float* dy, const float* x,
                     const float* w, const Conv2dParams& cp, float* workspace, int nthreads) {
  nthreads = conv_threads(cp, nthreads);
  const int64_t CRS = cp.C * cp.R * cp.S;
  if (cp.N == 0) {  // no images: dw and db are empty sums (dx has no elements)
    if (dw != nullptr) std::fill(dw, dw + cp.K * CRS, 0.0f);
    if (db != nullptr) std::fill(db, db + cp.K, 0.0f);
    return;
  }
  if (CRS == 0) {  // no input channels: dw and dx are empty, db still sums dy
    if (db != nullptr) bias_backward(db, dy, cp, nthreads);
    return;
  }
  const int isa = static_cast<int>(simd_level());
  Carver cv(workspace);
  const BackwardPlan plan =
      carve_backward_plan(cv, cp, isa, dx != nullptr, dw != nullptr, nthreads);
  const DenseImages dys{dy, cp.K * cp.P * cp.Q};
  backward_with(dx, dw, db, dy, dys, dys, x, w, cp, plan, isa, nthreads);
}

// ---- conv2d + bias + ReLU + 2x2 max pool: the fused conv block ----

namespace {

// Whether the fused block takes the one-channel path (else: the convolution, then the pooling).
bool block_on_c1(const Conv2dParams& cp) {
  return use_c1(cp) && (cp.algorithm == Conv2dAlgorithm::automatic ||
                        cp.algorithm == Conv2dAlgorithm::gemm);
}

// The block's dz an image at a time, rebuilt from the pooled gradient and its codes in a
// worker's scratch (the backward paths that read dz image by image take it so): the dense dz
// never reaches memory. Codes above 3 raise *bad (a flag: an image may be rebuilt by several
// workers; the caller counts the bad codes once).
struct UnpooledImages {
  const float* dyp;
  const uint8_t* codes;
  const float* yp;
  int64_t K, P, Q;  // dz's per image
  float* scratch;
  int64_t stride;  // floats per worker
  std::atomic<bool>* bad;
  int64_t pooled() const { return K * (P / 2) * (Q / 2); }  // floats of a pooled image
  const float* operator()(int64_t n, int worker) const {
    float* planes = scratch + worker * stride;
    const int64_t at = n * pooled();
    if (relu_unpool2x2_codes(planes, dyp + at, codes + at, yp + at, P, Q, 0, K) != 0) *bad = true;
    return planes;
  }
  const float* source(int64_t n) const { return dyp + n * pooled(); }
  int64_t source_floats() const { return pooled(); }
};

// The backward plan of the block's image-by-image path and its dz scratch (one image per
// worker), or plan.ok false where other paths would run (they read all of dz).
struct ImagePath {
  bool ok;
  BackwardPlan plan;
  float* scratch;
  int64_t stride;
};

ImagePath carve_image_path(Carver& cv, const Conv2dParams& cp, int isa, bool need_dx,
                           bool need_dw, int threads) {
  ImagePath ip{};
  if ((!need_dw && !need_dx) || use_c1(cp) || cp.N == 0 || cp.C == 0) return ip;
  ip.plan = carve_backward_plan(cv, cp, isa, need_dx, need_dw, threads);
  ip.stride = round_up(cp.K * cp.P * cp.Q, kAlignFloats);
  ip.scratch = cv.floats(ip.stride * std::max(1, threads));
  ip.ok = ip.plan.dw_wino == 0 && (!need_dx || (dx_as_forward(cp) && ip.plan.dx_wino != 0));
  return ip;
}

// ---- the block's weight gradient from the pooled gradient (the gathered dw) ----
//
// dz is zero but at one place per 2x2 window (the argmax, where the pooled output is positive),
// so dw[k] = the sum over k's windows of g times the input patch under the window's argmax: a
// quarter of the dense product's multiply-adds, fewer where the ReLU zeroed a window, as
// gathers instead of a GEMM. Per image and band of output rows, x goes channels-last (xt,
// Winograd's to_channels_last) and then to xr (rows, Wx, R, Cp), xr[p][w][r] = xt[p * sh + r][w]:
// output pixel (p, q)'s patch is then the S * R * Cp floats at xr[p][q * sw], in one piece. Each
// output channel's windows become a list of (patch offset, g) items, and gather_patches sums
// them into acc (K, S, R, Cp) with its accumulators in registers. Images run in dw_groups' fixed groups,
// each with its own acc, added in order: threads do not change the sums (the order differs from
// the dense product's, so the rounding does). An image whose x has an inf or NaN lists every
// output pixel with its dz, zeros included, so that 0 * inf makes NaN where the dense product's
// does.
struct GatheredDw {
  int64_t Cp, Wx, T;  // channels padded to the vector width; xr's columns; floats per patch
  int64_t band;       // pooled rows per band
  int64_t groups;
  float* acc;       // groups x K x T
  int64_t* acc_at;  // K: k * T, each output channel's accumulator in a group's acc
  float *xts, *xrs, *gs;  // per worker, *_stride floats apart
  int64_t *offs, *firsts;
  int64_t xt_stride, xr_stride, item_stride;  // (offs and gs share item_stride; firsts K + 1)
};

// xr floats per band at most (a band of 1 pooled row may need more).
constexpr int64_t kGatherBandFloats = int64_t{1} << 13;

// The gathered paths' channels: C rounded up to ISA build isa's vector width.
int64_t gathered_cp(const Conv2dParams& cp, int isa) {
  return round_up(cp.C, kWinograd[isa]->cw);
}

// Whether the block's gradients take the gathered paths on ISA build isa: under the automatic
// setting, where padding the channels to the vector width adds at most 2x (the dense product
// does 4x the multiply-adds).
bool gathered_dw_pays(const Conv2dParams& cp, int isa) {
  if (cp.algorithm != Conv2dAlgorithm::automatic || cp.N == 0 || cp.C == 0) return false;
  return gathered_cp(cp, isa) <= 2 * cp.C;
}

GatheredDw carve_gathered_dw(Carver& cv, const Conv2dParams& cp, int isa, int workers) {
  GatheredDw s{};
  const int64_t Pp = cp.P / 2;
  s.Cp = gathered_cp(cp, isa);
  s.Wx = (cp.Q - 1) * cp.stride_w + cp.S;
  s.T = cp.S * cp.R * s.Cp;
  const int64_t per_row = 2 * s.Wx * cp.R * s.Cp;  // xr floats per pooled row
  s.band = std::max<int64_t>(1, std::min(Pp, kGatherBandFloats / per_row));
  s.groups = dw_groups(cp.N, cp.K * s.T);
  s.acc = cv.floats(s.groups * cp.K * s.T);
  s.acc_at = cv.int64s(cp.K);
  const int64_t rows = 2 * s.band + 1;  // output rows per band (the last takes an odd row)
  s.xt_stride = round_up(((rows - 1) * cp.stride_h + cp.R) * s.Wx * s.Cp, kAlignFloats);
  s.xr_stride = round_up(rows * s.Wx * cp.R * s.Cp, kAlignFloats);
  s.item_stride = round_up(cp.K * rows * cp.Q, kAlignFloats);
  s.xts = cv.floats(s.xt_stride * workers);
  s.xrs = cv.floats(s.xr_stride * workers);
  s.gs = cv.floats(s.item_stride * workers);
  s.offs = cv.int64s(s.item_stride * workers);
  s.firsts = cv.int64s((cp.K + 1) * workers);
  return s;
}

// dw (K, C, R, S) and dz's plane sums (N, K) (for db) of the block, from gp (N, K, P / 2, Q / 2),
// the gradient at each window's argmax (pooled_gradient), and the codes.
void gathered_dw(float* dw, float* plane_sums, const float* gp, const uint8_t* codes,
                 const float* x, const Conv2dParams& cp, const GatheredDw& s,
                 const Conv2dKernels& kr, const Conv2dWinogradKernels& kw, int nthreads) {
  const int64_t K = cp.K, P = cp.P, Q = cp.Q, Pp = P / 2, Qp = Q / 2, R = cp.R;
  const int64_t chw = cp.C * cp.H * cp.W, T = s.T, patch_row = R * s.Cp;
  for (int64_t k = 0; k < K; ++k) s.acc_at[k] = k * T;
  const int workers = static_cast<int>(std::min<int64_t>(std::max(1, nthreads), s.groups));
  std::atomic<int64_t> next_group{0};
#pragma omp parallel num_threads(workers) if (workers > 1)
  {
    const int wk = workers > 1 ? thread_index() : 0;
    float* xt = s.xts + wk * s.xt_stride;
    float* xr = s.xrs + wk * s.xr_stride;
    float* gs = s.gs + wk * s.item_stride;
    int64_t* offs = s.offs + wk * s.item_stride;
    int64_t* firsts = s.firsts + wk * (K + 1);
    for (int64_t grp = next_group.fetch_add(1); grp < s.groups; grp = next_group.fetch_add(1)) {
      float* acc = s.acc + grp * K * T;
      std::fill(acc, acc + K * T, 0.0f);
      for (int64_t n = cp.N * grp / s.groups; n < cp.N * (grp + 1) / s.groups; ++n) {
        const float* xn = x + n * chw;
        const bool finite = !kr.any_nonfinite(xn, chw);
        float* sums = plane_sums + n * K;
        std::fill(sums, sums + K, 0.0f);
        for (int64_t i0 = 0; i0 < Pp; i0 += s.band) {
          const int64_t i1 = std::min(Pp, i0 + s.band);
          const int64_t p0 = 2 * i0, p1 = i1 == Pp ? P : 2 * i1;  // this band's output rows
          kw.to_channels_last(xt, xn, cp.C, cp.H, cp.W, s.Cp, p0 * cp.stride_h - cp.pad_h,
                              (p1 - p0 - 1) * cp.stride_h + R, -cp.pad_w, s.Wx);
          kr.replicate_rows(xr, xt, p1 - p0, s.Wx, R, s.Cp, cp.stride_h);
          const auto offset = [&](int64_t p, int64_t q) {
            return ((p - p0) * s.Wx + q * cp.stride_w) * patch_row;
          };
          // A window's item: at offset(2 i, 2 j) + place[code]; written always, kept (counted)
          // only where g is not 0 (branch-free: about one window in six is 0 after the ReLU).
          const int64_t place[4] = {0, offset(p0, 1), offset(p0 + 1, 0), offset(p0 + 1, 1)};
          int64_t items = 0;
          for (int64_t k = 0; k < K; ++k) {
            firsts[k] = items;
            const int64_t plane = (n * K + k) * Pp * Qp;
            // The band's windows are contiguous: their sum first (for db), then the items.
            const int64_t w0 = plane + i0 * Qp, w1 = plane + i1 * Qp;
            float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
            for (int64_t at = w0; at < w1; ++at) sum += gp[at];
            sums[k] += sum;
            for (int64_t i = i0; i < i1; ++i) {
              const int64_t row = plane + i * Qp;
              for (int64_t j = 0; j < Qp; ++j) {
                const float g = gp[row + j];
                offs[items] = offset(2 * i, 2 * j) + place[codes[row + j] & 3];
                gs[items] = g;
                items += finite && g != 0.0f;  // (NaN != 0)
              }
            }
            if (finite) continue;
            // Every output pixel of the band, with its dz.
            for (int64_t p = p0; p < p1; ++p) {
              for (int64_t q = 0; q < Q; ++q) {
                float dz = 0.0f;
                const int64_t at = plane + (p / 2) * Qp + q / 2;
                if (p / 2 < Pp && q / 2 < Qp && codes[at] == (p % 2) * 2 + q % 2) dz = gp[at];
                offs[items] = offset(p, q);
                gs[items++] = dz;
              }
            }
          }
          firsts[K] = items;
          kr.gather_patches(acc, s.acc_at, xr, T, offs, gs, firsts, K);
        }
      }
    }
  }
  // dw[k][c][r][s] = the sum over groups, in order, of acc[grp][k][(s * R + r) * Cp + c].
  const int64_t RS = R * cp.S, CRS = cp.C * RS;
  const int threads = K * CRS * s.groups >= (1 << 16) ? std::max(1, nthreads) : 1;
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
  for (int64_t k = 0; k < K; ++k) {
    float* total = s.acc + k * T;
    for (int64_t grp = 1; grp < s.groups; ++grp) {
      const float* part = s.acc + (grp * K + k) * T;
      for (int64_t t = 0; t < T; ++t) total[t] += part[t];
    }
    for (int64_t c = 0; c < cp.C; ++c) {
      for (int64_t r = 0; r < R; ++r) {
        for (int64_t q = 0; q < cp.S; ++q) {
          dw[(k * cp.C + c) * RS + r * cp.S + q] = total[(q * R + r) * s.Cp + c];
        }
      }
    }
  }
}

// ---- the block's input gradient from the pooled gradient (the gathered dx) ----
//
// The adjoint of the gathered dw: each window's g times w[k] (as (S, R, Cp), wr) is added onto
// the patch under its argmax, in dxr (P, Wx, R, Cp), the layout of gathered_dw's xr; then dxr's
// R copies of each input row are folded into dxt (channels-last, rows from -pad_h) and dxt goes
// to NCHW. Per window, the output channels are sorted by argmax place into four lists of
// (wr offset, g), and gather_patches adds each list's sum onto its patch with its accumulators in
// registers. Images are independent (threads take them one at a time). A w with an inf or NaN
// takes the other paths (the dense product's 0 * inf would make NaN everywhere it reaches).
struct GatheredDx {
  int64_t Cp, Wx, rows, T;  // xr's channels and columns; dxt's rows; floats per patch
  float* wr;                // K x T
  int64_t chunk;            // floats of a patch per pass (its slice of wr fits L1)
  int64_t* patch_at;        // 4 x windows: list wi * 4 + d's patch in dxr (window wi, place d)
  float *dxrs, *dxts, *gs;  // per worker, *_stride floats apart
  int64_t *koffs, *firsts, *slots;
  int64_t dxr_stride, dxt_stride, list_stride, first_stride;  // (koffs, gs: an image's items)
};

// Bytes of wr a pass over a patch chunk reads (in L1 with room for the rest).
constexpr int64_t kGatherDxChunkBytes = 24 << 10;

// A worker's dxr at most, in floats: larger images take the other paths.
constexpr int64_t kGatherDxFloats = int64_t{1} << 20;

// dxr's and dxt's columns: every patch's, and the input's from -pad_w.
int64_t gathered_dx_cols(const Conv2dParams& cp) {
  return std::max((cp.Q - 1) * cp.stride_w + cp.S, cp.W + cp.pad_w);
}

bool gathered_dx_pays(const Conv2dParams& cp, int isa) {
  return gathered_dw_pays(cp, isa) &&
         cp.P * gathered_dx_cols(cp) * cp.R * gathered_cp(cp, isa) <= kGatherDxFloats;
}

GatheredDx carve_gathered_dx(Carver& cv, const Conv2dParams& cp, int isa, int workers) {
  GatheredDx s{};
  s.Cp = gathered_cp(cp, isa);
  s.Wx = gathered_dx_cols(cp);
  s.rows = std::max((cp.P - 1) * cp.stride_h + cp.R, cp.H + cp.pad_h);
  s.T = cp.S * cp.R * s.Cp;
  s.wr = cv.floats(cp.K * s.T);
  s.dxr_stride = round_up(cp.P * s.Wx * cp.R * s.Cp, kAlignFloats);
  s.dxt_stride = round_up(s.rows * s.Wx * s.Cp, kAlignFloats);
  const int64_t cw = kWinograd[isa]->cw;
  s.chunk = std::max<int64_t>(1, kGatherDxChunkBytes / (cp.K * cw * 4)) * cw;
  const int64_t windows = (cp.P / 2) * (cp.Q / 2);
  s.list_stride = round_up(cp.K * windows, kAlignFloats);
  s.first_stride = round_up(4 * windows + 1, kAlignFloats);
  s.dxrs = cv.floats(s.dxr_stride * workers);
  s.dxts = cv.floats(s.dxt_stride * workers);
  s.gs = cv.floats(s.list_stride * workers);
  s.koffs = cv.int64s(s.list_stride * workers);
  s.firsts = cv.int64s(s.first_stride * workers);
  s.slots = cv.int64s(s.first_stride * workers);
  s.patch_at = cv.int64s(4 * windows);
  return s;
}

// dx (N, C, H, W) of the block from gp (N, K, P / 2, Q / 2), the gradient at each window's
// argmax (pooled_gradient), and the codes; w finite.
void gathered_dx(float* dx, const float* gp, const uint8_t* codes, const float* w,
                 const Conv2dParams& cp, const GatheredDx& s, const Conv2dKernels& kr,
                 const Conv2dWinogradKernels& kw, int nthreads) {
  const int64_t K = cp.K, C = cp.C, R = cp.R, S = cp.S, Pp = cp.P / 2, Qp = cp.Q / 2;
  const int64_t T = s.T, patch_row = R * s.Cp, PQp = Pp * Qp;
  // wr[k][(q * R + r) * Cp + c] = w[k][c][r][q], zero past C.
  std::fill(s.wr, s.wr + K * T, 0.0f);
  for (int64_t k = 0; k < K; ++k) {
    for (int64_t c = 0; c < C; ++c) {
      for (int64_t r = 0; r < R; ++r) {
        for (int64_t q = 0; q < S; ++q) {
          s.wr[k * T + (q * R + r) * s.Cp + c] = w[((k * C + c) * R + r) * S + q];
        }
      }
    }
  }
  const auto offset = [&](int64_t p, int64_t q) {
    return (p * s.Wx + q * cp.stride_w) * patch_row;
  };
  const int64_t place[4] = {0, offset(0, 1), offset(1, 0), offset(1, 1)};
  for (int64_t wi = 0; wi < PQp; ++wi) {
    for (int d = 0; d < 4; ++d) {
      s.patch_at[wi * 4 + d] = offset(2 * (wi / Qp), 2 * (wi % Qp)) + place[d];
    }
  }
  const int workers = static_cast<int>(std::min<int64_t>(std::max(1, nthreads), cp.N));
#pragma omp parallel num_threads(workers) if (workers > 1)
  {
    const int wk = workers > 1 ? thread_index() : 0;
    float* dxr = s.dxrs + wk * s.dxr_stride;
    float* dxt = s.dxts + wk * s.dxt_stride;
    float* gs = s.gs + wk * s.list_stride;
    int64_t* koffs = s.koffs + wk * s.list_stride;
#pragma omp for schedule(dynamic, 1) nowait
    for (int64_t n = 0; n < cp.N; ++n) {
      std::fill(dxr, dxr + cp.P * s.Wx * patch_row, 0.0f);
      // The image's items, sorted by list (window wi's place d is list wi * 4 + d) in two
      // passes over its gradient in memory order: counts, then slots (a counting sort; the
      // counters of one channel's windows are all different, so no increment waits on another).
      int64_t* first = s.firsts + wk * s.first_stride;
      const float* gn = gp + n * K * PQp;
      const uint8_t* cn = codes + n * K * PQp;
      std::fill(first, first + 4 * PQp + 1, int64_t{0});
      for (int64_t k = 0; k < K; ++k) {
        for (int64_t wi = 0; wi < PQp; ++wi) {
          first[wi * 4 + (cn[k * PQp + wi] & 3) + 1] += gn[k * PQp + wi] != 0.0f;  // (NaN != 0)
        }
      }
      for (int64_t l = 0; l < 4 * PQp; ++l) first[l + 1] += first[l];
      int64_t* slot = s.slots + wk * s.first_stride;
      std::copy(first, first + 4 * PQp, slot);
      for (int64_t k = 0; k < K; ++k) {
        for (int64_t wi = 0; wi < PQp; ++wi) {
          const float g = gn[k * PQp + wi];
          if (g == 0.0f) continue;
          const int64_t at = slot[wi * 4 + (cn[k * PQp + wi] & 3)]++;
          koffs[at] = k * T;
          gs[at] = g;
        }
      }
      // Chunks of each patch whose slice of wr stays in L1, every window's lists per chunk.
      for (int64_t v0 = 0; v0 < T; v0 += s.chunk) {
        kr.gather_patches(dxr + v0, s.patch_at, s.wr + v0, std::min(s.chunk, T - v0), koffs, gs,
                     first, 4 * PQp);
      }
      // dxt[p * sh + r][col] = the sum over r of dxr[p][col][r]; then dx[n] from rows pad_h...
      std::fill(dxt, dxt + s.rows * s.Wx * s.Cp, 0.0f);
      kr.fold_rows(dxt, dxr, cp.P, s.Wx, R, s.Cp, cp.stride_h);
      kw.from_channels_last(dx + n * C * cp.H * cp.W,
                            dxt + (cp.pad_h * s.Wx + cp.pad_w) * s.Cp, C, cp.H, cp.W, s.Cp, 0,
                            cp.H, s.Wx);
    }
  }
}

// The block's backward on the gathered paths: the gradient at each window's argmax (g), dz's
// plane sums (for db), the gathered dw's scratch and the gathered dx's (where it pays; a w
// with an inf or NaN leaves the input gradient to the paths after them).
struct GatheredPath {
  float* g;     // (N, K, P / 2, Q / 2)
  float* sums;  // (N, K)
  GatheredDw dw;
  bool dx;  // gdx carved
  GatheredDx gdx;
};

GatheredPath carve_gathered_path(Carver& cv, const Conv2dParams& cp, int isa, bool need_dx,
                                 bool need_dw, int threads) {
  GatheredPath gp{};
  gp.g = cv.floats(cp.N * cp.K * (cp.P / 2) * (cp.Q / 2));
  gp.sums = cv.floats(cp.N * cp.K);
  if (need_dw) gp.dw = carve_gathered_dw(cv, cp, isa, std::max(1, threads));
  gp.dx = need_dx && gathered_dx_pays(cp, isa);
  if (gp.dx) gp.gdx = carve_gathered_dx(cv, cp, isa, std::max(1, threads));
  return gp;
}

}  // namespace

int64_t conv2d_relu_maxpool2x2_forward_workspace_floats(const Conv2dParams& cp, int nthreads) {
  const int threads = conv_threads(cp, nthreads);
  if (block_on_c1(cp)) {
    return most_floats(
        [&](Carver& cv, int) { carve_c1(cv, cp, std::max(1, threads), false, true); });
  }
  const int64_t pooled_in_place =
      most_floats([&](Carver& cv, int isa) { carve_forward_plan(cv, cp, isa, threads, true); });
  const int64_t unfused = round_up(cp.N * cp.K * cp.P * cp.Q, kAlignFloats) + kAlignFloats +
                          conv2d_forward_workspace_floats(cp, nthreads);
  return std::max(pooled_in_place, unfused);
}

void conv2d_relu_maxpool2x2_forward(float* yp, uint8_t* codes, const float* x, const float* w,
                                    const float* b, const Conv2dParams& cp, float* workspace,
                                    int nthreads) {
  if (cp.N == 0) return;
  Carver cv(workspace);
  const int isa = static_cast<int>(simd_level()), threads = conv_threads(cp, nthreads);
  if (block_on_c1(cp)) {
    const C1Scratch s = carve_c1(cv, cp, std::max(1, threads), false, true);
    forward_c1_relu_pool(yp, codes, x, w, b, cp, s, *kKernels[isa], threads);
    return;
  }
  {
    // Winograd: each unit's output rows are pooled as they leave the transform.
    Carver wcv(workspace);
    const ForwardPlan plan = carve_forward_plan(wcv, cp, isa, threads, true);
    if (plan.wino != 0) {
      const PoolTo pool{yp, codes};
      winograd_forward(nullptr, DenseImages{x, cp.C * cp.H * cp.W}, w, b, forward_geometry(cp),
                       plan.wg, *kWinograd[isa], threads, &pool);
      return;
    }
  }
  const int64_t PQ = cp.P * cp.Q;
  float* y = cv.floats(cp.N * cp.K * PQ);
  conv2d_forward(y, x, w, b, cp, cv.floats(conv2d_forward_workspace_floats(cp, nthreads)),
                 nthreads);
  split_blocks(cp.N * cp.K, cp.N * cp.K * PQ, [=](int64_t p0, int64_t p1) {
    relu_maxpool2x2_codes(yp, codes, y, cp.P, cp.Q, p0, p1);
  });
}

int64_t conv2d_relu_maxpool2x2_backward_workspace_floats(const Conv2dParams& cp, bool need_dx,
                                                         bool need_dw, int nthreads) {
  const int threads = conv_threads(cp, nthreads);
  if (!need_dx && need_dw && block_on_c1(cp)) {
    return most_floats(
        [&](Carver& cv, int) { carve_c1(cv, cp, std::max(1, threads), true, true); });
  }
  // (After the gathered paths, the input gradient may still take the others, alone.)
  const int64_t image_path = std::max(
      most_floats(
          [&](Carver& cv, int isa) { carve_image_path(cv, cp, isa, need_dx, need_dw, threads); }),
      most_floats(
          [&](Carver& cv, int isa) { carve_image_path(cv, cp, isa, need_dx, false, threads); }));
  const int64_t gathered = most_floats([&](Carver& cv, int isa) {
    if ((need_dw || need_dx) && gathered_dw_pays(cp, isa)) {
      carve_gathered_path(cv, cp, isa, need_dx, need_dw, threads);
    }
  });
  const int64_t dense_dz = round_up(cp.N * cp.K * cp.P * cp.Q, kAlignFloats) + kAlignFloats +
                           conv2d_backward_workspace_floats(cp, need_dx, need_dw, nthreads);
  return std::max({image_path, dense_dz, gathered});
}

int64_t conv2d_relu_maxpool2x2_backward(float* dx, float* dw, float* db, const float* dyp,
                                        const uint8_t* codes, const float* yp, const float* x,
                                        const float* w, const Conv2dParams& cp, float* workspace,
                                        int nthreads) {
  const int isa = static_cast<int>(simd_level()), threads = conv_threads(cp, nthreads);
  std::atomic<bool> bad{false};
  // How many codes are not 0..3, once any was seen (the error path only).
  const auto bad_codes = [&]() -> int64_t {
    if (!bad.load()) return 0;
    const int64_t all = cp.N * cp.K * (cp.P / 2) * (cp.Q / 2);
    return std::count_if(codes, codes + all, [](uint8_t c) { return c > 3; });
  };
  if (dx == nullptr && dw != nullptr && block_on_c1(cp)) {
    // Each image's dz planes are rebuilt in the worker's scratch, where dw_c1 reads them.
    if (cp.N == 0) {
      std::fill(dw, dw + cp.K * cp.R * cp.S, 0.0f);
      if (db != nullptr) std::fill(db, db + cp.K, 0.0f);
      return 0;
    }
    Carver cv(workspace);
    const C1Scratch s = carve_c1(cv, cp, std::max(1, threads), true, true);
    const UnpooledImages dzs{dyp, codes, yp, cp.K, cp.P, cp.Q, s.planes, s.plane_stride, &bad};
    dw_c1(dw, db != nullptr, dzs, x, cp, s, *kKernels[isa], threads);
    if (db != nullptr) db_from_sums(db, s.sums, cp);
    return bad_codes();
  }
  if ((dw != nullptr || dx != nullptr) && gathered_dw_pays(cp, isa)) {
    // The gathered dw and dx (conv2 of the CNN). Where dx is not gathered (a w with an inf or
    // NaN, or images past its scratch), it takes the paths below, alone.
    Carver cv(workspace);
    const GatheredPath gp =
        carve_gathered_path(cv, cp, isa, dx != nullptr, dw != nullptr, threads);
    const Conv2dKernels& kr = *kKernels[isa];
    const int64_t pooled = cp.N * cp.K * (cp.P / 2) * (cp.Q / 2);
    std::atomic<int64_t> bad_count{0};
    split_blocks(pooled, pooled, [&](int64_t i0, int64_t i1) {
      bad_count += kr.pooled_gradient(gp.g + i0, dyp + i0, codes + i0, yp + i0, i1 - i0);
    });
    if (bad_count.load() != 0) bad = true;
    if (dw != nullptr) {
      gathered_dw(dw, gp.sums, gp.g, codes, x, cp, gp.dw, kr, *kWinograd[isa], threads);
    } else if (db != nullptr) {
      const int64_t windows = (cp.P / 2) * (cp.Q / 2);  // db alone: each image's window sums
      for (int64_t i = 0; i < cp.N * cp.K; ++i) {
        gp.sums[i] = std::accumulate(gp.g + i * windows, gp.g + (i + 1) * windows, 0.0f);
      }
    }
    if (db != nullptr) db_from_sums(db, gp.sums, cp);
    if (dx == nullptr) return bad_codes();
    if (gp.dx && !kr.any_nonfinite(w, cp.K * cp.C * cp.R * cp.S)) {
      gathered_dx(dx, gp.g, codes, w, cp, gp.gdx, kr, *kWinograd[isa], threads);
      return bad_codes();
    }
    dw = db = nullptr;  // done: the input gradient alone by the paths below
  }
  {
    // The implicit-GEMM dw and the Winograd dx (or either alone): dz rebuilt per image.
    Carver cv(workspace);
    const ImagePath ip = carve_image_path(cv, cp, isa, dx != nullptr, dw != nullptr, threads);
    if (ip.ok) {
      const UnpooledImages dzs{dyp, codes, yp, cp.K, cp.P, cp.Q, ip.scratch, ip.stride, &bad};
      backward_with(dx, dw, db, nullptr, dzs, dzs, x, w, cp, ip.plan, isa, threads);
      return bad_codes();
    }
  }
  // Otherwise the dense dz, then conv2d_backward.
  const int64_t PQ = cp.P * cp.Q;
  Carver cv(workspace);
  float* dz = cv.floats(cp.N * cp.K * PQ);
  float* rest = cv.floats(conv2d_backward_workspace_floats(cp, dx != nullptr, dw != nullptr,
                                                           nthreads));
  split_blocks(cp.N * cp.K, cp.N * cp.K * PQ, [&](int64_t p0, int64_t p1) {
    if (relu_unpool2x2_codes(dz, dyp, codes, yp, cp.P, cp.Q, p0, p1) != 0) bad = true;
  });
  conv2d_backward(dx, dw, db, dz, x, w, cp, rest, nthreads);
  return bad_codes();
}

}  // namespace fastdl::cpu
