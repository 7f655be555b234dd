// Bindings of the gemm kernels (csrc/cpu/gemm.cpp): _C.gemm (2-D), _C.bmm (3-D), _C.gemm_config.
#include <memory>

#include "bindings/common.h"
#include "cpu/gemm.h"
#include "cpu/parallel.h"

namespace fastdl::bindings {

namespace {

// Sizes of op(a) @ op(b) for the last two axes of a and b (2-D or 3-D, already checked).
struct MatmulSizes {
  int64_t M, N, K, lda, ldb;
};

MatmulSizes matmul_sizes(const char* op, const py::array& a, const py::array& b, bool trans_a,
                         bool trans_b) {
  const py::ssize_t d = a.ndim();
  const int64_t a0 = a.shape(d - 2), a1 = a.shape(d - 1);
  const int64_t b0 = b.shape(d - 2), b1 = b.shape(d - 1);
  MatmulSizes s{trans_a ? a1 : a0, trans_b ? b0 : b1, trans_a ? a0 : a1, a1, b1};
  const int64_t kb = trans_b ? b1 : b0;
  if (s.K != kb) {
    fail(op, "inner sizes differ: op(a) is (", s.M, ", ", s.K, ") from a ", shape_str(a),
         trans_a ? " transposed" : "", ", op(b) is (", kb, ", ", s.N, ") from b ", shape_str(b),
         trans_b ? " transposed" : "");
  }
  return s;
}

// Scratch for the packed panels, allocated once per call (never inside the kernel's loops).
std::unique_ptr<float[]> workspace(int64_t floats) {
  return std::unique_ptr<float[]>(new float[static_cast<size_t>(floats > 0 ? floats : 1)]);
}

// a is (M, K) or (K, M) when trans_a; b is (K, N) or (N, K) when trans_b; returns c (M, N).
py::array_t<float> gemm(const py::array& a, const py::array& b, bool trans_a, bool trans_b) {
  const char* op = "gemm";
  const float* pa = in_ptr<float>(op, "a", a, 2);
  const float* pb = in_ptr<float>(op, "b", b, 2);
  const MatmulSizes s = matmul_sizes(op, a, b, trans_a, trans_b);
  checked_product(op, "the output", s.M, s.N);
  py::array_t<float> c({static_cast<py::ssize_t>(s.M), static_cast<py::ssize_t>(s.N)});
  float* pc = c.mutable_data();
  const int nthreads = fastdl::cpu::get_num_threads();
  auto ws = workspace(fastdl::cpu::gemm_workspace_floats(s.M, s.N, s.K, nthreads));
  {
    py::gil_scoped_release release;
    fastdl::cpu::gemm(pc, pa, pb, s.M, s.N, s.K, s.N, s.lda, s.ldb, trans_a, trans_b, 1.0f, 0.0f,
                      ws.get(), nthreads);
  }
  return c;
}

// a is (B, M, K) or (B, K, M); b is (B, K, N) or (B, N, K); returns c (B, M, N).
py::array_t<float> bmm(const py::array& a, const py::array& b, bool trans_a, bool trans_b) {
  const char* op = "bmm";
  const float* pa = in_ptr<float>(op, "a", a, 3);
  const float* pb = in_ptr<float>(op, "b", b, 3);
  const int64_t batch = a.shape(0);
  if (b.shape(0) != batch) {
    fail(op, "batch sizes differ: a is ", shape_str(a), ", b is ", shape_str(b));
  }
  const MatmulSizes s = matmul_sizes(op, a, b, trans_a, trans_b);
  checked_product(op, "the output", batch, s.M, s.N);
  py::array_t<float> c({static_cast<py::ssize_t>(batch), static_cast<py::ssize_t>(s.M),
                        static_cast<py::ssize_t>(s.N)});
  float* pc = c.mutable_data();
  const int nthreads = fastdl::cpu::get_num_threads();
  auto ws = workspace(fastdl::cpu::gemm_batched_workspace_floats(batch, s.M, s.N, s.K, nthreads));
  {
    py::gil_scoped_release release;
    fastdl::cpu::gemm_batched(pc, pa, pb, batch, s.M, s.N, s.K, s.N, s.lda, s.ldb, s.M * s.N,
                              s.M * s.K, s.K * s.N, trans_a, trans_b, 1.0f, 0.0f, ws.get(),
                              nthreads);
  }
  return c;
}

}  // namespace

void bind_gemm(py::module_& m) {
  m.def("gemm", &gemm, py::arg("a"), py::arg("b"), py::arg("trans_a") = false,
        py::arg("trans_b") = false,
        "c = op(a) @ op(b) for 2-D float32 C-contiguous a and b; op transposes when asked.");
  m.def("bmm", &bmm, py::arg("a"), py::arg("b"), py::arg("trans_a") = false,
        py::arg("trans_b") = false,
        "c[i] = op(a[i]) @ op(b[i]) for 3-D float32 C-contiguous a and b with the same batch.");
  m.def(
      "gemm_config",
      [] {
        const fastdl::cpu::GemmKernel& k = fastdl::cpu::gemm_kernel();
        py::dict d;
        d["kernel"] = k.name;
        d["MR"] = k.mr;
        d["NR"] = k.nr;
        d["MC"] = k.mc;
        d["KC"] = k.kc;
        d["NC"] = k.nc;
        return d;
      },
      "The GEMM micro-kernel in use and its blocking (MR, NR, MC, KC, NC), for tests and bench.");
}

}  // namespace fastdl::bindings
