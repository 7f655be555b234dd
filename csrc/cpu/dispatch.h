// Runtime SIMD dispatch: which instruction-set build of the hot kernel bodies runs
// (csrc/cpu/dispatch.cpp).
//
// CMakeLists.txt compiles every kernel-body file (csrc/cpu/*_kernels.cpp) once per ISA of
// FASTDL_ISAS below, into namespaces fastdl::cpu::baseline (x86-64 SSE2, no extra flags),
// fastdl::cpu::avx2 (-mavx2 -mfma) and fastdl::cpu::avx512 (-mavx512f/vl/bw/dq -mfma). Each build
// of a family exports a table of function pointers (declared with FASTDL_PER_ISA); the family's
// compiled-once file picks the active ISA's table on every call with FASTDL_ACTIVE (one relaxed
// atomic load), or indexes FASTDL_ISA_TABLE itself.
// The active ISA is chosen once, on first use: the best one the processor supports, or the one
// the environment variable FASTDL_SIMD (baseline | avx2 | avx512) names. A request the processor
// cannot run falls back to the best supported ISA and simd_note() says why. Tests switch it with
// set_simd_level (supported ISAs only).
// Tests: tests/test_kernels_simd.py.
#pragma once

#include <utility>
#include <vector>

namespace fastdl::cpu {

// The instruction-set builds, best last: X(name, arg) for each. The one list: the enum, the
// names, FASTDL_PER_ISA, FASTDL_ISA_TABLE and CMakeLists.txt (which reads this line) use it.
#define FASTDL_ISAS(X, arg) X(baseline, arg) X(avx2, arg) X(avx512, arg)

#define FASTDL_ISA_ENUM_(isa, _) isa,
#define FASTDL_ISA_ONE_(isa, _) +1
enum class Isa : int { FASTDL_ISAS(FASTDL_ISA_ENUM_, ) };
constexpr int kIsaCount = 0 FASTDL_ISAS(FASTDL_ISA_ONE_, );

// "baseline", "avx2" or "avx512".
const char* isa_name(Isa isa);

// The ISA whose kernel bodies run now (chosen on the first call, see above).
Isa simd_level();

// Whether this processor (and its OS) can run the kernels built for `isa`.
bool isa_supported(Isa isa);

// What the build of `isa` really is: its instruction set on x86, "portable C++" elsewhere.
const char* isa_build(Isa isa);

// The processor features the builds depend on, as (name, present); empty off x86. The one
// place that detects CPU features (dispatch, fastdl info and the tests read it).
std::vector<std::pair<const char*, bool>> cpu_features();

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
#define FASTDL_DECLARE_IN_(isa, decl) \
  namespace fastdl::cpu::isa {        \
  decl;                               \
  }
#define FASTDL_PER_ISA(decl) FASTDL_ISAS(FASTDL_DECLARE_IN_, decl)

// A family's dispatch table (PyTorch's DispatchStub, as data): each ISA build's
// `const T& getter()` (declared with FASTDL_PER_ISA), indexed by Isa.
//   static const FooKernels* const table[kIsaCount] = FASTDL_ISA_TABLE(foo_kernels);
//   const FooKernels& k = for_active_isa(table);
#define FASTDL_ISA_ENTRY_(isa, getter) &::fastdl::cpu::isa::getter(),
#define FASTDL_ISA_TABLE(getter) {FASTDL_ISAS(FASTDL_ISA_ENTRY_, getter)}

// The active ISA's entry of the family whose builds export `const T& getter()`.
#define FASTDL_ACTIVE(T, getter)                                                  \
  ([]() -> const T& {                                                             \
    static const T* const table[::fastdl::cpu::kIsaCount] = FASTDL_ISA_TABLE(getter); \
    return ::fastdl::cpu::for_active_isa(table);                                  \
  }())
