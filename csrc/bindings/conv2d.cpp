// Bindings of the conv2d kernels (csrc/cpu/conv2d.cpp). Not yet written.
#include "bindings/common.h"

namespace fastdl::bindings {

void bind_conv2d(py::module_& m) { (void)m; }

}  // namespace fastdl::bindings
