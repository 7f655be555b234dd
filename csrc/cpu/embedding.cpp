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

#include "cpu/kernels.h"  // get_num_threads

#ifdef _OPENMP
#include <omp.h>
#endif

namespace fastdl::cpu {

namespace {

// Below this many elements (dy's and dw's) a second thread costs more than it saves.
constexpr int64_t kParallelMin = 1 << 15;
// Column blocks are multiples of 16 floats (a 64-byte line), so threads share no line of a row.
constexpr int64_t kColumnAlign = 16;

const EmbeddingKernels& active() {
  static const EmbeddingKernels* const table[kIsaCount] = {
      &baseline::embedding_kernels(), &avx2::embedding_kernels(), &avx512::embedding_kernels()};
  return for_active_isa(table);
}

}  // namespace

// dy is (M,D), indices (M,), dw (V,D).
int64_t embedding_backward(float* dw, const float* dy, const int64_t* indices, int64_t M,
                           int64_t V, int64_t D, int64_t padding_idx) {
  const auto f = active().backward;
  const int64_t blocks = (D + kColumnAlign - 1) / kColumnAlign;
  const int64_t wanted = (M + V) * D >= kParallelMin ? std::max(1, get_num_threads()) : 1;
  const int threads = static_cast<int>(std::max<int64_t>(1, std::min(wanted, blocks)));
  if (threads == 1) return f(dw, dy, indices, M, V, D, padding_idx, 0, D);
  int64_t first_bad = M;  // min-reduced over threads; M means none
#pragma omp parallel num_threads(threads) reduction(min : first_bad)
  {
#ifdef _OPENMP
    const int t = omp_get_thread_num(), team = omp_get_num_threads();
#else
    const int t = 0, team = 1;
#endif
    const int64_t d0 = std::min(D, blocks * t / team * kColumnAlign);
    const int64_t d1 = std::min(D, blocks * (t + 1) / team * kColumnAlign);
    if (d0 < d1) {
      const int64_t bad = f(dw, dy, indices, M, V, D, padding_idx, d0, d1);
      if (bad >= 0) first_bad = std::min(first_bad, bad);
    }
  }
  return first_bad == M ? -1 : first_bad;
}

}  // namespace fastdl::cpu
