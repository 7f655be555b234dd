// Bindings of the fused kernels (csrc/cpu/fused.cpp). The pooling pair takes optional output
// buffers so that a compiled plan (fastdl.compile) writes into the same arrays every step.
#include <algorithm>
#include <array>

#include "bindings/common.h"
#include "cpu/fused.h"

namespace fastdl::bindings {

namespace {

// x is (N, C, *) float32, bias (C,): x = relu(x + bias) per channel, in place.
void bias_relu_(py::array& x, const py::array& bias) {
  const char* op = "bias_relu_";
  float* px = out_ptr<float>(op, "x", x);
  const float* pb = in_ptr<float>(op, "bias", bias, 1);
  if (x.ndim() < 2) fail(op, "x must have 2 or more dimensions (N, C, *), got shape ", shape_str(x));
  const int64_t A = x.shape(0), C = x.shape(1);
  const int64_t B = checked_product(op, "x", x.size()) / std::max<int64_t>(A * C, 1);
  if (bias.shape(0) != C) {
    fail(op, "bias must have shape (", C, ",) for x of shape ", shape_str(x), ", got ",
         shape_str(bias));
  }
  if (A * C == 0) return;
  py::gil_scoped_release release;
  fastdl::cpu::bias_relu(px, pb, A, C, B);
}

// x (N, C, H, W) -> (y, indices) (N, C, H/2, W/2): 2x2 stride-2 max pooling of relu(x);
// indices None when need_indices is false.
py::tuple relu_maxpool2x2_forward(const py::array& x, std::optional<py::array> y_out,
                                  std::optional<py::array> indices_out, bool need_indices) {
  const char* op = "relu_maxpool2x2_forward";
  const float* px = in_ptr<float>(op, "x", x, 4);
  const int64_t N = x.shape(0), C = x.shape(1), H = x.shape(2), W = x.shape(3);
  if (H < 2 || W < 2) fail(op, "x must have height and width >= 2, got shape ", shape_str(x));
  const std::array<int64_t, 4> shape{N, C, H / 2, W / 2};
  py::array y = output_array<float>(op, "y_out", y_out, shape);
  if (!need_indices && indices_out) fail(op, "indices_out given with need_indices=False");
  py::object indices = py::none();
  int64_t* pi = nullptr;
  if (need_indices) {
    py::array a = output_array<int64_t>(op, "indices_out", indices_out, shape);
    pi = static_cast<int64_t*>(a.mutable_data());
    indices = a;
  }
  float* py_ = static_cast<float*>(y.mutable_data());
  {
    py::gil_scoped_release release;
    fastdl::cpu::relu_maxpool2x2_forward(py_, pi, px, N * C, H, W);
  }
  return py::make_tuple(y, indices);
}

// dy, indices, y (N, C, P, Q) from the forward; input_shape (N, C, H, W) -> dx.
py::array relu_maxpool2x2_backward(const py::array& dy, const py::array& indices,
                                   const py::array& y, const std::array<int64_t, 4>& input_shape,
                                   std::optional<py::array> out) {
  const char* op = "relu_maxpool2x2_backward";
  const float* pdy = in_ptr<float>(op, "dy", dy, 4);
  const int64_t* pi = in_ptr<int64_t>(op, "indices", indices, 4);
  const float* py_ = in_ptr<float>(op, "y", y, 4);
  check_same_shape(op, "dy", dy, "indices", indices);
  check_same_shape(op, "dy", dy, "y", y);
  const int64_t N = input_shape[0], C = input_shape[1], H = input_shape[2], W = input_shape[3];
  if (dy.shape(0) != N || dy.shape(1) != C || dy.shape(2) != H / 2 || dy.shape(3) != W / 2 ||
      H < 2 || W < 2) {
    fail(op, "dy must have shape (", N, ", ", C, ", ", H / 2, ", ", W / 2,
         ") for input_shape (", N, ", ", C, ", ", H, ", ", W, "), got ", shape_str(dy));
  }
  py::array dx = output_array<float>(op, "out", out, input_shape);
  float* pdx = static_cast<float*>(dx.mutable_data());
  int64_t bad = 0;
  {
    py::gil_scoped_release release;
    bad = fastdl::cpu::relu_maxpool2x2_backward(pdx, pdy, pi, py_, N * C, H, W);
  }
  // The kernel never writes outside a window; a wrong index is still the caller's error.
  if (bad) fail(op, bad, " indices are not in their 2x2 windows (not from the forward?)");
  return dx;
}

}  // namespace

void bind_fused(py::module_& m) {
  m.def("bias_relu_", &bias_relu_, py::arg("x"), py::arg("bias"),
        "x = relu(x + bias) in place; x (N, C, *) float32, bias (C,) along dim 1.");
  m.def("relu_maxpool2x2_forward", &relu_maxpool2x2_forward, py::arg("x"),
        py::arg("y_out") = py::none(), py::arg("indices_out") = py::none(),
        py::arg("need_indices") = true,
        "(y, indices): 2x2 stride-2 max pooling of relu(x), x (N, C, H, W) float32; written "
        "into y_out and indices_out when given; indices None when need_indices is False.");
  m.def("relu_maxpool2x2_backward", &relu_maxpool2x2_backward, py::arg("dy"),
        py::arg("indices"), py::arg("y"), py::arg("input_shape"), py::arg("out") = py::none(),
        "dx (input_shape): dy at each argmax where y > 0, else 0; written into out when given.");
}

}  // namespace fastdl::bindings
