// The measured fp32 FMA peak (see peak.h): the active ISA's register-resident loop on nthreads
// threads at once, timed over the wall clock from the team's start to its last thread's end.
// Tests: tests/test_kernels_simd.py. Bench: bench/system.py.
#include "cpu/peak.h"

#include <algorithm>
#include <chrono>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace fastdl::cpu {

namespace {

const PeakKernels& active() { return FASTDL_ACTIVE(PeakKernels, peak_kernels); }

}  // namespace

double fma_peak_gflops(int64_t steps, int nthreads) {
  const PeakKernels& kernels = active();
  nthreads = std::max(1, nthreads);
  double flops = 0.0;
  float sink = 0.0f;
  const auto start = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(nthreads) reduction(+ : flops, sink)
  flops += kernels.fma_loop(steps, &sink);
  const std::chrono::duration<double> seconds = std::chrono::steady_clock::now() - start;
  static_cast<void>(sink);  // written by the loops only so that they cannot be optimised away
  return flops / std::max(seconds.count(), 1e-9) / 1e9;
}

const char* fma_peak_name() { return active().name; }

}  // namespace fastdl::cpu
