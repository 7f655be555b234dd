// Bindings of the norm kernels (csrc/cpu/norm.cpp).
#include <cmath>

#include "bindings/common.h"
#include "cpu/norm.h"

namespace fastdl::bindings {

namespace {

// x is (A,C,B); returns y (A,C,B) and mean, var, rstd (C,), float32.
py::tuple norm_forward(const py::array& x, double eps) {
  const char* op = "norm_forward";
  const float* px = in_ptr<float>(op, "x", x, 3);
  if (!(eps >= 0) || !std::isfinite(eps)) fail(op, "eps must be finite and >= 0, got ", eps);
  const int64_t A = x.shape(0), C = x.shape(1), B = x.shape(2);
  py::array_t<float> y({A, C, B}), mean(C), var(C), rstd(C);
  float *py_ = y.mutable_data(), *pm = mean.mutable_data(), *pv = var.mutable_data(),
        *pr = rstd.mutable_data();
  {
    py::gil_scoped_release release;
    fastdl::cpu::norm_forward(py_, pm, pv, pr, px, A, C, B, static_cast<float>(eps));
  }
  return py::make_tuple(y, mean, var, rstd);
}

// dy, x are (A,C,B); mean, rstd are (C,); returns dx (A,C,B).
py::array_t<float> norm_backward(const py::array& dy, const py::array& x, const py::array& mean,
                                 const py::array& rstd) {
  const char* op = "norm_backward";
  const float* pdy = in_ptr<float>(op, "dy", dy, 3);
  const float* px = in_ptr<float>(op, "x", x, 3);
  const float* pm = in_ptr<float>(op, "mean", mean, 1);
  const float* pr = in_ptr<float>(op, "rstd", rstd, 1);
  check_same_shape(op, "dy", dy, "x", x);
  const int64_t A = x.shape(0), C = x.shape(1), B = x.shape(2);
  if (mean.shape(0) != C || rstd.shape(0) != C) {
    fail(op, "mean and rstd must have shape (", C, ",) for x of shape ", shape_str(x), ", got ",
         shape_str(mean), " and ", shape_str(rstd));
  }
  py::array_t<float> dx({A, C, B});
  float* pdx = dx.mutable_data();
  {
    py::gil_scoped_release release;
    fastdl::cpu::norm_backward(pdx, pdy, px, pm, pr, A, C, B);
  }
  return dx;
}

}  // namespace

void bind_norm(py::module_& m) {
  m.def("norm_forward", &norm_forward, py::arg("x"), py::arg("eps"),
        "(y, mean, var, rstd) for x (A, C, B) float32, reduced over A and B per channel: mean, "
        "biased var, rstd = 1 / sqrt(var + eps), all (C,); y = (x - mean) * rstd.");
  m.def("norm_backward", &norm_backward, py::arg("dy"), py::arg("x"), py::arg("mean"),
        py::arg("rstd"),
        "dx (A, C, B) = (dy - mean(dy) - x_hat * mean(dy * x_hat)) * rstd, x_hat = (x - mean) * "
        "rstd, means over A and B per channel.");
}

}  // namespace fastdl::bindings
