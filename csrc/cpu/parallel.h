// The kernels' threads: the process-wide count (parallel.cpp), splitting work across them, the
// parallel threshold, and the rounding and alignment helpers of block and workspace sizes (the
// per-ISA bodies use those through simd.h; only compiled-once callers start threads).
#pragma once
#include <algorithm>
#include <cstdint>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace fastdl::cpu {

// ---- threads (csrc/cpu/parallel.cpp) ----
// One process-wide count, read by every parallel region; set_num_threads clamps it to
// [1, max_num_threads()] (the binding refuses counts outside that range).
void set_num_threads(int n);
int get_num_threads();
int max_num_threads();

// Rounding and alignment of block and workspace sizes.
inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }
// p rounded up to a 64-byte boundary (a cache line, the widest vector).
inline float* align64(float* p) {
  const auto addr = reinterpret_cast<std::uintptr_t>(p);
  return reinterpret_cast<float*>((addr + 63) & ~std::uintptr_t{63});
}

// Inside a parallel region: this thread's index and the team's size (0 and 1 outside one).
inline int thread_index() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}
inline int team_size() {
#ifdef _OPENMP
  return omp_get_num_threads();
#else
  return 1;
#endif
}

// Below this many elements touched a second thread costs more than it saves.
constexpr int64_t kParallelMin = 1 << 15;

// Products (GEMM, convolutions) below this many multiply-adds (about 200 cubed, ~80 us on one
// core) run on the calling thread. fastdl's threads sleep between parallel regions
// (python/fastdl/_openmp.py), and waking one and meeting it at the barriers costs 15-25 us back
// to back, ~60 us when the calls are Python work apart, on the 2-core VMs here: on a quiet Zen 4
// two threads ran sgemm n = 128 at 82 GFLOP/s and n = 160 at 81 against one thread's 97; from
// n = 256 (121 against ~100) the second thread pays. _C.build_config["parallel_min"] has both
// thresholds (tests size their multi-threaded cases by them).
constexpr double kParallelMinMacs = 1 << 23;

// Runs body(i0, i1) over items [0, count) in one contiguous block per thread, on one thread when
// `work` (elements touched) is below kParallelMin. Each item stays on one thread, so results
// that sum within an item do not depend on the thread count.
template <typename Body>
void split_blocks(int64_t count, int64_t work, Body body) {
  const int64_t wanted = work >= kParallelMin ? std::max(1, get_num_threads()) : 1;
  const int threads = static_cast<int>(std::min<int64_t>(wanted, std::max<int64_t>(count, 1)));
  if (threads == 1) {
    body(int64_t{0}, count);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    const int t = thread_index(), team = team_size();
    const int64_t lo = count * t / team, hi = count * (t + 1) / team;
    if (lo < hi) body(lo, hi);
  }
}

}  // namespace fastdl::cpu
