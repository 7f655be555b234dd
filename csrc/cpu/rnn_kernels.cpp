// rnn bodies, compiled once per ISA (see dispatch.h): the pointwise part of an LSTM and a GRU
// time step, forward and backward, float32, for rows [n0, n1) (rnn.cpp splits rows across
// threads). The formulas are rnn.h's.
//
// Shapes: N rows, H hidden units; gates (N, G*H) in PyTorch's order, each gate a run of H floats
// in the row, so the G runs of a row are read side by side in kW-lane vectors; the tail
// (H % kW) goes through the same vector code by masked loads and stores. One pass over memory:
// every input is read once and every output written once. sigmoid and tanh are simd_math.h's.
// Tests: tests/test_kernels_rnn.py. Bench: python -m bench --match recurrent.
#include "cpu/rnn.h"
#include "cpu/simd.h"
#include "cpu/simd_math.h"

namespace fastdl::cpu::FASTDL_ISA {

namespace {

inline vf load_n(const float* p, int lanes) { return lanes == kW ? load(p) : load_first(p, lanes); }

inline void store_n(float* p, vf v, int lanes) {
  if (lanes == kW) {
    store(p, v);
  } else {
    store_first(p, v, lanes);
  }
}

// Runs f(j, lanes) for j = 0, kW, 2 kW, ... < H: full vectors, then one masked tail.
template <typename F>
inline void over_lanes(int64_t H, F f) {
  int64_t j = 0;
  for (; j + kW <= H; j += kW) f(j, kW);
  if (j < H) f(j, static_cast<int>(H - j));
}

// gi[q H + j] + gh[q H + j] + b[q H + j] (b may be null) for the lanes at j of gate q.
inline vf gate_sum(const float* gi, const float* gh, const float* b, int64_t q, int64_t H,
                   int64_t j, int lanes) {
  const int64_t at = q * H + j;
  const vf s = load_n(gi + at, lanes) + load_n(gh + at, lanes);
  return b ? s + load_n(b + at, lanes) : s;
}

// gi, gh, act are (N,4H); b (4H,) or null; c, h, c_new, tanh_c are (N,H); rows [n0, n1).
void lstm_forward(float* h, float* c_new, float* act, float* tanh_c, const float* gi,
                  const float* gh, const float* b, const float* c, int64_t H, int64_t n0,
                  int64_t n1) {
  for (int64_t n = n0; n < n1; ++n) {
    const float* gin = gi + n * 4 * H;
    const float* ghn = gh + n * 4 * H;
    float* a = act + n * 4 * H;
    const int64_t row = n * H;
    over_lanes(H, [&](int64_t j, int lanes) {
      const vf i = sigmoid_ps(gate_sum(gin, ghn, b, 0, H, j, lanes));
      const vf f = sigmoid_ps(gate_sum(gin, ghn, b, 1, H, j, lanes));
      const vf g = tanh_ps(gate_sum(gin, ghn, b, 2, H, j, lanes));
      const vf o = sigmoid_ps(gate_sum(gin, ghn, b, 3, H, j, lanes));
      const vf cn = f * load_n(c + row + j, lanes) + i * g;
      const vf tc = tanh_ps(cn);
      store_n(a + j, i, lanes);
      store_n(a + H + j, f, lanes);
      store_n(a + 2 * H + j, g, lanes);
      store_n(a + 3 * H + j, o, lanes);
      store_n(c_new + row + j, cn, lanes);
      store_n(tanh_c + row + j, tc, lanes);
      store_n(h + row + j, o * tc, lanes);
    });
  }
}

// act, dgates are (N,4H); tanh_c, c, dh, dc (or null), dc_prev are (N,H); rows [n0, n1).
void lstm_backward(float* dgates, float* dc_prev, const float* act, const float* tanh_c,
                   const float* c, const float* dh, const float* dc, int64_t H, int64_t n0,
                   int64_t n1) {
  for (int64_t n = n0; n < n1; ++n) {
    const float* a = act + n * 4 * H;
    float* d = dgates + n * 4 * H;
    const int64_t row = n * H;
    over_lanes(H, [&](int64_t j, int lanes) {
      const vf i = load_n(a + j, lanes), f = load_n(a + H + j, lanes);
      const vf g = load_n(a + 2 * H + j, lanes), o = load_n(a + 3 * H + j, lanes);
      const vf tc = load_n(tanh_c + row + j, lanes), g_h = load_n(dh + row + j, lanes);
      vf dct = g_h * o * (1.0f - tc * tc);
      if (dc) dct = load_n(dc + row + j, lanes) + dct;
      store_n(d + j, dct * g * i * (1.0f - i), lanes);
      store_n(d + H + j, dct * load_n(c + row + j, lanes) * f * (1.0f - f), lanes);
      store_n(d + 2 * H + j, dct * i * (1.0f - g * g), lanes);
      store_n(d + 3 * H + j, g_h * tc * o * (1.0f - o), lanes);
      store_n(dc_prev + row + j, dct * f, lanes);
    });
  }
}

// gi, gh are (N,3H); b (3H,) or null; act (N,4H); h, h_new (N,H); rows [n0, n1).
// Opens as lstm_forward does (row pointers, gate sums); the shared steps are already
// over_lanes, gate_sum and load_n/store_n, and the rest is each cell's own formulas.
void gru_forward(float* h_new, float* act, const float* gi, const float* gh, const float* b,
                 const float* h, int64_t H, int64_t n0, int64_t n1) {
  for (int64_t n = n0; n < n1; ++n) {
    const float* gin = gi + n * 3 * H;
    const float* ghn = gh + n * 3 * H;
    float* a = act + n * 4 * H;
    const int64_t row = n * H;
    over_lanes(H, [&](int64_t j, int lanes) {
      const vf r = sigmoid_ps(gate_sum(gin, ghn, b, 0, H, j, lanes));
      const vf z = sigmoid_ps(gate_sum(gin, ghn, b, 1, H, j, lanes));
      vf hn = load_n(ghn + 2 * H + j, lanes);
      if (b) hn = hn + load_n(b + 2 * H + j, lanes);
      // NOTE: PyTorch's GRU applies r to (W_hn h + b_hn), not to h before the matmul.
      const vf nv = tanh_ps(load_n(gin + 2 * H + j, lanes) + r * hn);
      store_n(a + j, r, lanes);
      store_n(a + H + j, z, lanes);
      store_n(a + 2 * H + j, nv, lanes);
      store_n(a + 3 * H + j, hn, lanes);
      store_n(h_new + row + j, nv + z * (load_n(h + row + j, lanes) - nv), lanes);
    });
  }
}

// act (N,4H); h, dh, dh_prev (N,H); dgi, dgh (N,3H); rows [n0, n1).
void gru_backward(float* dgi, float* dgh, float* dh_prev, const float* act, const float* h,
                  const float* dh, int64_t H, int64_t n0, int64_t n1) {
  for (int64_t n = n0; n < n1; ++n) {
    const float* a = act + n * 4 * H;
    float* di = dgi + n * 3 * H;
    float* dg = dgh + n * 3 * H;
    const int64_t row = n * H;
    over_lanes(H, [&](int64_t j, int lanes) {
      const vf r = load_n(a + j, lanes), z = load_n(a + H + j, lanes);
      const vf nv = load_n(a + 2 * H + j, lanes), hn = load_n(a + 3 * H + j, lanes);
      const vf g_h = load_n(dh + row + j, lanes);
      const vf dn = g_h * (1.0f - z) * (1.0f - nv * nv);
      const vf dr = dn * hn * r * (1.0f - r);
      const vf dz = g_h * (load_n(h + row + j, lanes) - nv) * z * (1.0f - z);
      store_n(di + j, dr, lanes);
      store_n(di + H + j, dz, lanes);
      store_n(di + 2 * H + j, dn, lanes);
      store_n(dg + j, dr, lanes);
      store_n(dg + H + j, dz, lanes);
      store_n(dg + 2 * H + j, dn * r, lanes);
      store_n(dh_prev + row + j, g_h * z, lanes);
    });
  }
}

constexpr RnnKernels kRnn = {lstm_forward, lstm_backward, gru_forward, gru_backward};

}  // namespace

const RnnKernels& rnn_kernels() { return kRnn; }

}  // namespace fastdl::cpu::FASTDL_ISA
