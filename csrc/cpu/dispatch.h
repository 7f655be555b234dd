// Runtime SIMD dispatch: which instruction-set build of the hot kernel bodies runs
// (csrc/cpu/dispatch.cpp).
//
// CMakeLists.txt compiles every kernel-body file (csrc/cpu/*_kernels.cpp) three times, once per
// ISA, into namespaces fastdl::cpu::baseline (x86-64 SSE2, no extra flags), fastdl::cpu::avx2
// (-mavx2 -mfma) and fastdl::cpu::avx512 (-mavx512f/vl/bw/dq -mfma). Each build exports a table
// of function pointers; the compiled-once callers (gemm.cpp, conv2d.cpp, activations.cpp) pick
// the table of the active ISA on every call (one relaxed atomic load).
// The active ISA is chosen once, on first use: the best one the processor supports, or the one
// the environment variable FASTDL_SIMD (baseline | avx2 | avx512) names. A request the processor
// cannot run falls back to the best supported ISA and simd_note() says why. Tests switch it with
// set_simd_level (supported ISAs only).
// Tests: tests/test_kernels_simd.py.
#pragma once

namespace fastdl::cpu {

enum class Isa : int { baseline = 0, avx2 = 1, avx512 = 2 };
constexpr int kIsaCount = 3;

// "baseline", "avx2" or "avx512".
const char* isa_name(Isa isa);

// The ISA whose kernel bodies run now (chosen on the first call, see above).
Isa simd_level();

// Whether this processor (and its OS) can run the kernels built for `isa`.
bool isa_supported(Isa isa);

// Makes `isa` the active one; returns false (and changes nothing) when it is not supported.
// Meant for tests and benchmarks; do not call it while kernels run on other threads.
bool set_simd_level(Isa isa);

// Why the FASTDL_SIMD request was not honoured (unknown name, or an ISA the processor lacks);
// "" when it was honoured or not set.
const char* simd_note();

// The entry of `table` (indexed by Isa) for the active ISA.
template <typename T>
const T& for_active_isa(const T* const (&table)[kIsaCount]) {
  return *table[static_cast<int>(simd_level())];
}

}  // namespace fastdl::cpu

// Declares `decl` in each per-ISA namespace: FASTDL_PER_ISA(const Foo& foo_kernels()).
#define FASTDL_PER_ISA(decl)         \
  namespace fastdl::cpu::baseline { \
  decl;                             \
  }                                 \
  namespace fastdl::cpu::avx2 {     \
  decl;                             \
  }                                 \
  namespace fastdl::cpu::avx512 {   \
  decl;                             \
  }
