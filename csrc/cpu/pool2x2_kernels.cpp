// 2x2 stride-2 max pooling bodies, compiled once per ISA (see dispatch.h; the table in
// pool2x2.h), float32, on the calling thread: maxpool2d's 2x2 path with int64 indices, and the
// fused conv block's ReLU + pooling with the argmax kept as a one-byte code (its place in the
// window) and the backward that rebuilds the ReLU's input gradient from the codes.
// maxpool2d.cpp and fused.cpp split planes across threads and call the active ISA's table.
//
// Shapes: planes of H x W in, pooled planes of P x Q = H / 2 x W / 2 (floor) out.
// Variants: one source, kW = 4 / 8 / 16 lanes. A step pools kW outputs of one pooled row: it
// reads 2 kW columns of each of the window's two rows and splits them into even and odd columns
// (__builtin_shuffle: one two-source permute per vector on AVX-512), so the four candidates of
// every window sit in the same lane of four vectors. The last step of a row uses masked loads
// and stores (pooled CNN rows are 7 to 14 outputs), so every output gets the same arithmetic.
// Rules (maxpool2d.h's keep_max, fused.cpp's relu): ReLU keeps NaN; in row-major order a later
// candidate replaces the max when greater or NaN, so ties keep the first.
// Tests: tests/test_kernels_fused.py and tests/test_kernels_maxpool2d.py, on every ISA.
#include "cpu/pool2x2.h"
#include "cpu/simd.h"

