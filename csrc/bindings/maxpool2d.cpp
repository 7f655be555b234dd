// Bindings of the maxpool2d kernels (csrc/cpu/maxpool2d.cpp). Not yet written.
#include "bindings/common.h"

namespace fastdl::bindings {

void bind_maxpool2d(py::module_& m) { (void)m; }

}  // namespace fastdl::bindings
