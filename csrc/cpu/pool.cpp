// pool: average pooling (avgpool2d: kernel, stride, padding, ceil_mode, count_include_pad,
// divisor_override), adaptive average pooling and adaptive max pooling, float32 -- the threaded
// entry points.
//
// Shapes: x, dx (N, C, H, W); y, dy, indices (N, C, P, Q). Both average poolings become the same
// per-ISA bodies (pool_kernels.cpp): each output row's input rows [lo, hi), each output column's
// input columns, and a (P, Q) table of divisors, built here once per call. Adaptive max pooling
// is scalar (ragged windows of a few elements) with max pooling's NaN rule (keep_max), here.
// Threads split planes (N * C): a plane's sums stay on one thread, so results do not depend on
// the thread count.
// Tests: tests/test_kernels_pool.py. Bench: bench/kernels.py (pool rows).
#include "cpu/pool.h"

#include <algorithm>
#include <vector>

#include "cpu/maxpool2d.h"  // keep_max
#include "cpu/parallel.h"

namespace fastdl::cpu {

namespace {

const PoolKernels& active() { return FASTDL_ACTIVE(PoolKernels, pool_kernels); }

// One dim of avgpool2d: `out` windows of kernel k, stride s, padding pad over `size` inputs.
// ranges gets (out, 2) input ranges clipped to the input; counts each window's divisor factor:
// its length clipped to the padded input [-pad, size + pad) (count_include_pad) or to the input.
void avg_windows(std::vector<int64_t>& ranges, std::vector<double>& counts, int64_t size,
                 int64_t out, int64_t k, int64_t s, int64_t pad, bool count_include_pad) {
  ranges.resize(2 * out);
  counts.resize(out);
  for (int64_t i = 0; i < out; ++i) {
    const int64_t start = i * s - pad;  // < size, by the output size rule
    const int64_t end = start + std::min(k, size + pad - start);  // never past the padding
    ranges[2 * i] = std::max<int64_t>(start, 0);
    ranges[2 * i + 1] = std::min(end, size);
    counts[i] = static_cast<double>(count_include_pad ? end - start
                                                      : ranges[2 * i + 1] - ranges[2 * i]);
  }
}

// One dim of the adaptive poolings: window i of `out` over `size` is
// [floor(i * size / out), ceil((i + 1) * size / out)). ranges gets (out, 2); counts the lengths.
void adaptive_windows(std::vector<int64_t>& ranges, std::vector<double>& counts, int64_t size,
                      int64_t out) {
  ranges.resize(2 * out);
  counts.resize(out);
  for (int64_t i = 0; i < out; ++i) {
    ranges[2 * i] = i * size / out;
    ranges[2 * i + 1] = ((i + 1) * size + out - 1) / out;
    counts[i] = static_cast<double>(ranges[2 * i + 1] - ranges[2 * i]);
  }
}

// The windows and divisors of one average pooling, ready for the bodies.
struct AvgPlan {
  std::vector<int64_t> rows, cols;
  std::vector<double> row_counts, col_counts;
  std::vector<float> divisor;  // (P, Q)

  // divisor[p, q] = override when non-zero, else row_counts[p] * col_counts[q].
  void make_divisor(int64_t divisor_override) {
    const int64_t P = row_counts.size(), Q = col_counts.size();
    divisor.resize(P * Q);
    for (int64_t p = 0; p < P; ++p) {
      for (int64_t q = 0; q < Q; ++q) {
        const double d = divisor_override ? static_cast<double>(divisor_override)
                                          : row_counts[p] * col_counts[q];
        divisor[p * Q + q] = static_cast<float>(d);
      }
    }
  }

