// Bindings of the optim kernels (csrc/cpu/optim.cpp). Not yet written.
#include "bindings/common.h"

namespace fastdl::bindings {

void bind_optim(py::module_& m) { (void)m; }

}  // namespace fastdl::bindings
