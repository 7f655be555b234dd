// norm: per-group mean, biased variance and standardised output, and its input gradient,
// float32 -- the threaded entry points (the bodies are norm_kernels.cpp, one build per ISA).
//
// Shapes: x, y, dy, dx (A, C, B), reduced over A and B for each channel c; mean, var, rstd (C,)
// (see norm.h for how batch, layer and group norm map onto this view).
// Threads split channels (each group's sums stay on one thread, so results do not depend on
// the thread count) above a size where threads pay for themselves.
// Tests: tests/test_kernels_norm.py.
#include "cpu/norm.h"

#include "cpu/parallel.h"

namespace fastdl::cpu {

namespace {

const NormKernels& active() { return FASTDL_ACTIVE(NormKernels, norm_kernels); }

}  // namespace

// x, y are (A,C,B); mean, var, rstd are (C,).
void norm_forward(float* y, float* mean, float* var, float* rstd, const float* x, int64_t A,
                  int64_t C, int64_t B, float eps) {
  const auto f = active().forward;
  split_blocks(C, A * C * B, [&](int64_t c0, int64_t c1) {
    f(y, mean, var, rstd, x, A, C, B, eps, c0, c1);
  });
}

// dy, x, dx are (A,C,B); mean, rstd are (C,).
void norm_backward(float* dx, const float* dy, const float* x, const float* mean,
                   const float* rstd, int64_t A, int64_t C, int64_t B) {
  const auto f = active().backward;
  split_blocks(C, A * C * B,
               [&](int64_t c0, int64_t c1) { f(dx, dy, x, mean, rstd, A, C, B, c0, c1); });
}

}  // namespace fastdl::cpu
