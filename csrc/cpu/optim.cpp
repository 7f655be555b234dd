// optim: fused, in-place SGD (momentum, dampening, Nesterov, weight decay, maximize),
// Adam / AdamW (AMSGrad), RMSprop (centered, momentum), Adagrad and NAdam steps over all
// parameters of an optimizer in one call, float32, with PyTorch's semantics (see
// python/fastdl/backends/INTERFACE.md).
//
// Shapes: `count` tensors; tensor j is a flat run of sizes[j] floats in params[j], grads[j] and
// the state buffers. Variants: SGD is instantiated per (weight decay, momentum mode, Nesterov),
// so the element loop carries no branches; Adam per (coupled weight decay, AMSGrad); RMSprop
// per (weight decay, centered, momentum); Adagrad per (weight decay); NAdam per (coupled decay). All tensors form
// one flattened index space that is cut into one contiguous slice per thread, so a call is
// one parallel region however many tensors there are, and each element is read and written
// once (Adam: 16 bytes read, 12 written per element, the floor). Adam's element loop is
// compiled per ISA (optim_kernels.cpp: its square root and division are the cost, four lanes
// at a time in the baseline build); the others are compiled once here.
// Tests: tests/test_kernels_optim.py, tests/test_kernels_optim_extra.py. Bench: bench/kernels.py (adam, G8).
#include "cpu/optim.h"

#include <algorithm>
#include <cmath>

#include "cpu/parallel.h"

namespace fastdl::cpu {

namespace {

// Slice boundaries fall on multiples of this many floats of the flattened space (64 bytes), so
// few slices end mid-vector; tensors are not aligned to it, so this is a tidiness, not a rule.
constexpr int64_t kSliceAlign = 16;

// Calls body(j, begin, end) for the elements [begin, end) of tensor j, over every tensor, with
// the flattened index space split across threads.
template <typename Body>
void for_each_slice(const int64_t* sizes, int64_t count, const Body& body) {
  int64_t total = 0;
  for (int64_t j = 0; j < count; ++j) total += sizes[j];
  const int64_t parts = total >= kParallelMin ? std::max(1, get_num_threads()) : 1;
#pragma omp parallel for schedule(static) num_threads(get_num_threads()) if (parts > 1)
  for (int64_t part = 0; part < parts; ++part) {
    const int64_t share = total / parts;
    const int64_t lo = part * share / kSliceAlign * kSliceAlign;
    const int64_t hi = part + 1 == parts ? total : (part + 1) * share / kSliceAlign * kSliceAlign;
    int64_t offset = 0;  // where tensor j starts in the flattened space
    for (int64_t j = 0; j < count && offset < hi; offset += sizes[j], ++j) {
      const int64_t begin = std::max(lo, offset), end = std::min(hi, offset + sizes[j]);
      if (begin < end) body(j, begin - offset, end - offset);
    }
  }
}

enum class Momentum { kNone, kFirst, kRunning };

// p, grad, buf are (n,); buf is unused when kMomentum is kNone.
template <bool kDecay, Momentum kMomentum, bool kNesterov>
void sgd_slice(float* p, const float* grad, float* buf, int64_t n, float sign,
               const SgdOptions& o) {
  const float lr = o.lr, wd = o.weight_decay, mu = o.momentum, damp = 1.0f - o.dampening;
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    float g = sign * grad[i];
    if constexpr (kDecay) g += wd * p[i];
    if constexpr (kMomentum != Momentum::kNone) {
      float b;
      if constexpr (kMomentum == Momentum::kFirst) {
        b = g;
      } else {
        b = mu * buf[i] + damp * g;
      }
      buf[i] = b;
      g = kNesterov ? g + mu * b : b;
    }
    p[i] -= lr * g;
  }
}

template <bool kDecay, Momentum kMomentum, bool kNesterov>
void sgd_all(float* const* params, const float* const* grads, float* const* bufs,
             const int64_t* sizes, int64_t count, const SgdOptions& o) {
  const float sign = o.maximize ? -1.0f : 1.0f;
  for_each_slice(sizes, count, [&](int64_t j, int64_t begin, int64_t end) {
    float* buf = kMomentum == Momentum::kNone ? nullptr : bufs[j] + begin;
    sgd_slice<kDecay, kMomentum, kNesterov>(params[j] + begin, grads[j] + begin, buf,
                                            end - begin, sign, o);
  });
}

template <bool kDecay>
void sgd_dispatch_momentum(float* const* params, const float* const* grads, float* const* bufs,
                           const int64_t* sizes, int64_t count, const SgdOptions& o) {
  if (o.momentum == 0.0f) {
    sgd_all<kDecay, Momentum::kNone, false>(params, grads, bufs, sizes, count, o);
  } else if (o.first_step) {
    if (o.nesterov) {
      sgd_all<kDecay, Momentum::kFirst, true>(params, grads, bufs, sizes, count, o);
    } else {
      sgd_all<kDecay, Momentum::kFirst, false>(params, grads, bufs, sizes, count, o);
    }
  } else if (o.nesterov) {
    sgd_all<kDecay, Momentum::kRunning, true>(params, grads, bufs, sizes, count, o);
  } else {
    sgd_all<kDecay, Momentum::kRunning, false>(params, grads, bufs, sizes, count, o);
  }
}

// p, grad, sq, gavg, buf are (n,); gavg is unused unless kCentered, buf unless kMomentum.
template <bool kDecay, bool kCentered, bool kMomentum>
void rmsprop_slice(float* p, const float* grad, float* sq, float* gavg, float* buf, int64_t n,
                   float sign, const RmspropOptions& o) {
  const float lr = o.lr, wd = o.weight_decay, alpha = o.alpha, one_minus_alpha = 1.0f - o.alpha;
  const float eps = o.eps, mu = o.momentum;
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    float g = sign * grad[i];
    if constexpr (kDecay) g += wd * p[i];
    const float s = alpha * sq[i] + one_minus_alpha * g * g;
    sq[i] = s;
    float avg;
    if constexpr (kCentered) {
      const float ga = gavg[i] + one_minus_alpha * (g - gavg[i]);  // PyTorch's lerp
      gavg[i] = ga;
      avg = std::sqrt(s - ga * ga) + eps;
    } else {
      avg = std::sqrt(s) + eps;
    }
    if constexpr (kMomentum) {
      const float b = mu * buf[i] + g / avg;
      buf[i] = b;
      p[i] -= lr * b;
    } else {
      p[i] -= lr * (g / avg);
    }
  }
}

