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
  // The kernels are built for the x86-64 baseline until runtime SIMD dispatch lands.
  config["simd"] = "baseline";
  m.attr("build_config") = config;

  m.def("cpu_features", []() {
    py::dict f;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    f["avx2"] = static_cast<bool>(__builtin_cpu_supports("avx2"));
    f["fma"] = static_cast<bool>(__builtin_cpu_supports("fma"));
    f["avx512f"] = static_cast<bool>(__builtin_cpu_supports("avx512f"));
#endif
    return f;
  }, "The SIMD features this processor supports.");
  m.def("cuda_device_count", &fastdl::cuda::device_count);

  bind_activations(m);
  bind_gemm(m);
  bind_conv2d(m);
  bind_maxpool2d(m);
  bind_cross_entropy(m);
  bind_optim(m);
}
