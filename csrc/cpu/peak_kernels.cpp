// The FMA peak loop, compiled once per ISA (see dispatch.h, peak.h): kChains accumulators in
// registers, each step one multiply-add on every one of them and no memory traffic. The chains
// are independent, so the loop runs at the FMA units' throughput: kChains >= latency x pipes
// (4 cycles x 2 pipes on Zen 4/5 and recent Intel cores) keeps every pipe busy, and 12 chains
// plus 2 operands fit in 16 registers (SSE2 and AVX2 as well as AVX-512). Without FMA (the
// baseline build) a step is a multiply and an add, still 2 flops per lane.
// acc = acc * a + b with a just under 1 converges to b / (1 - a), so no value overflows or
// turns denormal however long the loop runs.
// Tests: tests/test_kernels_simd.py. Bench: bench/system.py.
#include "cpu/peak.h"
#include "cpu/simd.h"

namespace fastdl::cpu::FASTDL_ISA {

namespace {

constexpr int kChains = 12;

double fma_loop(int64_t steps, float* sink) {
  vf acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = splat(static_cast<float>(i));
  const vf a = splat(0.999f), b = splat(1e-3f);
  for (int64_t s = 0; s < steps; ++s) {
#pragma GCC unroll 12
    for (int i = 0; i < kChains; ++i) acc[i] = fmadd(acc[i], a, b);
  }
  vf total = vf{};
  for (int i = 0; i < kChains; ++i) total += acc[i];
  *sink = reduce_add(total);
  return 2.0 * kW * kChains * static_cast<double>(steps);
}

#if defined(FASTDL_ISA_AVX512)
constexpr PeakKernels kPeak = {"avx512 fma, 16 lanes x 12 chains", fma_loop};
#elif defined(FASTDL_ISA_AVX2)
constexpr PeakKernels kPeak = {"avx2 fma, 8 lanes x 12 chains", fma_loop};
#else
constexpr PeakKernels kPeak = {"sse2 mul + add, 4 lanes x 12 chains", fma_loop};
#endif

}  // namespace

const PeakKernels& peak_kernels() { return kPeak; }

}  // namespace fastdl::cpu::FASTDL_ISA
