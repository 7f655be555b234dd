// fused: bias + ReLU in place, and ReLU + 2x2 max pooling forward and backward (see fused.h).
// Plain loops the compiler vectorises (the build's baseline ISA: these passes are bound by
// memory, not arithmetic). Threads split rows (bias_relu) or planes (pooling) above a size
// where they pay for themselves; each output element is written by one thread.
// Tests: tests/test_kernels_fused.py.
#include "cpu/fused.h"

#include <algorithm>
#include <cstring>

#include "cpu/kernels.h"  // get_num_threads

namespace fastdl::cpu {

namespace {

// Below this many elements a second thread costs more than it saves.
constexpr int64_t kParallelMin = 1 << 15;

int threads_for(int64_t total, int64_t units) {
  if (total < kParallelMin) return 1;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(get_num_threads(), units)));
}

// ReLU that keeps NaN (PyTorch's, as relu_ps in activations_kernels.cpp).
inline float relu(float v) { return (v > 0.0f || v != v) ? v : 0.0f; }

}  // namespace

void bias_relu(float* x, const float* bias, int64_t A, int64_t C, int64_t B) {
  const int threads = threads_for(A * C * B, A);
  if (B == 1) {  // a linear layer's (rows, features): vectorise along the features
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t a = 0; a < A; ++a) {
      float* row = x + a * C;
      for (int64_t c = 0; c < C; ++c) row[c] = relu(row[c] + bias[c]);
    }
    return;
  }
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
  for (int64_t a = 0; a < A; ++a) {
    for (int64_t c = 0; c < C; ++c) {
      float* plane = x + (a * C + c) * B;
      const float b = bias[c];
      for (int64_t i = 0; i < B; ++i) plane[i] = relu(plane[i] + b);
    }
  }
}

void relu_maxpool2x2_forward(float* y, int64_t* indices, const float* x, int64_t planes,
                             int64_t H, int64_t W) {
  const int64_t P = H / 2, Q = W / 2;
  const int threads = threads_for(planes * H * W, planes);
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
  for (int64_t pl = 0; pl < planes; ++pl) {
    const float* xp = x + pl * H * W;
    float* yp = y + pl * P * Q;
    int64_t* ip = indices + pl * P * Q;
    for (int64_t p = 0; p < P; ++p) {
      const float* r0 = xp + 2 * p * W;
      const float* r1 = r0 + W;
      for (int64_t q = 0; q < Q; ++q) {
        // The window in row-major order; a later value replaces the max when greater or NaN
        // (maxpool2d's rule), so ties keep the first.
        const float a = relu(r0[2 * q]), b = relu(r0[2 * q + 1]);
        const float c = relu(r1[2 * q]), d = relu(r1[2 * q + 1]);
        float best = a;
        int64_t pos = 2 * p * W + 2 * q;
        if (b > best || b != b) { best = b; pos = 2 * p * W + 2 * q + 1; }
        if (c > best || c != c) { best = c; pos = (2 * p + 1) * W + 2 * q; }
        if (d > best || d != d) { best = d; pos = (2 * p + 1) * W + 2 * q + 1; }
        yp[p * Q + q] = best;
        ip[p * Q + q] = pos;
      }
    }
  }
}

void relu_maxpool2x2_backward(float* dx, const float* dy, const int64_t* indices, const float* y,
                              int64_t planes, int64_t H, int64_t W) {
  const int64_t P = H / 2, Q = W / 2;
  const int threads = threads_for(planes * H * W, planes);
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
  for (int64_t pl = 0; pl < planes; ++pl) {
    float* dxp = dx + pl * H * W;
    std::memset(dxp, 0, static_cast<size_t>(H * W) * sizeof(float));
    const float* dyp = dy + pl * P * Q;
    const float* yp = y + pl * P * Q;
    const int64_t* ip = indices + pl * P * Q;
    // 2x2 stride-2 windows do not overlap: each input position takes at most one dy.
    for (int64_t i = 0; i < P * Q; ++i) {
      if (yp[i] > 0.0f) dxp[ip[i]] = dyp[i];
    }
  }
}

}  // namespace fastdl::cpu
