// Bindings of the cross_entropy kernels (csrc/cpu/cross_entropy.cpp). Not yet written.
#include "bindings/common.h"

namespace fastdl::bindings {

void bind_cross_entropy(py::module_& m) { (void)m; }

}  // namespace fastdl::bindings
