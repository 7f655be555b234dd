// fused: bias + ReLU in place, and ReLU + 2x2 max pooling forward and backward (see fused.h).
// bias + ReLU and the unpooling are plain loops the compiler vectorises (the build's baseline
// ISA: these passes are bound by memory, not arithmetic); the pooling runs the per-ISA bodies of
// pool2x2_kernels.cpp. Threads split rows (bias_relu) or planes (pooling) above a size where
// they pay for themselves; each output element is written by one thread.
// Tests: tests/test_kernels_fused.py.
#include "cpu/fused.h"

#include <algorithm>
#include <cstring>

#include "cpu/parallel.h"
#include "cpu/pool2x2.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace fastdl::cpu {

namespace {


// ReLU that keeps NaN (PyTorch's, as relu_ps in activations_kernels.cpp).
inline float relu(float v) { return (v > 0.0f || v != v) ? v : 0.0f; }


// Rows [a0, a1) of bias_relu.
void bias_relu_rows(float* x, const float* bias, int64_t C, int64_t B, int64_t a0, int64_t a1) {
  if (B == 1) {  // a linear layer's (rows, features): vectorise along the features
    for (int64_t a = a0; a < a1; ++a) {
      float* row = x + a * C;
      for (int64_t c = 0; c < C; ++c) row[c] = relu(row[c] + bias[c]);
    }
    return;
  }
  for (int64_t a = a0; a < a1; ++a) {
    for (int64_t c = 0; c < C; ++c) {
      float* plane = x + (a * C + c) * B;
      const float b = bias[c];
      for (int64_t i = 0; i < B; ++i) plane[i] = relu(plane[i] + b);
    }
  }
}

// Planes [p0, p1) of relu_maxpool2x2_backward.
// Returns how many indices were not in their window (those windows get no gradient).
int64_t unpool_planes(float* dx, const float* dy, const int64_t* indices, const float* y,
                      int64_t H, int64_t W, int64_t p0, int64_t p1) {
  const int64_t P = H / 2, Q = W / 2;
  int64_t bad = 0;
  for (int64_t pl = p0; pl < p1; ++pl) {
    float* dxp = dx + pl * H * W;
    std::memset(dxp, 0, static_cast<size_t>(H * W) * sizeof(float));
    // Windows do not overlap: each puts dy at its argmax where y > 0. The place is computed
    // from the window and a checked offset, so no index can write outside its window; and
    // arithmetic, not branches, picks it (the argmax's place is random).
    for (int64_t p = 0; p < P; ++p) {
      float* r0 = dxp + 2 * p * W;
      const int64_t base = 2 * p * W, row = (pl * P + p) * Q;
      for (int64_t q = 0; q < Q; ++q) {
        const int64_t k = indices[row + q] - base - 2 * q, bottom = k >= W;
        const int64_t col = k - bottom * W;
        const bool valid = (k >= 0) & (k <= W + 1) & (col <= 1);
        bad += !valid;
        const float g = y[row + q] > 0.0f ? dy[row + q] : 0.0f;
        r0[2 * q + (valid ? k : 0)] = valid ? g : 0.0f;
      }
    }
  }
  return bad;
}

}  // namespace

void bias_relu(float* x, const float* bias, int64_t A, int64_t C, int64_t B) {
  split_blocks(A, A * C * B, [=](int64_t a0, int64_t a1) { bias_relu_rows(x, bias, C, B, a0, a1); });
}

void relu_maxpool2x2_forward(float* y, int64_t* indices, const float* x, int64_t planes,
                             int64_t H, int64_t W) {
  const Pool2x2Kernels& k = FASTDL_ACTIVE(Pool2x2Kernels, pool2x2_kernels);
  split_blocks(planes, planes * H * W, [=, &k](int64_t p0, int64_t p1) {
    if (indices != nullptr) {
      k.relu_pool_indices(y, indices, x, H, W, p0, p1);
    } else {
      k.relu_pool_codes(y, nullptr, x, H, W, p0, p1);
    }
  });
}

int64_t relu_maxpool2x2_backward(float* dx, const float* dy, const int64_t* indices,
                                 const float* y, int64_t planes, int64_t H, int64_t W) {
  int64_t bad = 0;
  split_blocks(planes, planes * H * W, [=, &bad](int64_t p0, int64_t p1) {
    const int64_t mine = unpool_planes(dx, dy, indices, y, H, W, p0, p1);
#pragma omp atomic
    bad += mine;
  });
  return bad;
}

void relu_maxpool2x2_codes(float* y, uint8_t* codes, const float* x, int64_t H, int64_t W,
                           int64_t p0, int64_t p1) {
  FASTDL_ACTIVE(Pool2x2Kernels, pool2x2_kernels).relu_pool_codes(y, codes, x, H, W, p0, p1);
}

int64_t relu_unpool2x2_codes(float* dx, const float* dy, const uint8_t* codes, const float* y,
                             int64_t H, int64_t W, int64_t p0, int64_t p1) {
  return FASTDL_ACTIVE(Pool2x2Kernels, pool2x2_kernels)
      .relu_unpool_codes(dx, dy, codes, y, H, W, p0, p1);
}

}  // namespace fastdl::cpu
