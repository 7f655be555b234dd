// fused: bias + ReLU in place, and ReLU + 2x2 max pooling forward and backward (see fused.h).
// Plain loops the compiler vectorises (the build's baseline ISA: these passes are bound by
// memory, not arithmetic). Threads split rows (bias_relu) or planes (pooling) above a size
// where they pay for themselves; each output element is written by one thread.
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

// Four lanes (16 bytes, SSE2 or NEON, whatever the build's ISA; pooled CNN rows are short, as
// in maxpool2d.cpp) of floats or int32s (GCC/Clang vector extensions).
typedef float VecF __attribute__((vector_size(16)));
typedef int32_t VecI __attribute__((vector_size(16)));

inline VecF load4(const float* p) {
  VecF v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline void store4(float* p, VecF v) { std::memcpy(p, &v, sizeof v); }

inline VecF relu4(VecF v) { return (VecF)(((v > 0.0f) | (v != v)) & (VecI)v); }

inline VecF select4(VecI mask, VecF a, VecF b) { return (VecF)((mask & (VecI)a) | (~mask & (VecI)b)); }

// Output columns [q, q + 4) of one pooled row: r0, r1 are the window rows, code gets the
// argmax's place in its window (0, 1: top row, 2, 3: bottom row).
inline void pool4(const float* r0, const float* r1, int64_t q, VecF& best, VecI& code) {
  const VecF lo0 = load4(r0 + 2 * q), hi0 = load4(r0 + 2 * q + 4);
  const VecF lo1 = load4(r1 + 2 * q), hi1 = load4(r1 + 2 * q + 4);
  const VecI even = {0, 2, 4, 6}, odd = {1, 3, 5, 7};
  const VecF a = relu4(__builtin_shuffle(lo0, hi0, even));
  const VecF b = relu4(__builtin_shuffle(lo0, hi0, odd));
  const VecF c = relu4(__builtin_shuffle(lo1, hi1, even));
  const VecF d = relu4(__builtin_shuffle(lo1, hi1, odd));
  // In row-major order a later value replaces the max when greater or NaN (maxpool2d's rule),
  // so ties keep the first.
  best = a;
  code = VecI{0, 0, 0, 0};
  VecI t = (b > best) | (b != b);
  best = select4(t, b, best);
  code = (t & 1) | (~t & code);
  t = (c > best) | (c != c);
  best = select4(t, c, best);
  code = (t & 2) | (~t & code);
  t = (d > best) | (d != d);
  best = select4(t, d, best);
  code = (t & 3) | (~t & code);
}

// Planes [p0, p1) of relu_maxpool2x2_forward; kIndices: write the argmax indices too.
template <bool kIndices>
void pool_planes(float* y, int64_t* indices, const float* x, int64_t H, int64_t W, int64_t p0,
                 int64_t p1) {
  const int64_t P = H / 2, Q = W / 2;
  for (int64_t pl = p0; pl < p1; ++pl) {
    for (int64_t p = 0; p < P; ++p) {
      const float* r0 = x + pl * H * W + 2 * p * W;
      const float* r1 = r0 + W;
      const int64_t base = 2 * p * W;
      float* yr = y + (pl * P + p) * Q;
      int64_t* ir = kIndices ? indices + (pl * P + p) * Q : nullptr;
      // Blocks of 4 columns; the last block is shifted back to end at the row's end (writing a
      // column twice is harmless), so a row of Q >= 4 needs no scalar remainder. A block reads
      // 8 input columns from 2q, which lie inside the row (2q + 8 <= 2Q <= W).
      for (int64_t q0 = 0; q0 < Q && Q >= 4; q0 += 4) {
        const int64_t q = q0 + 4 <= Q ? q0 : Q - 4;
        VecF best;
        VecI code;
        pool4(r0, r1, q, best, code);
        store4(yr + q, best);
        if constexpr (kIndices) {
          for (int j = 0; j < 4; ++j) {
            ir[q + j] = base + 2 * (q + j) + (code[j] >> 1) * W + (code[j] & 1);
          }
        }
      }
      for (int64_t q = 0; q < Q && Q < 4; ++q) {  // short rows, one window at a time
        const float a = relu(r0[2 * q]), b = relu(r0[2 * q + 1]);
        const float c = relu(r1[2 * q]), d = relu(r1[2 * q + 1]);
        float best = a;
        int64_t k = 0;
        if (b > best || b != b) best = b, k = 1;
        if (c > best || c != c) best = c, k = W;
        if (d > best || d != d) best = d, k = W + 1;
        yr[q] = best;
        if constexpr (kIndices) ir[q] = base + 2 * q + k;
      }
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
  split_blocks(planes, planes * H * W, [=](int64_t p0, int64_t p1) {
    if (indices != nullptr) {
      pool_planes<true>(y, indices, x, H, W, p0, p1);
    } else {
      pool_planes<false>(y, nullptr, x, H, W, p0, p1);
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