  // The body `f` (a PoolKernels entry) over NC planes: forward from x (NC,H,W) to y (NC,P,Q),
  // or backward from dy (NC,P,Q) to dx (NC,H,W).
  void run(decltype(PoolKernels::avg_forward) f, float* out, const float* in, int64_t NC,
           int64_t H, int64_t W) const {
    const int64_t P = row_counts.size(), Q = col_counts.size();
    split_blocks(NC, NC * H * W, [&](int64_t n0, int64_t n1) {
      std::vector<float> row(W + Q);
      f(out, in, H, W, P, Q, rows.data(), cols.data(), divisor.data(), row.data(), n0, n1);
    });
  }
};

AvgPlan avg_plan(int64_t H, int64_t W, int64_t P, int64_t Q, int64_t R, int64_t S, int64_t sh,
                 int64_t sw, int64_t ph, int64_t pw, bool count_include_pad,
                 int64_t divisor_override) {
  AvgPlan plan;
  avg_windows(plan.rows, plan.row_counts, H, P, R, sh, ph, count_include_pad);
  avg_windows(plan.cols, plan.col_counts, W, Q, S, sw, pw, count_include_pad);
  plan.make_divisor(divisor_override);
  return plan;
}

AvgPlan adaptive_plan(int64_t H, int64_t W, int64_t P, int64_t Q) {
  AvgPlan plan;
  adaptive_windows(plan.rows, plan.row_counts, H, P);
  adaptive_windows(plan.cols, plan.col_counts, W, Q);
  plan.make_divisor(0);
  return plan;
}

}  // namespace

// x is (N,C,H,W); y is (N,C,P,Q).
void avgpool2d_forward(float* y, const float* x, int64_t N, int64_t C, int64_t H, int64_t W,
                       int64_t P, int64_t Q, int64_t R, int64_t S, int64_t sh, int64_t sw,
                       int64_t ph, int64_t pw, bool count_include_pad, int64_t divisor_override) {
  avg_plan(H, W, P, Q, R, S, sh, sw, ph, pw, count_include_pad, divisor_override)
      .run(active().avg_forward, y, x, N * C, H, W);
}

// dy is (N,C,P,Q); dx is (N,C,H,W).
void avgpool2d_backward(float* dx, const float* dy, int64_t N, int64_t C, int64_t H, int64_t W,
                        int64_t P, int64_t Q, int64_t R, int64_t S, int64_t sh, int64_t sw,
                        int64_t ph, int64_t pw, bool count_include_pad, int64_t divisor_override) {
  avg_plan(H, W, P, Q, R, S, sh, sw, ph, pw, count_include_pad, divisor_override)
      .run(active().avg_backward, dx, dy, N * C, H, W);
}

// x is (N,C,H,W); y is (N,C,P,Q).
void adaptive_avgpool2d_forward(float* y, const float* x, int64_t N, int64_t C, int64_t H,
                                int64_t W, int64_t P, int64_t Q) {
  adaptive_plan(H, W, P, Q).run(active().avg_forward, y, x, N * C, H, W);
}

// dy is (N,C,P,Q); dx is (N,C,H,W).
void adaptive_avgpool2d_backward(float* dx, const float* dy, int64_t N, int64_t C, int64_t H,
                                 int64_t W, int64_t P, int64_t Q) {
  adaptive_plan(H, W, P, Q).run(active().avg_backward, dx, dy, N * C, H, W);
}

// x is (N,C,H,W); y and indices are (N,C,P,Q).
void adaptive_maxpool2d_forward(float* y, int64_t* indices, const float* x, int64_t N, int64_t C,
                                int64_t H, int64_t W, int64_t P, int64_t Q) {
  std::vector<int64_t> rows, cols;
  std::vector<double> counts;
  adaptive_windows(rows, counts, H, P);
  adaptive_windows(cols, counts, W, Q);
  split_blocks(N * C, N * C * H * W, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      const float* xs = x + n * H * W;
      for (int64_t p = 0; p < P; ++p) {
        for (int64_t q = 0; q < Q; ++q) {
          int64_t best_at = rows[2 * p] * W + cols[2 * q];
          float best = xs[best_at];
          for (int64_t h = rows[2 * p]; h < rows[2 * p + 1]; ++h) {
            for (int64_t w = cols[2 * q]; w < cols[2 * q + 1]; ++w) {
              keep_max(xs[h * W + w], h * W + w, best, best_at);
            }
          }
          y[(n * P + p) * Q + q] = best;
          indices[(n * P + p) * Q + q] = best_at;
        }
      }
    }
  });
}

}  // namespace fastdl::cpu
