// Thread control for the CPU kernels: a thin layer over OpenMP, so that thread counts live in
// one place. The count is process-wide (one atomic), as PyTorch's: OpenMP's own setting is
// per calling thread, so a kernel launched from another Python thread would otherwise use the
// default. Every parallel region asks get_num_threads() through its num_threads clause.
// Without OpenMP everything runs on one thread and the count is remembered only.
#include "cpu/parallel.h"

#include <algorithm>
#include <atomic>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace fastdl::cpu {

namespace {

#ifdef _OPENMP
int processors() { return std::max(1, omp_get_num_procs()); }
int default_threads() { return std::max(1, omp_get_max_threads()); }
#else
int processors() { return 1; }
int default_threads() { return 1; }
#endif

std::atomic<int> g_threads{default_threads()};

}  // namespace

int max_num_threads() { return std::max(64, 4 * processors()); }

void set_num_threads(int n) {
  g_threads.store(std::clamp(n, 1, max_num_threads()), std::memory_order_relaxed);
}

int get_num_threads() { return g_threads.load(std::memory_order_relaxed); }

}  // namespace fastdl::cpu