struct AdagradConstants {
  float sign, wd, clr, eps;
};

// p, grad, s are (n,).
template <bool kDecay>
void adagrad_slice(float* p, const float* grad, float* s, int64_t n, const AdagradConstants& k) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    float g = k.sign * grad[i];
    if constexpr (kDecay) g += k.wd * p[i];
    const float si = s[i] + g * g;
    s[i] = si;
    p[i] -= k.clr * (g / (std::sqrt(si) + k.eps));
  }
}

struct NadamConstants {
  float sign, wd, decay, b1, one_minus_b1, b2, one_minus_b2, bc2, eps, coef_g, coef_m;
};

// The constants Adam and NAdam share, from either's options (the same fields), rounded to float.
template <class Constants, class Options>
void set_moment_constants(Constants& k, const Options& opt) {
  k.sign = opt.maximize ? -1.0f : 1.0f;
  k.wd = static_cast<float>(opt.weight_decay);
  k.decay = opt.decoupled ? static_cast<float>(1.0 - opt.lr * opt.weight_decay) : 1.0f;
  k.b1 = static_cast<float>(opt.beta1);
  k.one_minus_b1 = static_cast<float>(1.0 - opt.beta1);
  k.b2 = static_cast<float>(opt.beta2);
  k.one_minus_b2 = static_cast<float>(1.0 - opt.beta2);
  k.eps = static_cast<float>(opt.eps);
}

// p, grad, m, v are (n,). The shape of Adam's loop (optim_kernels.cpp), kept apart on purpose:
// that one is compiled per ISA, and an inline helper shared with this baseline file could be
// merged across the builds by the linker (see simd.h); the update differs too (two terms).
template <bool kCoupledDecay>
void nadam_slice(float* p, const float* grad, float* m, float* v, int64_t n,
                 const NadamConstants& k) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    float g = k.sign * grad[i];
    float pi = p[i];
    if constexpr (kCoupledDecay) g += k.wd * pi;
    pi *= k.decay;  // 1 - lr * weight_decay when decoupled, exactly 1 otherwise
    const float mi = k.b1 * m[i] + k.one_minus_b1 * g;
    const float vi = k.b2 * v[i] + k.one_minus_b2 * g * g;
    m[i] = mi;
    v[i] = vi;
    const float denom = std::sqrt(vi / k.bc2) + k.eps;
    p[i] = pi - k.coef_g * (g / denom) - k.coef_m * (mi / denom);
  }
}

