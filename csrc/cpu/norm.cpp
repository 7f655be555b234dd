// norm: per-group mean, biased variance and standardised output, and its input gradient,
// float32 -- the threaded entry points (the bodies are norm_kernels.cpp, one build per ISA).
//
// Shapes: x, y, dy, dx (A, C, B), reduced over A and B for each channel c; mean, var, rstd (C,)
// (see norm.h for how batch, layer and group norm map onto this view).
// Threads split channels (each group's sums stay on one thread, so results do not depend on
// the thread count) above a size where threads pay for themselves.
// Tests: tests/test_kernels_norm.py.
#include "cpu/norm.h"

#include <algorithm>

#include "cpu/kernels.h"  // get_num_threads

#ifdef _OPENMP
#include <omp.h>
#endif

namespace fastdl::cpu {

namespace {

// Below this many elements a second thread costs more than it saves.
constexpr int64_t kParallelMin = 1 << 15;

const NormKernels& active() {
  static const NormKernels* const table[kIsaCount] = {
      &baseline::norm_kernels(), &avx2::norm_kernels(), &avx512::norm_kernels()};
  return for_active_isa(table);
}

// Runs body(c0, c1) over channels [0, C) in one contiguous block per thread.
template <typename Body>
void split_channels(int64_t C, int64_t total, Body body) {
  const int64_t wanted = total >= kParallelMin ? std::max(1, get_num_threads()) : 1;
  const int threads = static_cast<int>(std::min<int64_t>(wanted, std::max<int64_t>(C, 1)));
  if (threads == 1) {
    body(int64_t{0}, C);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
#ifdef _OPENMP
    const int t = omp_get_thread_num(), team = omp_get_num_threads();
#else
    const int t = 0, team = 1;
#endif
    const int64_t lo = C * t / team, hi = C * (t + 1) / team;
    if (lo < hi) body(lo, hi);
  }
}

}  // namespace

// x, y are (A,C,B); mean, var, rstd are (C,).
void norm_forward(float* y, float* mean, float* var, float* rstd, const float* x, int64_t A,
                  int64_t C, int64_t B, float eps) {
  const auto f = active().forward;
  split_channels(C, A * C * B, [&](int64_t c0, int64_t c1) {
    f(y, mean, var, rstd, x, A, C, B, eps, c0, c1);
  });
}

// dy, x, dx are (A,C,B); mean, rstd are (C,).
void norm_backward(float* dx, const float* dy, const float* x, const float* mean,
                   const float* rstd, int64_t A, int64_t C, int64_t B) {
  const auto f = active().backward;
  split_channels(C, A * C * B,
                 [&](int64_t c0, int64_t c1) { f(dx, dy, x, mean, rstd, A, C, B, c0, c1); });
}

}  // namespace fastdl::cpu
