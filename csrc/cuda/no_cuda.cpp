// Stand-in for the CUDA backend when fastdl is built without it (FASTDL_CUDA=OFF).
// The bindings ask these functions whether CUDA exists; nothing else is compiled.
#include "cuda/cuda.h"

namespace fastdl::cuda {

bool is_built() { return false; }
int device_count() { return 0; }
void bind_cuda(pybind11::module_&) {}

}  // namespace fastdl::cuda
