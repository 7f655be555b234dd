// Bindings of the pool kernels (csrc/cpu/pool.cpp): avgpool2d, adaptive_avgpool2d and
// adaptive_maxpool2d (whose backward is maxpool2d_backward).
#include <optional>

#include "bindings/common.h"
#include "cpu/pool.h"

namespace fastdl::bindings {

namespace {

using Shape = std::array<int64_t, 4>;

std::string shape4_str(const Shape& s) {
  return "(" + std::to_string(s[0]) + ", " + std::to_string(s[1]) + ", " + std::to_string(s[2]) +
         ", " + std::to_string(s[3]) + ")";
}

// The (N, C, H, W) of x (4-D float32, checked), with H, W >= 1.
Shape input_of(const char* op, const py::array& x) {
  check_array<float>(op, "x", x, 4);
  if (x.shape(2) < 1 || x.shape(3) < 1) {
    fail(op, "x must have height and width >= 1, got shape ", shape_str(x));
  }
  return {x.shape(0), x.shape(1), x.shape(2), x.shape(3)};
}

// input_shape of a backward: (N, C, H, W) with dy's N and C, H, W >= 1, and a size that fits.
Shape backward_input(const char* op, const py::array& dy, const Shape& s) {
  if (s[0] != dy.shape(0) || s[1] != dy.shape(1)) {
    fail(op, "input_shape ", shape4_str(s), " must start with dy's batch and channels, got dy of ",
         "shape ", shape_str(dy));
  }
  if (s[2] < 1 || s[3] < 1) {
    fail(op, "input_shape must have height and width >= 1, got ", shape4_str(s));
  }
  checked_product(op, "input_shape", s[0], s[1], s[2], s[3]);
  return s;
}

// dy's (P, Q) must be the forward's output size.
void check_output(const char* op, const py::array& dy, int64_t P, int64_t Q, const Shape& s) {
  if (dy.shape(2) != P || dy.shape(3) != Q) {
    fail(op, "dy must have height and width (", P, ", ", Q, ") for input_shape ", shape4_str(s),
         ", got shape ", shape_str(dy));
  }
}

// PyTorch's pooled length of one dim: floor (or ceil) of (size + 2 pad - k) / s, plus 1; in
// ceil_mode a last window that would start past the input and its left padding is dropped.
// Needs 0 <= pad <= k / 2 (so the span cannot overflow); returns < 1 for an empty output.
int64_t pooled_size(int64_t size, int64_t k, int64_t s, int64_t pad, bool ceil_mode) {
  const int64_t span = size - (k - 2 * pad);  // size + 2 pad - k
  // span / s rounds toward zero; step one toward the wanted side when inexact.
  const bool inexact = span % s != 0;
  int64_t out = span / s + 1;
  if (inexact && ceil_mode && span > 0) ++out;
  if (inexact && !ceil_mode && span < 0) --out;
  int64_t last = 0;
  if (ceil_mode && out > 1 &&
      (__builtin_mul_overflow(out - 1, s, &last) || last >= size + pad)) {
    --out;
  }
  return out;
}

struct AvgArgs {
  int64_t P, Q, divisor;
};

// Checks avgpool2d's options for an input of height H and width W; returns (P, Q) and the
// divisor override (0: none).
AvgArgs avg_args(const char* op, int64_t H, int64_t W, const Pair& kernel, const Pair& stride,
                 const Pair& padding, bool ceil_mode, const std::optional<int64_t>& divisor) {
  check_pool_window(op, kernel, stride, padding);
  if (divisor && *divisor == 0) fail(op, "divisor_override must not be zero");
  const int64_t P = pooled_size(H, kernel[0], stride[0], padding[0], ceil_mode);
  const int64_t Q = pooled_size(W, kernel[1], stride[1], padding[1], ceil_mode);
  if (P < 1 || Q < 1) {
    fail(op, "kernel_size ", pair_str(kernel), " with padding ", pair_str(padding),
         " and stride ", pair_str(stride), " gives an empty output for the input of height and ",
         "width (", H, ", ", W, ")");
  }
  return {P, Q, divisor ? *divisor : 0};
}

// The adaptive output size (P, Q) for an input of height H and width W.
Pair adaptive_size(const char* op, int64_t H, int64_t W, const Pair& output_size) {
  if (output_size[0] < 1 || output_size[1] < 1) {
    fail(op, "output_size must be >= 1, got ", pair_str(output_size));
  }
  // The window bounds compute (i + 1) * size: it must fit int64.
  checked_product(op, "output_size times the input size", output_size[0], H + 1);
  checked_product(op, "output_size times the input size", output_size[1], W + 1);
  return output_size;
}

// x is (N,C,H,W); returns y (N,C,P,Q).
py::array_t<float> avgpool2d_forward(const py::array& x, const Pair& kernel_size,
                                     const Pair& stride, const Pair& padding, bool ceil_mode,
                                     bool count_include_pad,
                                     const std::optional<int64_t>& divisor_override) {
  const char* op = "avgpool2d_forward";
  const auto [N, C, H, W] = input_of(op, x);
  const auto a = avg_args(op, H, W, kernel_size, stride, padding, ceil_mode, divisor_override);
  checked_product(op, "the output", N, C, a.P, a.Q);
  py::array_t<float> y({N, C, a.P, a.Q});
  float* py_ = y.mutable_data();
  const float* px = static_cast<const float*>(x.data());
  {
    py::gil_scoped_release release;
    fastdl::cpu::avgpool2d_forward(py_, px, N, C, H, W, a.P, a.Q, kernel_size[0], kernel_size[1],
                                   stride[0], stride[1], padding[0], padding[1],
                                   count_include_pad, a.divisor);
  }
  return y;
}

// dy is (N,C,P,Q); input_shape is (N,C,H,W); returns dx (N,C,H,W).
py::array_t<float> avgpool2d_backward(const py::array& dy, const Shape& input_shape,
                                      const Pair& kernel_size, const Pair& stride,
                                      const Pair& padding, bool ceil_mode,
                                      bool count_include_pad,
                                      const std::optional<int64_t>& divisor_override) {
  const char* op = "avgpool2d_backward";
  const float* pdy = in_ptr<float>(op, "dy", dy, 4);
  const auto [N, C, H, W] = backward_input(op, dy, input_shape);
  const auto a = avg_args(op, H, W, kernel_size, stride, padding, ceil_mode, divisor_override);
  check_output(op, dy, a.P, a.Q, input_shape);
  py::array_t<float> dx({N, C, H, W});
  float* pdx = dx.mutable_data();
  {
    py::gil_scoped_release release;
    fastdl::cpu::avgpool2d_backward(pdx, pdy, N, C, H, W, a.P, a.Q, kernel_size[0],
                                    kernel_size[1], stride[0], stride[1], padding[0], padding[1],
                                    count_include_pad, a.divisor);
  }
  return dx;
}

// x is (N,C,H,W); returns y (N,C,P,Q).
py::array_t<float> adaptive_avgpool2d_forward(const py::array& x, const Pair& output_size) {
  const char* op = "adaptive_avgpool2d_forward";
  const auto [N, C, H, W] = input_of(op, x);
  const auto [P, Q] = adaptive_size(op, H, W, output_size);
  checked_product(op, "the output", N, C, P, Q);
  py::array_t<float> y({N, C, P, Q});
  float* py_ = y.mutable_data();
  const float* px = static_cast<const float*>(x.data());
  {
    py::gil_scoped_release release;
    fastdl::cpu::adaptive_avgpool2d_forward(py_, px, N, C, H, W, P, Q);
  }
  return y;
}

// dy is (N,C,P,Q); input_shape is (N,C,H,W); returns dx (N,C,H,W).
py::array_t<float> adaptive_avgpool2d_backward(const py::array& dy, const Shape& input_shape) {
  const char* op = "adaptive_avgpool2d_backward";
  const float* pdy = in_ptr<float>(op, "dy", dy, 4);
  const auto [N, C, H, W] = backward_input(op, dy, input_shape);
  const auto [P, Q] = adaptive_size(op, H, W, {dy.shape(2), dy.shape(3)});
  py::array_t<float> dx({N, C, H, W});
  float* pdx = dx.mutable_data();
  {
    py::gil_scoped_release release;
    fastdl::cpu::adaptive_avgpool2d_backward(pdx, pdy, N, C, H, W, P, Q);
  }
  return dx;
}

// x is (N,C,H,W); returns y (N,C,P,Q) float32 and indices (N,C,P,Q) int64.
py::tuple adaptive_maxpool2d_forward(const py::array& x, const Pair& output_size) {
  const char* op = "adaptive_maxpool2d_forward";
  const auto [N, C, H, W] = input_of(op, x);
  const auto [P, Q] = adaptive_size(op, H, W, output_size);
  checked_product(op, "the output", N, C, P, Q);
  py::array_t<float> y({N, C, P, Q});
  py::array_t<int64_t> indices({N, C, P, Q});
  float* py_ = y.mutable_data();
  int64_t* pi = indices.mutable_data();
  const float* px = static_cast<const float*>(x.data());
  {
    py::gil_scoped_release release;
    fastdl::cpu::adaptive_maxpool2d_forward(py_, pi, px, N, C, H, W, P, Q);
  }
  return py::make_tuple(y, indices);
}

}  // namespace

void bind_pool(py::module_& m) {
  m.def("avgpool2d_forward", &avgpool2d_forward, py::arg("x"), py::arg("kernel_size"),
        py::arg("stride"), py::arg("padding"), py::arg("ceil_mode"),
        py::arg("count_include_pad"), py::arg("divisor_override"),
        "y = average pool of x (N, C, H, W), float32, with PyTorch's windows and divisors; "
        "kernel_size, stride, padding are (h, w) pairs; divisor_override is None or non-zero.");
  m.def("avgpool2d_backward", &avgpool2d_backward, py::arg("dy"), py::arg("input_shape"),
        py::arg("kernel_size"), py::arg("stride"), py::arg("padding"), py::arg("ceil_mode"),
        py::arg("count_include_pad"), py::arg("divisor_override"),
        "dx (input_shape) = each dy (N, C, P, Q) over its divisor, added over its window.");
  m.def("adaptive_avgpool2d_forward", &adaptive_avgpool2d_forward, py::arg("x"),
        py::arg("output_size"),
        "y (N, C, P, Q) = the mean of each of PyTorch's adaptive windows of x (N, C, H, W).");
  m.def("adaptive_avgpool2d_backward", &adaptive_avgpool2d_backward, py::arg("dy"),
        py::arg("input_shape"),
        "dx (input_shape) = each dy (N, C, P, Q) over its window's size, added over its window.");
  m.def("adaptive_maxpool2d_forward", &adaptive_maxpool2d_forward, py::arg("x"),
        py::arg("output_size"),
        "(y, indices) = the max of each adaptive window of x (N, C, H, W) and its int64 "
        "h * W + w in its plane; the backward is maxpool2d_backward.");
}

}  // namespace fastdl::bindings
