// Bindings of the activation kernels (csrc/cpu/activations.cpp): _C.{relu,sigmoid,tanh}_{forward,
// backward} and _C.exp_forward (the vectorised exp, exposed for accuracy tests).
#include "bindings/common.h"
#include "cpu/activations.h"

namespace fastdl::bindings {

namespace {

// ---- activations: y = f(x), dx = f'(.) * dy ----

using UnaryKernel = void (*)(float*, const float*, int64_t);
using UnaryBackwardKernel = void (*)(float*, const float*, const float*, int64_t);

py::array_t<float> unary_forward(const char* op, UnaryKernel kernel, const py::array& x) {
  const float* px = in_ptr<float>(op, "x", x);
  py::array_t<float> y = empty_like_shape(x);
  float* py_ = y.mutable_data();
  const int64_t n = x.size();
  {
    py::gil_scoped_release release;
    kernel(py_, px, n);
  }
  return y;
}

py::array_t<float> unary_backward(const char* op, UnaryBackwardKernel kernel, const py::array& dy,
                                  const py::array& y) {
  const float* pdy = in_ptr<float>(op, "dy", dy);
  const float* py_ = in_ptr<float>(op, "y", y);
  check_same_shape(op, "dy", dy, "y", y);
  py::array_t<float> dx = empty_like_shape(dy);
  float* pdx = dx.mutable_data();
  const int64_t n = dy.size();
  {
    py::gil_scoped_release release;
    kernel(pdx, pdy, py_, n);
  }
  return dx;
}

}  // namespace

void bind_activations(py::module_& m) {
  struct Entry {
    const char* forward_name;
    UnaryKernel forward;
    const char* backward_name;
    UnaryBackwardKernel backward;
  };
  static const Entry entries[] = {
      {"relu_forward", fastdl::cpu::relu_forward, "relu_backward", fastdl::cpu::relu_backward},
      {"sigmoid_forward", fastdl::cpu::sigmoid_forward, "sigmoid_backward", fastdl::cpu::sigmoid_backward},
      {"tanh_forward", fastdl::cpu::tanh_forward, "tanh_backward", fastdl::cpu::tanh_backward},
  };
  for (const Entry& e : entries) {
    m.def(
        e.forward_name,
        [e](const py::array& x) { return unary_forward(e.forward_name, e.forward, x); },
        py::arg("x"), "y = f(x) elementwise; x is float32, C-contiguous, any shape.");
    m.def(
        e.backward_name,
        [e](const py::array& dy, const py::array& y) {
          return unary_backward(e.backward_name, e.backward, dy, y);
        },
        py::arg("dy"), py::arg("y"),
        "dx = f'(x) * dy, written in terms of the forward's output y (same shape as dy).");
  }
  m.def(
      "exp_forward",
      [](const py::array& x) { return unary_forward("exp_forward", fastdl::cpu::exp_forward, x); },
      py::arg("x"),
      "y = e^x elementwise with the vectorised exp under sigmoid and tanh (tests, benchmarks).");
}


}  // namespace fastdl::bindings
