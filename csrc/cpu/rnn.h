// rnn kernels (csrc/cpu/rnn.cpp): the pointwise part of one LSTM or GRU time step, fused, float32.
//
// N rows (batch), H hidden units. gi is the input projection x @ W_ih^T + b_ih and gh the hidden
// one h @ W_hh^T (without its bias b_hh, which the forward adds), both (N, G*H) in PyTorch's gate
// order: LSTM G = 4 (i, f, g, o), GRU G = 3 (r, z, n). b is b_hh (G*H,) or null.
#pragma once
#include <cstdint>

#include "cpu/dispatch.h"

namespace fastdl::cpu {

// gi, gh, act are (N,4H); b (4H,) or null; c, h, c_new, tanh_c are (N,H).
// gates = gi + gh + b; act = (sigmoid i, sigmoid f, tanh g, sigmoid o);
// c_new = f c + i g; tanh_c = tanh(c_new); h = o tanh_c.
void lstm_cell_forward(float* h, float* c_new, float* act, float* tanh_c, const float* gi,
                       const float* gh, const float* b, const float* c, int64_t N, int64_t H);

// act, dgates are (N,4H); tanh_c, c, dh, dc (or null: zero), dc_prev are (N,H).
// dc_t = dc + dh o (1 - tanh_c^2); dgates = (dc_t g i (1 - i), dc_t c f (1 - f),
// dc_t i (1 - g^2), dh tanh_c o (1 - o)); dc_prev = dc_t f.
void lstm_cell_backward(float* dgates, float* dc_prev, const float* act, const float* tanh_c,
                        const float* c, const float* dh, const float* dc, int64_t N, int64_t H);

// gi, gh are (N,3H); b (3H,) or null; act (N,4H); h, h_new (N,H).
// r, z = sigmoid(gi_rz + gh_rz + b_rz); hn = gh_n + b_n; n = tanh(gi_n + r hn);
// h_new = n + z (h - n); act = (r, z, n, hn).
void gru_cell_forward(float* h_new, float* act, const float* gi, const float* gh, const float* b,
                      const float* h, int64_t N, int64_t H);

// act (N,4H); h, dh, dh_prev (N,H); dgi, dgh (N,3H).
// dn = dh (1 - z) (1 - n^2); dr = dn hn r (1 - r); dz = dh (h - n) z (1 - z);
// dgi = (dr, dz, dn); dgh = (dr, dz, dn r); dh_prev = dh z (h's gradient other than through gh).
void gru_cell_backward(float* dgi, float* dgh, float* dh_prev, const float* act, const float* h,
                       const float* dh, int64_t N, int64_t H);

// One ISA build's bodies (rnn_kernels.cpp): rows [n0, n1) on the calling thread.
struct RnnKernels {
  void (*lstm_forward)(float* h, float* c_new, float* act, float* tanh_c, const float* gi,
                       const float* gh, const float* b, const float* c, int64_t H, int64_t n0,
                       int64_t n1);
  void (*lstm_backward)(float* dgates, float* dc_prev, const float* act, const float* tanh_c,
                        const float* c, const float* dh, const float* dc, int64_t H, int64_t n0,
                        int64_t n1);
  void (*gru_forward)(float* h_new, float* act, const float* gi, const float* gh, const float* b,
                      const float* h, int64_t H, int64_t n0, int64_t n1);
  void (*gru_backward)(float* dgi, float* dgh, float* dh_prev, const float* act, const float* h,
                       const float* dh, int64_t H, int64_t n0, int64_t n1);
};

}  // namespace fastdl::cpu

FASTDL_PER_ISA(const RnnKernels& rnn_kernels())
