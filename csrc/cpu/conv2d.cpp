// conv2d forward and backward (cross-correlation, zero padding, any stride), float32.
//
// Shapes: x (N, C, H, W), w (K, C, R, S), b (K,), y / dy (N, K, P, Q); per image the
// column matrix col is (C*R*S, P*Q): col[(c*R + r)*S + s][p*Q + q] = x[c][p*sh - ph + r][q*sw - pw + s]
// (0 in the padding). Then, per image n:
//   forward  y[n]  (K, PQ)   = w (K, CRS) @ col (CRS, PQ)        (+ b broadcast over PQ)
//   dx       dcol (CRS, PQ)  = w^T (CRS, K) @ dy[n] (K, PQ),  dx[n] = col2im(dcol)
//   dw       dw (K, CRS)    += dy[n] (K, PQ) @ col^T (PQ, CRS)
//   db       db[k]           = sum over n, p, q of dy[n][k]
// Threads: with at least as many images as threads, each worker runs whole images with a
// single-threaded GEMM and its own col buffers (dw in private accumulators, reduced at the end);
// with fewer images (batch 1), images run one after another and the GEMM itself is threaded.
// Variants: 1x1 kernels with stride 1 and no padding skip im2col (col is x[n] itself).
// Tests: tests/test_kernels_conv2d.py. Bench: bench/ (conv2d).
#include "cpu/conv2d.h"

#include <algorithm>
#include <cstdint>

#include "cpu/gemm.h"

namespace fastdl::cpu {

namespace {

constexpr int64_t kAlignFloats = 16;  // workspace regions start on 64-byte boundaries

int64_t round_up(int64_t a, int64_t b) { return (a + b - 1) / b * b; }
int64_t ceil_div_nonneg(int64_t a, int64_t b) { return a <= 0 ? 0 : (a + b - 1) / b; }

float* align64(float* p) {
  const auto addr = reinterpret_cast<std::uintptr_t>(p);
  return reinterpret_cast<float*>((addr + 63) & ~std::uintptr_t{63});
}

bool is_pointwise(const Conv2dParams& cp) {
  return cp.R == 1 && cp.S == 1 && cp.stride_h == 1 && cp.stride_w == 1 && cp.pad_h == 0 &&
         cp.pad_w == 0;
}

// How the batch is spread over threads (see the file header).
struct Split {
  int workers;       // workers that each run whole images (1 when images run in sequence)
  int gemm_threads;  // threads inside each GEMM call
};

Split split_for(const Conv2dParams& cp, int nthreads) {
  nthreads = std::max(1, nthreads);
  if (nthreads > 1 && cp.N >= nthreads) return {nthreads, 1};
  return {1, nthreads};
}

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

// col is (C*R*S, P*Q); xn is one image (C, H, W). Channels are split over nthreads threads.
void im2col(float* col, const float* xn, const Conv2dParams& cp, int nthreads) {
  const int64_t PQ = cp.P * cp.Q;
#pragma omp parallel for schedule(static) num_threads(nthreads) if (nthreads > 1)
  for (int64_t c = 0; c < cp.C; ++c) {
    const float* xc = xn + c * cp.H * cp.W;
    for (int64_t r = 0; r < cp.R; ++r) {
      for (int64_t s = 0; s < cp.S; ++s) {
        float* row = col + ((c * cp.R + r) * cp.S + s) * PQ;
        const Span qs = valid_q(cp, s);
        const int64_t iw0 = qs.lo * cp.stride_w - cp.pad_w + s;  // >= 0 when qs is non-empty
        for (int64_t p = 0; p < cp.P; ++p) {
          float* out = row + p * cp.Q;
          const int64_t ih = p * cp.stride_h - cp.pad_h + r;
          if (ih < 0 || ih >= cp.H || qs.lo == qs.hi) {
            std::fill(out, out + cp.Q, 0.0f);
            continue;
          }
          const float* in = xc + ih * cp.W + iw0;
          std::fill(out, out + qs.lo, 0.0f);
          if (cp.stride_w == 1) {
            std::copy(in, in + (qs.hi - qs.lo), out + qs.lo);
          } else {
            for (int64_t q = qs.lo; q < qs.hi; ++q) out[q] = in[(q - qs.lo) * cp.stride_w];
          }
          std::fill(out + qs.hi, out + cp.Q, 0.0f);
        }
      }
    }
  }
}

// dxn is one image (C, H, W), overwritten; dcol is (C*R*S, P*Q). The adjoint of im2col:
// every column entry is added back to the input pixel it was read from.
void col2im(float* dxn, const float* dcol, const Conv2dParams& cp, int nthreads) {
  const int64_t PQ = cp.P * cp.Q;
#pragma omp parallel for schedule(static) num_threads(nthreads) if (nthreads > 1)
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
          if (cp.stride_w == 1) {
#pragma omp simd
            for (int64_t q = qs.lo; q < qs.hi; ++q) out[q - qs.lo] += in[q];
          } else {
            for (int64_t q = qs.lo; q < qs.hi; ++q) out[(q - qs.lo) * cp.stride_w] += in[q];
          }
        }
      }
    }
  }
}

