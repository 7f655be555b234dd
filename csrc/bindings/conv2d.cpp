// Bindings of the conv2d kernels (csrc/cpu/conv2d.cpp): _C.conv2d_forward, _C.conv2d_backward.
#include <iterator>
#include <memory>
#include <string>

#include "bindings/common.h"
#include "cpu/conv2d.h"
#include "cpu/parallel.h"

namespace fastdl::bindings {

namespace {

// x is (N, C, H, W), w is (K, C, R, S) (both already checked 4-D): checks strides, padding and
// sizes and returns every size of the convolution.
fastdl::cpu::Conv2dParams conv_params(const char* op, const py::array& x, const py::array& w,
                                      int64_t stride_h, int64_t stride_w, int64_t pad_h,
                                      int64_t pad_w) {
  fastdl::cpu::Conv2dParams cp{};
  cp.N = x.shape(0), cp.C = x.shape(1), cp.H = x.shape(2), cp.W = x.shape(3);
  cp.K = w.shape(0), cp.R = w.shape(2), cp.S = w.shape(3);
  if (w.shape(1) != cp.C) {
    fail(op, "weight has ", w.shape(1), " input channels, input has ", cp.C, " (x ",
         shape_str(x), ", w ", shape_str(w), ")");
  }
  if (stride_h < 1 || stride_w < 1) {
    fail(op, "stride must be >= 1, got (", stride_h, ", ", stride_w, ")");
  }
  if (pad_h < 0 || pad_w < 0) fail(op, "padding must be >= 0, got (", pad_h, ", ", pad_w, ")");
  if (cp.R < 1 || cp.S < 1) fail(op, "kernel must be at least 1x1, got w ", shape_str(w));
  // Planes or padding beyond 2^40 are surely mistakes and would overflow the sizes below (a
  // zero-size array can carry any height).
  constexpr int64_t kMaxSide = int64_t{1} << 40;
  if (pad_h > kMaxSide || pad_w > kMaxSide) {
    fail(op, "padding (", pad_h, ", ", pad_w, ") is too large");
  }
  if (cp.H > kMaxSide || cp.W > kMaxSide || cp.R > kMaxSide || cp.S > kMaxSide) {
    fail(op, "input plane (", cp.H, ", ", cp.W, ") or kernel (", cp.R, ", ", cp.S,
         ") is too large");
  }
  const int64_t Hp = cp.H + 2 * pad_h, Wp = cp.W + 2 * pad_w;
  if (cp.R > Hp || cp.S > Wp) {
    fail(op, "kernel (", cp.R, ", ", cp.S, ") is larger than the padded input (", Hp, ", ", Wp,
         ")");
  }
  cp.P = (Hp - cp.R) / stride_h + 1;
  cp.Q = (Wp - cp.S) / stride_w + 1;
  cp.stride_h = stride_h, cp.stride_w = stride_w, cp.pad_h = pad_h, cp.pad_w = pad_w;
  // Every buffer the kernel indexes (y / dy, and the per-thread column matrices with room for
  // the workspace arithmetic) must fit int64.
  const int64_t room = 8 * static_cast<int64_t>(fastdl::cpu::get_num_threads());
  checked_product(op, "the output", cp.N, cp.K, cp.P, cp.Q);
  checked_product(op, "the column matrix", cp.C, cp.R, cp.S, cp.P, cp.Q, room);
  checked_product(op, "the padded input", cp.C, Hp, Wp, room);  // the kernels' padded copies
  checked_product(op, "the weight", cp.K, cp.C, cp.R, cp.S, room);
  return cp;
}

// The names of Conv2dAlgorithm, in its order.
constexpr const char* kAlgorithms[] = {"auto", "gemm", "winograd", "winograd_2x2", "winograd_4x4"};

fastdl::cpu::Conv2dAlgorithm algorithm_of(const char* op, const std::string& name) {
  for (int i = 0; i < static_cast<int>(std::size(kAlgorithms)); ++i) {
    if (name == kAlgorithms[i]) return static_cast<fastdl::cpu::Conv2dAlgorithm>(i);
  }
  fail(op, "algorithm must be one of 'auto', 'gemm', 'winograd', 'winograd_2x2', "
       "'winograd_4x4', got '", name, "'");
}

std::unique_ptr<float[]> workspace(int64_t floats) {
  return std::unique_ptr<float[]>(new float[static_cast<size_t>(floats > 0 ? floats : 1)]);
}

py::array_t<float> new_array(std::initializer_list<int64_t> shape) {
  return py::array_t<float>(std::vector<py::ssize_t>(shape.begin(), shape.end()));
}

// x (N, C, H, W), w (K, C, R, S), b (K,) or None; returns y (N, K, P, Q).
py::array_t<float> conv2d_forward(const py::array& x, const py::array& w, const py::object& b,
                                  int64_t stride_h, int64_t stride_w, int64_t pad_h,
                                  int64_t pad_w, const std::string& algorithm) {
  const char* op = "conv2d_forward";
  const float* px = in_ptr<float>(op, "x", x, 4);
  const float* pw = in_ptr<float>(op, "w", w, 4);
  fastdl::cpu::Conv2dParams cp = conv_params(op, x, w, stride_h, stride_w, pad_h, pad_w);
  cp.algorithm = algorithm_of(op, algorithm);
  const float* pb = nullptr;
  if (!b.is_none()) {
    if (!py::isinstance<py::array>(b)) fail(op, "bias must be a NumPy array or None");
    const py::array bias = py::reinterpret_borrow<py::array>(b);
    pb = in_ptr<float>(op, "bias", bias, 1);
    if (bias.shape(0) != cp.K) {
      fail(op, "bias has ", bias.shape(0), " elements, weight has ", cp.K, " output channels");
    }
  }
  py::array_t<float> y = new_array({cp.N, cp.K, cp.P, cp.Q});
  float* py_ = y.mutable_data();
  const int nthreads = fastdl::cpu::get_num_threads();
  auto ws = workspace(fastdl::cpu::conv2d_forward_workspace_floats(cp, nthreads));
  {
    py::gil_scoped_release release;
    fastdl::cpu::conv2d_forward(py_, px, pw, pb, cp, ws.get(), nthreads);
  }
  return y;
}

// dy (N, K, P, Q), x (N, C, H, W), w (K, C, R, S); returns (dx, dw, db), None where not needed.
py::tuple conv2d_backward(const py::array& dy, const py::array& x, const py::array& w,
                          int64_t stride_h, int64_t stride_w, int64_t pad_h, int64_t pad_w,
                          bool need_dx, bool need_dw, bool need_db,
                          const std::string& algorithm) {
  const char* op = "conv2d_backward";
  const float* pdy = in_ptr<float>(op, "dy", dy, 4);
  const float* px = in_ptr<float>(op, "x", x, 4);
  const float* pw = in_ptr<float>(op, "w", w, 4);
  fastdl::cpu::Conv2dParams cp = conv_params(op, x, w, stride_h, stride_w, pad_h, pad_w);
  cp.algorithm = algorithm_of(op, algorithm);
  if (dy.shape(0) != cp.N || dy.shape(1) != cp.K || dy.shape(2) != cp.P || dy.shape(3) != cp.Q) {
    fail(op, "dy must have shape (", cp.N, ", ", cp.K, ", ", cp.P, ", ", cp.Q, "), got ",
         shape_str(dy));
  }
  py::object dx = py::none(), dw = py::none(), db = py::none();
  float *pdx = nullptr, *pdw = nullptr, *pdb = nullptr;
  if (need_dx) {
    auto a = new_array({cp.N, cp.C, cp.H, cp.W});
    pdx = a.mutable_data();
    dx = a;
  }
  if (need_dw) {
    auto a = new_array({cp.K, cp.C, cp.R, cp.S});
    pdw = a.mutable_data();
    dw = a;
  }
  if (need_db) {
    auto a = new_array({cp.K});
    pdb = a.mutable_data();
    db = a;
  }
  const int nthreads = fastdl::cpu::get_num_threads();
  auto ws = workspace(fastdl::cpu::conv2d_backward_workspace_floats(cp, need_dx, need_dw, nthreads));
  {
    py::gil_scoped_release release;
    fastdl::cpu::conv2d_backward(pdx, pdw, pdb, pdy, px, pw, cp, ws.get(), nthreads);
  }
  return py::make_tuple(dx, dw, db);
}

}  // namespace

void bind_conv2d(py::module_& m) {
  m.def("conv2d_forward", &conv2d_forward, py::arg("x"), py::arg("w"), py::arg("b"),
        py::arg("stride_h"), py::arg("stride_w"), py::arg("pad_h"), py::arg("pad_w"),
        py::arg("algorithm") = "auto",
        "y (N, K, P, Q) = conv2d(x (N, C, H, W), w (K, C, R, S)) + b (K,) or no bias (None); "
        "cross-correlation with zero padding, float32, C-contiguous. algorithm: 'auto', 'gemm', "
        "'winograd', 'winograd_2x2' or 'winograd_4x4' (3x3 stride-1 convolutions).");
  m.def("conv2d_backward", &conv2d_backward, py::arg("dy"), py::arg("x"), py::arg("w"),
        py::arg("stride_h"), py::arg("stride_w"), py::arg("pad_h"), py::arg("pad_w"),
        py::arg("need_dx"), py::arg("need_dw"), py::arg("need_db"), py::arg("algorithm") = "auto",
        "(dx (N, C, H, W), dw (K, C, R, S), db (K,)) from dy (N, K, P, Q); None where not needed.");
}

}  // namespace fastdl::bindings
