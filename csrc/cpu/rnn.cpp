// rnn: the pointwise part of an LSTM and a GRU time step, forward and backward, float32 -- the
// threaded entry points (the bodies are rnn_kernels.cpp, one build per ISA).
//
// Shapes: see rnn.h (N rows, H hidden units, gates (N, G*H)).
// Threads split rows above a size where threads pay for themselves; every element's math is the
// same on any split, so results do not depend on the thread count.
// Tests: tests/test_kernels_rnn.py. Bench: python -m bench --match recurrent.
#include "cpu/rnn.h"

#include <algorithm>

#include "cpu/parallel.h"  // split_blocks

namespace fastdl::cpu {

namespace {

const RnnKernels& active() { return FASTDL_ACTIVE(RnnKernels, rnn_kernels); }

}  // namespace

void lstm_cell_forward(float* h, float* c_new, float* act, float* tanh_c, const float* gi,
                       const float* gh, const float* b, const float* c, int64_t N, int64_t H) {
  const auto f = active().lstm_forward;
  split_blocks(N, N * 4 * H, [&](int64_t n0, int64_t n1) {
    f(h, c_new, act, tanh_c, gi, gh, b, c, H, n0, n1);
  });
}

void lstm_cell_backward(float* dgates, float* dc_prev, const float* act, const float* tanh_c,
                        const float* c, const float* dh, const float* dc, int64_t N, int64_t H) {
  const auto f = active().lstm_backward;
  split_blocks(N, N * 4 * H, [&](int64_t n0, int64_t n1) {
    f(dgates, dc_prev, act, tanh_c, c, dh, dc, H, n0, n1);
  });
}

void gru_cell_forward(float* h_new, float* act, const float* gi, const float* gh, const float* b,
                      const float* h, int64_t N, int64_t H) {
  const auto f = active().gru_forward;
  split_blocks(N, N * 3 * H, [&](int64_t n0, int64_t n1) { f(h_new, act, gi, gh, b, h, H, n0, n1); });
}

void gru_cell_backward(float* dgi, float* dgh, float* dh_prev, const float* act, const float* h,
                       const float* dh, int64_t N, int64_t H) {
  const auto f = active().gru_backward;
  split_blocks(N, N * 3 * H, [&](int64_t n0, int64_t n1) {
    f(dgi, dgh, dh_prev, act, h, dh, H, n0, n1);
  });
}

}  // namespace fastdl::cpu
