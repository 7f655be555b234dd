// norm bodies, compiled once per ISA (see dispatch.h): per-channel mean, biased variance and
// standardised output, and the input gradient, float32, for channels [c0, c1) of x viewed as
// (A, C, B) (see norm.h). norm.cpp splits channels across threads.
//
// Each group is A contiguous runs of B floats. Sums run in float vectors along a run (the
// compiler's `omp simd` reduction: kW partial sums) and in double across runs, so long groups
// (a batch of feature maps) lose little to rounding. Two passes for the statistics (mean, then
// the mean of squared deviations: no cancellation), one to write y; the backward reads dy and x
// twice. NaN and inf propagate as in the reference.
// Tests: tests/test_kernels_norm.py. Bench: the timeit in the commit that added it.
#include "cpu/norm.h"

#include <cmath>
#include <limits>

namespace fastdl::cpu::FASTDL_ISA {

namespace {

// Sum of x[0..n).
inline float sum_run(const float* x, int64_t n) {
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) s += x[i];
  return s;
}

// Sum of (x - m)^2 over x[0..n).
inline float sq_dev_run(const float* x, int64_t n, float m) {
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) {
    const float d = x[i] - m;
    s += d * d;
  }
  return s;
}

// x, y are (A,C,B); mean, var, rstd are (C,); channels [c0, c1).
void forward(float* y, float* mean, float* var, float* rstd, const float* x, int64_t A,
             int64_t C, int64_t B, float eps, int64_t c0, int64_t c1) {
  const double n = static_cast<double>(A) * static_cast<double>(B);
  for (int64_t c = c0; c < c1; ++c) {
    double s = 0.0;
    for (int64_t a = 0; a < A; ++a) s += sum_run(x + (a * C + c) * B, B);
    // NOTE: an empty group gives 0 / 0 = NaN, like the reference's mean of nothing.
    const float m = n > 0 ? static_cast<float>(s / n) : std::numeric_limits<float>::quiet_NaN();
    double q = 0.0;
    for (int64_t a = 0; a < A; ++a) q += sq_dev_run(x + (a * C + c) * B, B, m);
    const float v = n > 0 ? static_cast<float>(q / n) : std::numeric_limits<float>::quiet_NaN();
    const float r = 1.0f / std::sqrt(v + eps);
    mean[c] = m;
    var[c] = v;
    rstd[c] = r;
    for (int64_t a = 0; a < A; ++a) {
      const float* xs = x + (a * C + c) * B;
      float* ys = y + (a * C + c) * B;
#pragma omp simd
      for (int64_t i = 0; i < B; ++i) ys[i] = (xs[i] - m) * r;
    }
  }
}

// dy, x, dx are (A,C,B); mean, rstd are (C,); channels [c0, c1).
void backward(float* dx, const float* dy, const float* x, const float* mean, const float* rstd,
              int64_t A, int64_t C, int64_t B, int64_t c0, int64_t c1) {
  const double n = static_cast<double>(A) * static_cast<double>(B);
  if (n == 0) return;
  for (int64_t c = c0; c < c1; ++c) {
    const float m = mean[c], r = rstd[c];
    double sg = 0.0, sgx = 0.0;  // sums of dy and of dy * x_hat
    for (int64_t a = 0; a < A; ++a) {
      const float* gs = dy + (a * C + c) * B;
      const float* xs = x + (a * C + c) * B;
      float g = 0.0f, gx = 0.0f;
#pragma omp simd reduction(+ : g, gx)
      for (int64_t i = 0; i < B; ++i) {
        g += gs[i];
        gx += gs[i] * ((xs[i] - m) * r);
      }
      sg += g;
      sgx += gx;
    }
    const float mg = static_cast<float>(sg / n), mgx = static_cast<float>(sgx / n);
    for (int64_t a = 0; a < A; ++a) {
      const float* gs = dy + (a * C + c) * B;
      const float* xs = x + (a * C + c) * B;
      float* ds = dx + (a * C + c) * B;
#pragma omp simd
      for (int64_t i = 0; i < B; ++i) ds[i] = (gs[i] - mg - (xs[i] - m) * r * mgx) * r;
    }
  }
}

constexpr NormKernels kNorm = {forward, backward};

}  // namespace

const NormKernels& norm_kernels() { return kNorm; }

}  // namespace fastdl::cpu::FASTDL_ISA
