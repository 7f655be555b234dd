// embedding bodies, compiled once per ISA (see dispatch.h): the scatter-add of dy's rows into
// dw's rows at the indices, float32, for the columns [d0, d1) (embedding.cpp splits columns
// across threads, so each dw element is zeroed and summed by one thread, in index order).
//
// Shapes: dy (M, D), indices (M,) int64, dw (V, D).
// Tests: tests/test_kernels_embedding.py. Bench: python -m bench --match recurrent.
#include "cpu/embedding.h"
#include "cpu/simd.h"

#include <cstring>

namespace fastdl::cpu::FASTDL_ISA {

namespace {

// dy is (M,D), indices (M,), dw (V,D); columns [d0, d1).
int64_t backward(float* dw, const float* dy, const int64_t* indices, int64_t M, int64_t V,
                 int64_t D, int64_t padding_idx, int64_t d0, int64_t d1) {
  const int64_t n = d1 - d0;
  if (n == D) {
    if (V * D > 0) std::memset(dw, 0, sizeof(float) * V * D);  // whole rows: one span
  } else {
    for (int64_t v = 0; v < V; ++v) std::memset(dw + v * D + d0, 0, sizeof(float) * n);
  }
  for (int64_t m = 0; m < M; ++m) {
    const int64_t at = indices[m];
    // NOTE: indices come from Python; one outside the table is reported, never written.
    if (static_cast<uint64_t>(at) >= static_cast<uint64_t>(V)) return m;
    if (at == padding_idx) continue;
    float* __restrict out = dw + at * D + d0;
    const float* __restrict g = dy + m * D + d0;
    int64_t j = 0;
    for (; j + kW <= n; j += kW) store(out + j, load(out + j) + load(g + j));
    if (j < n) {
      const int rest = static_cast<int>(n - j);
      store_first(out + j, load_first(out + j, rest) + load_first(g + j, rest), rest);
    }
  }
  return -1;
}

constexpr EmbeddingKernels kEmbedding = {backward};

}  // namespace

const EmbeddingKernels& embedding_kernels() { return kEmbedding; }

}  // namespace fastdl::cpu::FASTDL_ISA
