// pool bodies, compiled once per ISA (see dispatch.h): average pooling over windows given as
// row and column ranges, forward and backward, float32, for planes [n0, n1) (see pool.h).
// pool.cpp turns avgpool2d's and adaptive_avgpool2d's windows into those ranges and splits the
// planes across threads.
//
// A window's sum is separable: the forward first adds the window's input rows into one row of
// W floats (vectors along W), then sums each window's columns of that row. The backward runs it
// in reverse: each output's share (dy over its divisor) is added over its columns of one row,
// which is then added to the window's input rows. Windows move down the plane monotonically, so
// the backward stores (instead of adding) to rows no earlier window reached, and zeroes rows no
// window covers: dx is written once per window row, with no separate zero pass.
// Tests: tests/test_kernels_pool.py. Bench: bench/kernels.py (pool rows).
#include "cpu/pool.h"
#include "cpu/simd.h"

namespace fastdl::cpu::FASTDL_ISA {

namespace {

// out[0..n) = a + b.
inline void add_rows(float* out, const float* a, const float* b, int64_t n) {
  int64_t i = 0;
  for (; i + kW <= n; i += kW) store(out + i, load(a + i) + load(b + i));
  const int rest = static_cast<int>(n - i);
  if (rest) store_first(out + i, load_first(a + i, rest) + load_first(b + i, rest), rest);
}

// out[0..n) = a / b (vector division: one rounding, as the scalar one).
inline void divide_rows(float* out, const float* a, const float* b, int64_t n) {
  int64_t i = 0;
  for (; i + kW <= n; i += kW) store(out + i, load(a + i) / load(b + i));
  const int rest = static_cast<int>(n - i);
  if (rest) {
    // The lanes past n divide 0 by 1, not 0 by 0 (no spurious invalid-operation flag).
    const vf den = select(lane_index() < rest, load_first(b + i, rest), splat(1.0f));
    store_first(out + i, load_first(a + i, rest) / den, rest);
  }
}

// out[0..n) = a.
inline void copy_row(float* out, const float* a, int64_t n) {
  std::memcpy(out, a, sizeof(float) * n);
}

inline void zero_row(float* out, int64_t n) { std::memset(out, 0, sizeof(float) * n); }

// x is (NC,H,W); y is (NC,P,Q); rows (P, 2), cols (Q, 2), divisor (P, Q); row is W floats.
void avg_forward(float* y, const float* x, int64_t H, int64_t W, int64_t P, int64_t Q,
                 const int64_t* rows, const int64_t* cols, const float* divisor, float* row,
                 int64_t n0, int64_t n1) {
  for (int64_t n = n0; n < n1; ++n) {
    const float* xs = x + n * H * W;
    float* ys = y + n * P * Q;
    for (int64_t p = 0; p < P; ++p) {
      const int64_t lo = rows[2 * p], hi = rows[2 * p + 1];
      const float* sum = xs + lo * W;  // the window's row sum; a one-row window is that row
      if (hi - lo > 1) {
        add_rows(row, sum, sum + W, W);
        for (int64_t h = lo + 2; h < hi; ++h) add_rows(row, row, xs + h * W, W);
        sum = row;
      }
      float* out = ys + p * Q;
      for (int64_t q = 0; q < Q; ++q) {
        float s = 0.0f;
        for (int64_t w = cols[2 * q]; w < cols[2 * q + 1]; ++w) s += sum[w];
        out[q] = s;
      }
      divide_rows(out, out, divisor + p * Q, Q);
    }
  }
}

// dy is (NC,P,Q); dx is (NC,H,W); rows, cols, divisor and row as in avg_forward.
void avg_backward(float* dx, const float* dy, int64_t H, int64_t W, int64_t P, int64_t Q,
                  const int64_t* rows, const int64_t* cols, const float* divisor, float* row,
                  int64_t n0, int64_t n1) {
  for (int64_t n = n0; n < n1; ++n) {
    float* dxs = dx + n * H * W;
    const float* dys = dy + n * P * Q;
    int64_t done = 0;  // rows [0, done) of dxs hold values; the rest are not written yet
    for (int64_t p = 0; p < P; ++p) {
      const int64_t lo = rows[2 * p], hi = rows[2 * p + 1];
      float* share = row + W;  // (Q,): each output's gradient over its divisor
      divide_rows(share, dys + p * Q, divisor + p * Q, Q);
      zero_row(row, W);
      for (int64_t q = 0; q < Q; ++q) {
        for (int64_t w = cols[2 * q]; w < cols[2 * q + 1]; ++w) row[w] += share[q];
      }
      if (lo > done) {
        zero_row(dxs + done * W, (lo - done) * W);  // rows no window covers
        done = lo;
      }
      for (int64_t h = lo; h < hi; ++h) {
        if (h < done) {
          add_rows(dxs + h * W, dxs + h * W, row, W);
        } else {
          copy_row(dxs + h * W, row, W);
        }
      }
      done = max64(done, hi);
    }
    if (done < H) zero_row(dxs + done * W, (H - done) * W);
  }
}

constexpr PoolKernels kPool = {avg_forward, avg_backward};

}  // namespace

const PoolKernels& pool_kernels() { return kPool; }

}  // namespace fastdl::cpu::FASTDL_ISA
