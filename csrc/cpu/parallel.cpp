// Thread control for the CPU kernels: a thin layer over OpenMP, so the rest of
// the library never includes omp.h directly. Without OpenMP everything runs on
// one thread and set_num_threads is remembered but has no effect.
#include "cpu/kernels.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace fastdl::cpu {

void set_num_threads(int n) {
#ifdef _OPENMP
  omp_set_num_threads(n);
#else
  (void)n;
#endif
}

int get_num_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

}  // namespace fastdl::cpu
