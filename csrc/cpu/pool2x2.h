// 2x2 stride-2 max pooling bodies, compiled once per ISA (csrc/cpu/pool2x2_kernels.cpp; see
// dispatch.h), on the calling thread, planes [p0, p1) of H x W pooled to H / 2 x W / 2 (floor):
// maxpool2d's 2x2 path (maxpool2d.cpp, int64 indices), relu_maxpool2x2_forward's (fused.cpp),
// and the fused conv block's ReLU + pool and its backward (fused.h, one-byte codes). Every
// output keeps the first maximum in row-major window order, a NaN replacing it (maxpool2d.h:
// keep_max).
#pragma once
#include <cstdint>

#include "cpu/dispatch.h"

namespace fastdl::cpu {

struct Pool2x2Kernels {
  // y, and indices h * W + w of each maximum in its plane (int64).
  void (*maxpool_indices)(float* y, int64_t* indices, const float* x, int64_t H, int64_t W,
                          int64_t p0, int64_t p1);
  // y of the ReLU'd x, and indices as maxpool_indices.
  void (*relu_pool_indices)(float* y, int64_t* indices, const float* x, int64_t H, int64_t W,
                            int64_t p0, int64_t p1);
  // y of the ReLU'd x, and codes (the maximum's place in its window: 0, 1 top row, 2, 3 bottom
  // row, one byte each) unless codes is null.
  void (*relu_pool_codes)(float* y, uint8_t* codes, const float* x, int64_t H, int64_t W,
                          int64_t p0, int64_t p1);
  // dx: zero except dy at each code's place where y > 0; returns how many codes were above 3.
  int64_t (*relu_unpool_codes)(float* dx, const float* dy, const uint8_t* codes, const float* y,
                               int64_t H, int64_t W, int64_t p0, int64_t p1);
};

}  // namespace fastdl::cpu

FASTDL_PER_ISA(const Pool2x2Kernels& pool2x2_kernels())
