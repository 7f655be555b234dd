// optim element loops, compiled once per ISA (see dispatch.h): Adam / AdamW (AMSGrad) on one
// slice of one tensor, float32. optim.cpp derives the constants, splits the tensors into
// per-thread slices and calls the active ISA's table. The loop is the same source in every
// build; `omp simd` vectorises it 4 / 8 / 16 lanes wide, and its square root and division are
// what an Adam step costs once the data is in cache.
// (__builtin_sqrtf, not std::sqrt: no out-of-line copy compiled for one ISA can reach another
// build's callers, see simd.h.)
// Tests: tests/test_kernels_optim.py, tests/test_kernels_simd.py (every ISA).
// Bench: bench/kernels.py (adam, G8).
#include "cpu/optim.h"

namespace fastdl::cpu::FASTDL_ISA {

namespace {

// p, grad, m, v, vmax are (n,); vmax is unused unless kAmsgrad.
template <bool kCoupledDecay, bool kAmsgrad>
void adam_slice(float* p, const float* grad, float* m, float* v, float* vmax, int64_t n,
                const AdamConstants& k) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    float g = k.sign * grad[i];
    float pi = p[i];
    if constexpr (kCoupledDecay) g += k.wd * pi;
    pi *= k.decay;  // 1 - lr * weight_decay for AdamW, exactly 1 otherwise
    const float mi = k.b1 * m[i] + k.one_minus_b1 * g;
    const float vi = k.b2 * v[i] + k.one_minus_b2 * g * g;
    m[i] = mi;
    v[i] = vi;
    float vd = vi;
    if constexpr (kAmsgrad) {
      // A plain select on registers (std::max returns a reference and blocks vectorization);
      // NaN propagates from either side, as torch.maximum's.
      const float old = vmax[i];
      vd = (old < vi || vi != vi) ? vi : old;
      vmax[i] = vd;
    }
    p[i] = pi - k.step_size * (mi / (__builtin_sqrtf(vd) * k.inv_bc2_sqrt + k.eps));
  }
}

constexpr OptimKernels kOptim = {{{adam_slice<false, false>, adam_slice<false, true>},
                                  {adam_slice<true, false>, adam_slice<true, true>}}};

}  // namespace

const OptimKernels& optim_kernels() { return kOptim; }

}  // namespace fastdl::cpu::FASTDL_ISA