namespace fastdl::cpu::FASTDL_ISA {

namespace {

// Lanes 2i (even) and 2i + 1 (odd) of the 2 kW floats a:b.
inline vf evens(vf a, vf b) { return __builtin_shuffle(a, b, lane_index() * 2); }
inline vf odds(vf a, vf b) { return __builtin_shuffle(a, b, lane_index() * 2 + 1); }

// The 2 kW floats a[0], b[0], a[1], b[1], ...: first kW in lo, the rest in hi.
inline void interleave(vf a, vf b, vf& lo, vf& hi) {
  const vi i = lane_index();
  const vi pick = (i >> 1) + ((i & 1) * kW);  // a[i / 2] for even i, b[i / 2] for odd
  lo = __builtin_shuffle(a, b, pick);
  hi = __builtin_shuffle(a, b, pick + kW / 2);
}

// n floats (0 <= n <= 2 kW) from p as two vectors (zeros past n).
inline void load2(const float* p, int n, vf& lo, vf& hi) {
  if (n == 2 * kW) {
    lo = load(p), hi = load(p + kW);
  } else {
    lo = load_first(p, n < kW ? n : kW);
    hi = load_first(p + kW, n > kW ? n - kW : 0);
  }
}

inline void store2(float* p, int n, vf lo, vf hi) {
  if (n == 2 * kW) {
    store(p, lo), store(p + kW, hi);
  } else {
    store_first(p, lo, n < kW ? n : kW);
    if (n > kW) store_first(p + kW, hi, n - kW);
  }
}

// What a pooling pass records of each window's maximum.
enum class Argmax { none, codes, indices };

// One pooled row: y[q] (of relu(x) when kRelu) for q < Q from rows r0, r1, and the argmax as
// codes[q], or as indices[q] = base + 2q + its offset in the window (W apart between the rows).
template <bool kRelu, Argmax kArgmax>
void pool_row(float* y, uint8_t* codes, int64_t* indices, const float* r0, const float* r1,
              int64_t Q, int64_t W, int64_t base) {
  const auto act = [](vf v) { return kRelu ? relu_ps(v) : v; };
  for (int64_t q = 0; q < Q; q += kW) {
    const int n = static_cast<int>(min64(kW, Q - q));
    vf t0, t1, b0, b1;
    load2(r0 + 2 * q, 2 * n, t0, t1);
    load2(r1 + 2 * q, 2 * n, b0, b1);
    const vf a = act(evens(t0, t1)), b = act(odds(t0, t1));
    const vf c = act(evens(b0, b1)), d = act(odds(b0, b1));
    vi code;
    const vf best = window_max(a, b, c, d, code);
    if (n == kW) {
      store(y + q, best);
    } else {
      store_first(y + q, best, n);
    }
    if constexpr (kArgmax == Argmax::codes) store_bytes_first(codes + q, code, n);
    if constexpr (kArgmax == Argmax::indices) {
      // (the index fits 32 bits: the caller takes planes of under 2^31 elements only)
      const vi at = static_cast<int32_t>(base + 2 * q) + 2 * lane_index() + (code >> 1) *
                    static_cast<int32_t>(W) + (code & 1);
      store_int64_first(indices + q, at, n);
    }
  }
}

template <bool kRelu, Argmax kArgmax>
void pool_planes(float* y, uint8_t* codes, int64_t* indices, const float* x, int64_t H, int64_t W,
                 int64_t p0, int64_t p1) {
  const int64_t P = H / 2, Q = W / 2;
  for (int64_t pl = p0; pl < p1; ++pl) {
    for (int64_t p = 0; p < P; ++p) {
      const float* r0 = x + pl * H * W + 2 * p * W;
      const int64_t row = (pl * P + p) * Q;
      pool_row<kRelu, kArgmax>(y + row, codes + (codes != nullptr ? row : 0),
                               indices + (indices != nullptr ? row : 0), r0, r0 + W, Q, W,
                               2 * p * W);
    }
  }
}

void maxpool_indices(float* y, int64_t* indices, const float* x, int64_t H, int64_t W,
                     int64_t p0, int64_t p1) {
  pool_planes<false, Argmax::indices>(y, nullptr, indices, x, H, W, p0, p1);
}

void relu_pool_indices(float* y, int64_t* indices, const float* x, int64_t H, int64_t W,
                       int64_t p0, int64_t p1) {
  pool_planes<true, Argmax::indices>(y, nullptr, indices, x, H, W, p0, p1);
}

void relu_pool_codes(float* y, uint8_t* codes, const float* x, int64_t H, int64_t W, int64_t p0,
                     int64_t p1) {
  if (codes != nullptr) {
    pool_planes<true, Argmax::codes>(y, codes, nullptr, x, H, W, p0, p1);
  } else {
    pool_planes<true, Argmax::none>(y, nullptr, nullptr, x, H, W, p0, p1);
  }
}

// One pooled row's windows in rows r0, r1 of dx: dy[q] (where y[q] > 0) at the place codes[q]
// names, zeros elsewhere. Returns minus the count of codes above 3 (their windows get zeros).
int64_t unpool_row(float* r0, float* r1, const float* dy, const uint8_t* codes, const float* y,
                   int64_t Q) {
  vi bad = vi{};
  const vf zero = vf{};
  for (int64_t q = 0; q < Q; q += kW) {
    const int n = static_cast<int>(min64(kW, Q - q));
    const vf yv = n == kW ? load(y + q) : load_first(y + q, n);
    const vf g = select(yv > 0.0f, n == kW ? load(dy + q) : load_first(dy + q, n), zero);
    const vi c = load_bytes_first(codes + q, n);
    bad += c > 3;
    vf lo, hi;
    interleave(select(c == 0, g, zero), select(c == 1, g, zero), lo, hi);
    store2(r0 + 2 * q, 2 * n, lo, hi);
    interleave(select(c == 2, g, zero), select(c == 3, g, zero), lo, hi);
    store2(r1 + 2 * q, 2 * n, lo, hi);
  }
  int64_t total = 0;
  for (int i = 0; i < kW; ++i) total += bad[i];
  return total;
}

int64_t relu_unpool_codes(float* dx, const float* dy, const uint8_t* codes, const float* y,
                          int64_t H, int64_t W, int64_t p0, int64_t p1) {
  const int64_t P = H / 2, Q = W / 2;
  int64_t bad = 0;
  for (int64_t pl = p0; pl < p1; ++pl) {
    float* plane = dx + pl * H * W;
    for (int64_t p = 0; p < P; ++p) {
      float* r0 = plane + 2 * p * W;
      const int64_t row = (pl * P + p) * Q;
      bad -= unpool_row(r0, r0 + W, dy + row, codes + row, y + row, Q);
      if (W % 2 != 0) r0[W - 1] = r0[2 * W - 1] = 0.0f;  // the column no window reads
    }
    if (H % 2 != 0) std::memset(plane + (H - 1) * W, 0, sizeof(float) * W);  // and the row
  }
  return bad;
}

}  // namespace

const Pool2x2Kernels& pool2x2_kernels() {
  static const Pool2x2Kernels k{maxpool_indices, relu_pool_indices, relu_pool_codes,
                                relu_unpool_codes};
  return k;
}

}  // namespace fastdl::cpu::FASTDL_ISA