template <bool kDecay, bool kCentered, bool kMomentum>
void rmsprop_all(float* const* params, const float* const* grads, float* const* square_avgs,
                 float* const* grad_avgs, float* const* bufs, const int64_t* sizes,
                 int64_t count, const RmspropOptions& o) {
  const float sign = o.maximize ? -1.0f : 1.0f;
  for_each_slice(sizes, count, [&](int64_t j, int64_t begin, int64_t end) {
    float* gavg = kCentered ? grad_avgs[j] + begin : nullptr;
    float* buf = kMomentum ? bufs[j] + begin : nullptr;
    rmsprop_slice<kDecay, kCentered, kMomentum>(params[j] + begin, grads[j] + begin,
                                                square_avgs[j] + begin, gavg, buf, end - begin,
                                                sign, o);
  });
}

template <bool kDecay, bool kCentered>
void rmsprop_dispatch_momentum(float* const* params, const float* const* grads,
                               float* const* square_avgs, float* const* grad_avgs,
                               float* const* bufs, const int64_t* sizes, int64_t count,
                               const RmspropOptions& o) {
  if (o.momentum > 0.0f) {
    rmsprop_all<kDecay, kCentered, true>(params, grads, square_avgs, grad_avgs, bufs, sizes,
                                         count, o);
  } else {
    rmsprop_all<kDecay, kCentered, false>(params, grads, square_avgs, grad_avgs, bufs, sizes,
                                          count, o);
  }
}

template <bool kDecay>
void rmsprop_dispatch_centered(float* const* params, const float* const* grads,
                               float* const* square_avgs, float* const* grad_avgs,
                               float* const* bufs, const int64_t* sizes, int64_t count,
                               const RmspropOptions& o) {
  if (o.centered) {
    rmsprop_dispatch_momentum<kDecay, true>(params, grads, square_avgs, grad_avgs, bufs, sizes,
                                            count, o);
  } else {
    rmsprop_dispatch_momentum<kDecay, false>(params, grads, square_avgs, grad_avgs, bufs, sizes,
                                             count, o);
  }
}

}  // namespace

AdamConstants adam_constants(const AdamOptions& opt) {
  // Bias corrections in double: beta^step underflows gracefully and 1 - beta^step keeps its
  // digits for small steps.
  const double bc1 = 1.0 - std::pow(opt.beta1, static_cast<double>(opt.step));
  const double bc2 = 1.0 - std::pow(opt.beta2, static_cast<double>(opt.step));
  AdamConstants k;
  set_moment_constants(k, opt);
  k.step_size = static_cast<float>(opt.lr / bc1);
  k.inv_bc2_sqrt = static_cast<float>(1.0 / std::sqrt(bc2));
  return k;
}

// params[j], grads[j], momentum_buffers[j] are (sizes[j],).
void sgd_step(float* const* params, const float* const* grads, float* const* momentum_buffers,
              const int64_t* sizes, int64_t count, const SgdOptions& opt) {
  // NOTE: weight_decay == 0 skips the term entirely (as PyTorch does), so an infinite
  // parameter does not turn into NaN through 0 * inf.
  if (opt.weight_decay != 0.0f) {
    sgd_dispatch_momentum<true>(params, grads, momentum_buffers, sizes, count, opt);
  } else {
    sgd_dispatch_momentum<false>(params, grads, momentum_buffers, sizes, count, opt);
  }
}

