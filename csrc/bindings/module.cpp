// fastdl._C: the module that gathers every binding (one file per area in csrc/bindings/).
#include "bindings/common.h"
#include "cpu/kernels.h"
#include "cuda/cuda.h"

namespace py = pybind11;
using namespace fastdl::bindings;

PYBIND11_MODULE(_C, m) {
  m.doc() = "fastdl's compiled kernels (private: use fastdl.backends)";

  m.def("set_num_threads", [](int n) {
    if (n < 1) fail("set_num_threads", "expected a thread count >= 1, got ", n);
    fastdl::cpu::set_num_threads(n);
  });
  m.def("get_num_threads", &fastdl::cpu::get_num_threads);

  py::dict config;
  config["version"] = FASTDL_VERSION;
  config["compiler"] = FASTDL_COMPILER;
#ifdef _OPENMP
  config["openmp"] = _OPENMP;
#else
  config["openmp"] = py::none();
#endif
  config["cuda_built"] = fastdl::cuda::is_built();
  m.attr("build_config") = config;
  m.def("cuda_device_count", &fastdl::cuda::device_count);

  bind_activations(m);
  bind_gemm(m);
  bind_conv2d(m);
  bind_maxpool2d(m);
  bind_cross_entropy(m);
  bind_optim(m);
}