// One worker's scratch, carved out of the caller's workspace.
struct Scratch {
  int64_t col, dcol, dw_acc, gemm;  // floats in each region (each rounded to the alignment)
  int64_t total() const { return col + dcol + dw_acc + gemm; }
};

Scratch forward_scratch(const Conv2dParams& cp, int gemm_threads) {
  const int64_t CRS = cp.C * cp.R * cp.S, PQ = cp.P * cp.Q;
  Scratch s{};
  s.col = is_pointwise(cp) ? 0 : round_up(CRS * PQ, kAlignFloats);
  s.gemm = round_up(gemm_workspace_floats(cp.K, PQ, CRS, gemm_threads) + kAlignFloats,
                    kAlignFloats);
  return s;
}

Scratch backward_scratch(const Conv2dParams& cp, bool need_dx, bool need_dw, bool dw_private,
                         int gemm_threads) {
  const int64_t CRS = cp.C * cp.R * cp.S, PQ = cp.P * cp.Q;
  Scratch s{};
  if (need_dw && !is_pointwise(cp)) s.col = round_up(CRS * PQ, kAlignFloats);
  if (need_dx && !is_pointwise(cp)) s.dcol = round_up(CRS * PQ, kAlignFloats);
  if (need_dw && dw_private) s.dw_acc = round_up(cp.K * CRS, kAlignFloats);
  int64_t g = 0;
  if (need_dw) g = std::max(g, gemm_workspace_floats(cp.K, CRS, PQ, gemm_threads));
  if (need_dx) g = std::max(g, gemm_workspace_floats(CRS, PQ, cp.K, gemm_threads));
  s.gemm = round_up(g + kAlignFloats, kAlignFloats);
  return s;
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

}  // namespace

int64_t conv2d_forward_workspace_floats(const Conv2dParams& cp, int nthreads) {
  if (cp.N == 0) return 0;
  const Split sp = split_for(cp, nthreads);
  return sp.workers * forward_scratch(cp, sp.gemm_threads).total() + kAlignFloats;
}

// y (N, K, P, Q); x (N, C, H, W); w (K, C, R, S); b (K,) or nullptr.
void conv2d_forward(float* y, const float* x, const float* w, const float* b,
                    const Conv2dParams& cp, float* workspace, int nthreads) {
  if (cp.N == 0) return;
  const Split sp = split_for(cp, nthreads);
  const Scratch sc = forward_scratch(cp, sp.gemm_threads);
  const int64_t CRS = cp.C * cp.R * cp.S, PQ = cp.P * cp.Q;
  float* base = align64(workspace);

  // Image n on a worker whose scratch starts at ws, with gemm_threads threads inside the GEMM.
  auto image = [&](int64_t n, float* ws, int gemm_threads) {
    float* yn = y + n * cp.K * PQ;
    const float* xn = x + n * cp.C * cp.H * cp.W;
    const float* col = xn;
    if (sc.col > 0) {
      im2col(ws, xn, cp, gemm_threads);
      col = ws;
    }
    float beta = 0.0f;
    if (b != nullptr) {  // start from the bias and let the GEMM add to it
      for (int64_t k = 0; k < cp.K; ++k) std::fill(yn + k * PQ, yn + (k + 1) * PQ, b[k]);
      beta = 1.0f;
    }
    gemm(yn, w, col, cp.K, PQ, CRS, PQ, CRS, PQ, false, false, 1.0f, beta, ws + sc.col,
         gemm_threads);
  };

  if (sp.workers == 1) {
    for (int64_t n = 0; n < cp.N; ++n) image(n, base, sp.gemm_threads);
    return;
  }
#pragma omp parallel for schedule(static) num_threads(sp.workers)
  for (int wk = 0; wk < sp.workers; ++wk) {
    float* ws = base + wk * sc.total();
    for (int64_t n = cp.N * wk / sp.workers; n < cp.N * (wk + 1) / sp.workers; ++n) image(n, ws, 1);
  }
}

