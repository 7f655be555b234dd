// Bindings of the gemm kernels (csrc/cpu/gemm.cpp). Not yet written.
#include "bindings/common.h"

namespace fastdl::bindings {

void bind_gemm(py::module_& m) { (void)m; }

}  // namespace fastdl::bindings
