// Bindings of the maxpool2d kernels (csrc/cpu/maxpool2d.cpp).
#include "bindings/common.h"
#include "cpu/maxpool2d.h"

namespace fastdl::bindings {

namespace {

// x is (N,C,H,W); returns y (N,C,P,Q) float32 and indices (N,C,P,Q) int64.
py::tuple maxpool2d_forward(const py::array& x, const Pair& kernel, const Pair& stride,
                            const Pair& padding) {
  const char* op = "maxpool2d_forward";
  const float* px = in_ptr<float>(op, "x", x, 4);
  const int64_t N = x.shape(0), C = x.shape(1), H = x.shape(2), W = x.shape(3);
  if (H < 1 || W < 1) fail(op, "x must have height and width >= 1, got shape ", shape_str(x));
  check_pool_window(op, kernel, stride, padding);
  // Written as kernel - 2 * padding <= size so that nothing can overflow.
  if (kernel[0] - 2 * padding[0] > H || kernel[1] - 2 * padding[1] > W) {
    fail(op, "kernel_size ", pair_str(kernel), " with padding ", pair_str(padding),
         " does not fit the input of height and width (", H, ", ", W,
         "): the output would be empty");
  }
  const int64_t P = (H - (kernel[0] - 2 * padding[0])) / stride[0] + 1;
  const int64_t Q = (W - (kernel[1] - 2 * padding[1])) / stride[1] + 1;
  py::array_t<float> y({N, C, P, Q});
  py::array_t<int64_t> indices({N, C, P, Q});
  float* py_ = y.mutable_data();
  int64_t* pi = indices.mutable_data();
  {
    py::gil_scoped_release release;
    fastdl::cpu::maxpool2d_forward(py_, pi, px, N, C, H, W, P, Q, kernel[0], kernel[1],
                                   stride[0], stride[1], padding[0], padding[1]);
  }
  return py::make_tuple(y, indices);
}

// dy and indices are (N,C,P,Q); input_shape is (N,C,H,W); returns dx (N,C,H,W).
py::array_t<float> maxpool2d_backward(const py::array& dy, const py::array& indices,
                                      const std::array<int64_t, 4>& input_shape) {
  const char* op = "maxpool2d_backward";
  const float* pdy = in_ptr<float>(op, "dy", dy, 4);
  const int64_t* pi = in_ptr<int64_t>(op, "indices", indices, 4);
  check_same_shape(op, "dy", dy, "indices", indices);
  const int64_t N = input_shape[0], C = input_shape[1], H = input_shape[2], W = input_shape[3];
  const std::string shape = "(" + std::to_string(N) + ", " + std::to_string(C) + ", " +
                            std::to_string(H) + ", " + std::to_string(W) + ")";
  if (N != dy.shape(0) || C != dy.shape(1)) {
    fail(op, "input_shape ", shape, " must start with dy's batch and channels, got dy of shape ",
         shape_str(dy));
  }
  int64_t HW = 0, total = 0;
  if (H < 1 || W < 1 || __builtin_mul_overflow(H, W, &HW) ||
      __builtin_mul_overflow(HW, N * C, &total)) {
    fail(op, "input_shape must have height and width >= 1 and a size that fits int64, got ",
         shape);
  }
  const int64_t PQ = dy.shape(2) * dy.shape(3);
  py::array_t<float> dx({N, C, H, W});
  float* pdx = dx.mutable_data();
  int64_t bad = -1;
  {
    py::gil_scoped_release release;
    bad = fastdl::cpu::maxpool2d_backward(pdx, pdy, pi, N * C, HW, PQ);
  }
  if (bad >= 0) {
    fail(op, "index ", pi[bad], " (at flat position ", bad, " of indices) is outside the ", H,
         " x ", W, " input plane: indices must be in [0, ", HW, ")");
  }
  return dx;
}

}  // namespace

void bind_maxpool2d(py::module_& m) {
  m.def("maxpool2d_forward", &maxpool2d_forward, py::arg("x"), py::arg("kernel_size"),
        py::arg("stride"), py::arg("padding"),
        "(y, indices) = max pool of x (N, C, H, W), float32; kernel_size, stride, padding are "
        "(h, w) pairs; indices are int64 h * W + w within each plane.");
  m.def("maxpool2d_backward", &maxpool2d_backward, py::arg("dy"), py::arg("indices"),
        py::arg("input_shape"),
        "dx (input_shape) = zeros with each dy (N, C, P, Q) added at its index in its plane.");
}

}  // namespace fastdl::bindings
