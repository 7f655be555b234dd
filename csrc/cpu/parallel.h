// The kernels' threads: the process-wide count (parallel.cpp) and splitting work across them
// (compiled-once callers only: the per-ISA bodies never start threads).
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

// Below this many elements touched a second thread costs more than it saves.
constexpr int64_t kParallelMin = 1 << 15;

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
#ifdef _OPENMP
    const int t = omp_get_thread_num(), team = omp_get_num_threads();
#else
    const int t = 0, team = 1;
#endif
    const int64_t lo = count * t / team, hi = count * (t + 1) / team;
    if (lo < hi) body(lo, hi);
  }
}

}  // namespace fastdl::cpu