// params[j], grads[j], exp_avgs[j], exp_avg_sqs[j] are (sizes[j],).
// max_exp_avg_sqs[j] too when AMSGrad (else null).
void adam_step(float* const* params, const float* const* grads, float* const* exp_avgs,
               float* const* exp_avg_sqs, float* const* max_exp_avg_sqs, const int64_t* sizes,
               int64_t count, const AdamOptions& opt) {
  const AdamConstants k = adam_constants(opt);
  const bool coupled = !opt.decoupled && opt.weight_decay != 0.0;
  const OptimKernels& kernels = FASTDL_ACTIVE(OptimKernels, optim_kernels);
  for_each_slice(sizes, count, [&](int64_t j, int64_t begin, int64_t end) {
    float* p = params[j] + begin;
    const float* g = grads[j] + begin;
    float* m = exp_avgs[j] + begin;
    float* v = exp_avg_sqs[j] + begin;
    const int64_t n = end - begin;
    const bool amsgrad = max_exp_avg_sqs != nullptr;
    kernels.adam_slice[coupled][amsgrad](p, g, m, v, amsgrad ? max_exp_avg_sqs[j] + begin : nullptr,
                                          n, k);
  });
}

// params[j], grads[j], square_avgs[j] (and grad_avgs[j], momentum_buffers[j] when used) are
// (sizes[j],).
void rmsprop_step(float* const* params, const float* const* grads, float* const* square_avgs,
                  float* const* grad_avgs, float* const* momentum_buffers, const int64_t* sizes,
                  int64_t count, const RmspropOptions& opt) {
  if (opt.weight_decay != 0.0f) {
    rmsprop_dispatch_centered<true>(params, grads, square_avgs, grad_avgs, momentum_buffers,
                                    sizes, count, opt);
  } else {
    rmsprop_dispatch_centered<false>(params, grads, square_avgs, grad_avgs, momentum_buffers,
                                     sizes, count, opt);
  }
}

// params[j], grads[j], state_sums[j] are (sizes[j],).
void adagrad_step(float* const* params, const float* const* grads, float* const* state_sums,
                  const int64_t* sizes, int64_t count, const AdagradOptions& opt) {
  AdagradConstants k;
  k.sign = opt.maximize ? -1.0f : 1.0f;
  k.wd = static_cast<float>(opt.weight_decay);
  k.clr = static_cast<float>(opt.lr / (1.0 + static_cast<double>(opt.step - 1) * opt.lr_decay));
  k.eps = static_cast<float>(opt.eps);
  const bool decay = opt.weight_decay != 0.0;
  for_each_slice(sizes, count, [&](int64_t j, int64_t begin, int64_t end) {
    float* p = params[j] + begin;
    const float* g = grads[j] + begin;
    float* s = state_sums[j] + begin;
    if (decay) {
      adagrad_slice<true>(p, g, s, end - begin, k);
    } else {
      adagrad_slice<false>(p, g, s, end - begin, k);
    }
  });
}

// params[j], grads[j], exp_avgs[j], exp_avg_sqs[j] are (sizes[j],).
void nadam_step(float* const* params, const float* const* grads, float* const* exp_avgs,
                float* const* exp_avg_sqs, const int64_t* sizes, int64_t count,
                const NadamOptions& opt) {
  // Step-dependent scalars in double, as PyTorch computes them in Python floats.
  const double step = static_cast<double>(opt.step);
  const double mu = opt.beta1 * (1.0 - 0.5 * std::pow(0.96, step * opt.momentum_decay));
  const double mu_next =
      opt.beta1 * (1.0 - 0.5 * std::pow(0.96, (step + 1.0) * opt.momentum_decay));
  NadamConstants k;
  set_moment_constants(k, opt);
  k.bc2 = static_cast<float>(1.0 - std::pow(opt.beta2, step));
  k.coef_g = static_cast<float>(opt.lr * (1.0 - mu) / (1.0 - opt.mu_product));
  k.coef_m = static_cast<float>(opt.lr * mu_next / (1.0 - opt.mu_product * mu_next));
  const bool coupled = !opt.decoupled && opt.weight_decay != 0.0;
  for_each_slice(sizes, count, [&](int64_t j, int64_t begin, int64_t end) {
    float* p = params[j] + begin;
    const float* g = grads[j] + begin;
    float* m = exp_avgs[j] + begin;
    float* v = exp_avg_sqs[j] + begin;
    if (coupled) {
      nadam_slice<true>(p, g, m, v, end - begin, k);
    } else {
      nadam_slice<false>(p, g, m, v, end - begin, k);
    }
  });
}

}  // namespace fastdl::cpu
