// embedding kernels (csrc/cpu/embedding.cpp): the weight gradient of an embedding lookup,
// float32.
//
// V rows in the table (num_embeddings), D columns (embedding_dim), M looked-up indices.
#pragma once
#include <cstdint>

#include "cpu/dispatch.h"

namespace fastdl::cpu {

// dy is (M,D), indices (M,) int64, dw (V,D). dw = zeros with row dy[m] added at row indices[m]
// for every m in order (repeated indices add up), except where indices[m] == padding_idx
// (-1: none), whose row stays zero. Returns -1, or the first m whose index is outside [0, V)
// (never written).
int64_t embedding_backward(float* dw, const float* dy, const int64_t* indices, int64_t M,
                           int64_t V, int64_t D, int64_t padding_idx);

// One ISA build's body (embedding_kernels.cpp): columns [d0, d1) of every row of dw, zeroed
// then summed, on the calling thread; the same return value.
struct EmbeddingKernels {
  int64_t (*backward)(float* dw, const float* dy, const int64_t* indices, int64_t M, int64_t V,
                      int64_t D, int64_t padding_idx, int64_t d0, int64_t d1);
};

}  // namespace fastdl::cpu

FASTDL_PER_ISA(const EmbeddingKernels& embedding_kernels())