int64_t conv2d_backward_workspace_floats(const Conv2dParams& cp, bool need_dx, bool need_dw,
                                         int nthreads) {
  if (cp.N == 0) return 0;
  const Split sp = split_for(cp, nthreads);
  const Scratch sc = backward_scratch(cp, need_dx, need_dw, sp.workers > 1, sp.gemm_threads);
  return sp.workers * sc.total() + kAlignFloats;
}

// dx (N, C, H, W), dw (K, C, R, S), db (K,) each optional; dy (N, K, P, Q); x; w.
void conv2d_backward(float* dx, float* dw, float* db, const float* dy, const float* x,
                     const float* w, const Conv2dParams& cp, float* workspace, int nthreads) {
  nthreads = std::max(1, nthreads);
  const int64_t CRS = cp.C * cp.R * cp.S, PQ = cp.P * cp.Q;
  if (db != nullptr) bias_backward(db, dy, cp, nthreads);
  if (dx == nullptr && dw == nullptr) return;
  if (cp.N == 0) {  // no images: dw is an empty sum (dx has no elements)
    if (dw != nullptr) std::fill(dw, dw + cp.K * CRS, 0.0f);
    return;
  }
  const Split sp = split_for(cp, nthreads);
  const bool dw_private = sp.workers > 1;
  const Scratch sc = backward_scratch(cp, dx != nullptr, dw != nullptr, dw_private, sp.gemm_threads);
  float* base = align64(workspace);

  // Image n on a worker whose scratch starts at ws; dw_dst is this worker's dw accumulator and
  // `first` says whether image n is the first it adds there (beta = 0 overwrites).
  auto image = [&](int64_t n, float* ws, int gemm_threads, float* dw_dst, bool first) {
    float* col = ws;
    float* dcol = col + sc.col;
    float* gemm_ws = dcol + sc.dcol + sc.dw_acc;
    const float* xn = x + n * cp.C * cp.H * cp.W;
    const float* dyn = dy + n * cp.K * PQ;
    if (dw != nullptr) {
      const float* cols = xn;
      if (sc.col > 0) {
        im2col(col, xn, cp, gemm_threads);
        cols = col;
      }
      // dw (K, CRS) (+)= dy[n] (K, PQ) @ col^T; col is stored (CRS, PQ).
      gemm(dw_dst, dyn, cols, cp.K, CRS, PQ, CRS, PQ, PQ, false, true, 1.0f, first ? 0.0f : 1.0f,
           gemm_ws, gemm_threads);
    }
    if (dx != nullptr) {
      float* dxn = dx + n * cp.C * cp.H * cp.W;
      // dcol (CRS, PQ) = w^T @ dy[n]; w is stored (K, CRS). Pointwise: dcol is dx[n] itself.
      float* out = sc.dcol > 0 ? dcol : dxn;
      gemm(out, w, dyn, CRS, PQ, cp.K, PQ, CRS, PQ, true, false, 1.0f, 0.0f, gemm_ws,
           gemm_threads);
      if (sc.dcol > 0) col2im(dxn, dcol, cp, gemm_threads);
    }
  };

  if (!dw_private) {
    for (int64_t n = 0; n < cp.N; ++n) image(n, base, sp.gemm_threads, dw, n == 0);
    return;
  }
#pragma omp parallel for schedule(static) num_threads(sp.workers)
  for (int wk = 0; wk < sp.workers; ++wk) {
    float* ws = base + wk * sc.total();
    // Worker 0 accumulates straight into dw, the others into their private block.
    float* dw_dst = wk == 0 ? dw : ws + sc.col + sc.dcol;
    const int64_t n_lo = cp.N * wk / sp.workers, n_hi = cp.N * (wk + 1) / sp.workers;
    for (int64_t n = n_lo; n < n_hi; ++n) image(n, ws, 1, dw_dst, n == n_lo);
  }
  if (dw == nullptr) return;
  // Reduce the private dw accumulators into dw (every worker had at least one image).
  const int64_t size = cp.K * CRS;
#pragma omp parallel for schedule(static) num_threads(nthreads) if (size >= (1 << 14))
  for (int64_t i = 0; i < size; ++i) {
    float sum = dw[i];
    for (int wk = 1; wk < sp.workers; ++wk) sum += base[wk * sc.total() + sc.col + sc.dcol + i];
    dw[i] = sum;
  }
}

}  // namespace fastdl::cpu
