// embedding: the weight gradient of a lookup, float32 -- the threaded entry point (the body is
// embedding_kernels.cpp, one build per ISA).
//
// Shapes: dy (M, D), indices (M,) int64, dw (V, D).
// Each thread zeroes and then sums one block of dw's columns (whole 64-byte lines), reading all
// the indices in order: no atomics and no barrier, and each element's sum runs in index order
// whatever the thread count, so results are the same bits on any count.
// Tests: tests/test_kernels_embedding.py. Bench: python -m bench --match recurrent.
#include "cpu/embedding.h"

#include <algorithm>
#include <atomic>

#include "cpu/parallel.h"  // split_blocks

namespace fastdl::cpu {

namespace {

// Column blocks are multiples of 16 floats (a 64-byte line), so threads share no line of a row.
constexpr int64_t kColumnAlign = 16;

const EmbeddingKernels& active() { return FASTDL_ACTIVE(EmbeddingKernels, embedding_kernels); }

}  // namespace

// dy is (M,D), indices (M,), dw (V,D).
int64_t embedding_backward(float* dw, const float* dy, const int64_t* indices, int64_t M,
                           int64_t V, int64_t D, int64_t padding_idx) {
  const auto f = active().backward;
  const int64_t blocks = (D + kColumnAlign - 1) / kColumnAlign;
  // Every thread reads all the indices, so each finds the same first bad one (if any).
  std::atomic<int64_t> first_bad{-1};
  split_blocks(blocks, (M + V) * D, [&](int64_t b0, int64_t b1) {
    const int64_t bad = f(dw, dy, indices, M, V, D, padding_idx, std::min(D, b0 * kColumnAlign),
                          std::min(D, b1 * kColumnAlign));
    if (bad >= 0) first_bad.store(bad, std::memory_order_relaxed);
  });
  return first_bad.load(std::memory_order_relaxed);
}

}  // namespace fastdl::cpu
