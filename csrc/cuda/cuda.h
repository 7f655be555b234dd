// The CUDA backend's entry points. csrc/cuda/*.cu implement them when CUDA is
// built; csrc/cuda/no_cuda.cpp stands in otherwise.
#pragma once

namespace fastdl::cuda {

bool is_built();
int device_count();

}  // namespace fastdl::cuda
