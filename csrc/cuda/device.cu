// The CUDA backend's device queries (built only with FASTDL_CUDA=ON; no_cuda.cpp stands in
// otherwise). The CUDA kernel families (csrc/cuda/<family>.cu) come with the CUDA issue.
#include <cuda_runtime.h>

#include "cuda/cuda.h"

namespace fastdl::cuda {

bool is_built() { return true; }

int device_count() {
  int n = 0;
  // No driver or no device is not an error for the caller: it means zero devices.
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error state
    return 0;
  }
  return n;
}

}  // namespace fastdl::cuda
