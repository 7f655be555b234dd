// Bindings of the conv2d kernels (csrc/cpu/conv2d.cpp): _C.conv2d_forward, _C.conv2d_backward.
#include <array>
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

// x (N, C, H, W) and w (K, C, R, S) checked, and the convolution's sizes and algorithm.
struct ConvInputs {
  const float* x;
  const float* w;
  fastdl::cpu::Conv2dParams cp;
};

ConvInputs conv_inputs(const char* op, const py::array& x, const py::array& w, int64_t stride_h,
                       int64_t stride_w, int64_t pad_h, int64_t pad_w,
                       const std::string& algorithm) {
  ConvInputs in{in_ptr<float>(op, "x", x, 4), in_ptr<float>(op, "w", w, 4), {}};
  in.cp = conv_params(op, x, w, stride_h, stride_w, pad_h, pad_w);
  in.cp.algorithm = algorithm_of(op, algorithm);
  return in;
}

// b (K,) or None, checked against cp; its data or nullptr.
const float* bias_ptr(const char* op, const py::object& b, const fastdl::cpu::Conv2dParams& cp) {
  if (b.is_none()) return nullptr;
  if (!py::isinstance<py::array>(b)) fail(op, "bias must be a NumPy array or None");
  const py::array bias = py::reinterpret_borrow<py::array>(b);
  const float* pb = in_ptr<float>(op, "bias", bias, 1);
  if (bias.shape(0) != cp.K) {
    fail(op, "bias has ", bias.shape(0), " elements, weight has ", cp.K, " output channels");
  }
  return pb;
}

// The backward's outputs: dx (N, C, H, W), dw (K, C, R, S), db (K,), each None when not needed.
struct Gradients {
  py::object dx = py::none(), dw = py::none(), db = py::none();
  float *pdx = nullptr, *pdw = nullptr, *pdb = nullptr;
  Gradients(const fastdl::cpu::Conv2dParams& cp, bool need_dx, bool need_dw, bool need_db) {
    pdx = make(need_dx, dx, {cp.N, cp.C, cp.H, cp.W});
    pdw = make(need_dw, dw, {cp.K, cp.C, cp.R, cp.S});
    pdb = make(need_db, db, {cp.K});
  }
  py::tuple tuple() const { return py::make_tuple(dx, dw, db); }

 private:
  static float* make(bool need, py::object& slot, std::initializer_list<int64_t> shape) {
    if (!need) return nullptr;
    auto a = new_array(shape);
    slot = a;
    return a.mutable_data();
  }
};

// x (N, C, H, W), w (K, C, R, S), b (K,) or None; returns y (N, K, P, Q).
py::array_t<float> conv2d_forward(const py::array& x, const py::array& w, const py::object& b,
                                  int64_t stride_h, int64_t stride_w, int64_t pad_h,
                                  int64_t pad_w, const std::string& algorithm) {
  const char* op = "conv2d_forward";
  const ConvInputs in = conv_inputs(op, x, w, stride_h, stride_w, pad_h, pad_w, algorithm);
  const float *px = in.x, *pw = in.w;
  const fastdl::cpu::Conv2dParams& cp = in.cp;
  const float* pb = bias_ptr(op, b, cp);
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
  const ConvInputs in = conv_inputs(op, x, w, stride_h, stride_w, pad_h, pad_w, algorithm);
  const float *px = in.x, *pw = in.w;
  const fastdl::cpu::Conv2dParams& cp = in.cp;
  if (dy.shape(0) != cp.N || dy.shape(1) != cp.K || dy.shape(2) != cp.P || dy.shape(3) != cp.Q) {
    fail(op, "dy must have shape (", cp.N, ", ", cp.K, ", ", cp.P, ", ", cp.Q, "), got ",
         shape_str(dy));
  }
  Gradients g(cp, need_dx, need_dw, need_db);
  const int nthreads = fastdl::cpu::get_num_threads();
  auto ws = workspace(fastdl::cpu::conv2d_backward_workspace_floats(cp, need_dx, need_dw, nthreads));
  {
    py::gil_scoped_release release;
    fastdl::cpu::conv2d_backward(g.pdx, g.pdw, g.pdb, pdy, px, pw, cp, ws.get(), nthreads);
  }
  return g.tuple();
}

// The pooled shape of the fused conv block, or a ValueError when the conv output is too small.
std::array<int64_t, 4> pooled_shape(const char* op, const fastdl::cpu::Conv2dParams& cp) {
  if (cp.P < 2 || cp.Q < 2) {
    fail(op, "the convolution's output must be at least 2x2 to pool, got (", cp.P, ", ", cp.Q,
         ")");
  }
  return {cp.N, cp.K, cp.P / 2, cp.Q / 2};
}

// x (N, C, H, W), w (K, C, R, S), b (K,) or None -> (y, codes) (N, K, P / 2, Q / 2):
// 2x2 max pooling of relu(conv2d(x, w) + b); codes (uint8) None when need_codes is false.
py::tuple conv2d_relu_maxpool2x2_forward(const py::array& x, const py::array& w,
                                         const py::object& b, int64_t stride_h, int64_t stride_w,
                                         int64_t pad_h, int64_t pad_w,
                                         std::optional<py::array> y_out,
                                         std::optional<py::array> codes_out, bool need_codes,
                                         const std::string& algorithm) {
  const char* op = "conv2d_relu_maxpool2x2_forward";
  const ConvInputs in = conv_inputs(op, x, w, stride_h, stride_w, pad_h, pad_w, algorithm);
  const float *px = in.x, *pw = in.w;
  const fastdl::cpu::Conv2dParams& cp = in.cp;
  const float* pb = bias_ptr(op, b, cp);
  const std::array<int64_t, 4> shape = pooled_shape(op, cp);
  py::array y = output_array<float>(op, "y_out", y_out, shape);
  if (!need_codes && codes_out) fail(op, "codes_out given with need_codes=False");
  py::object codes = py::none();
  uint8_t* pc = nullptr;
  if (need_codes) {
    py::array a = output_array<uint8_t>(op, "codes_out", codes_out, shape);
    pc = static_cast<uint8_t*>(a.mutable_data());
    codes = a;
  }
  float* py_ = static_cast<float*>(y.mutable_data());
  const int nthreads = fastdl::cpu::get_num_threads();
  auto ws = workspace(fastdl::cpu::conv2d_relu_maxpool2x2_forward_workspace_floats(cp, nthreads));
  {
    py::gil_scoped_release release;
    fastdl::cpu::conv2d_relu_maxpool2x2_forward(py_, pc, px, pw, pb, cp, ws.get(), nthreads);
  }
  return py::make_tuple(y, codes);
}

// dy, codes, y (N, K, P / 2, Q / 2) from the forward; x, w as given to it -> (dx, dw, db).
py::tuple conv2d_relu_maxpool2x2_backward(const py::array& dy, const py::array& codes,
                                          const py::array& y, const py::array& x,
                                          const py::array& w, int64_t stride_h,
                                          int64_t stride_w, int64_t pad_h, int64_t pad_w,
                                          bool need_dx, bool need_dw, bool need_db,
                                          const std::string& algorithm) {
  const char* op = "conv2d_relu_maxpool2x2_backward";
  const float* pdy = in_ptr<float>(op, "dy", dy, 4);
  const uint8_t* pc = in_ptr<uint8_t>(op, "codes", codes, 4);
  const float* py_ = in_ptr<float>(op, "y", y, 4);
  const ConvInputs in = conv_inputs(op, x, w, stride_h, stride_w, pad_h, pad_w, algorithm);
  const float *px = in.x, *pw = in.w;
  const fastdl::cpu::Conv2dParams& cp = in.cp;
  const std::array<int64_t, 4> shape = pooled_shape(op, cp);
  for (int d = 0; d < 4; ++d) {
    if (dy.shape(d) != shape[d]) {
      fail(op, "dy must have shape (", shape[0], ", ", shape[1], ", ", shape[2], ", ", shape[3],
           ") for x ", shape_str(x), " and w ", shape_str(w), ", got ", shape_str(dy));
    }
  }
  check_same_shape(op, "dy", dy, "codes", codes);
  check_same_shape(op, "dy", dy, "y", y);
  Gradients g(cp, need_dx, need_dw, need_db);
  const int nthreads = fastdl::cpu::get_num_threads();
  auto ws = workspace(fastdl::cpu::conv2d_relu_maxpool2x2_backward_workspace_floats(
      cp, need_dx, need_dw, nthreads));
  int64_t bad = 0;
  {
    py::gil_scoped_release release;
    bad = fastdl::cpu::conv2d_relu_maxpool2x2_backward(g.pdx, g.pdw, g.pdb, pdy, pc, py_, px, pw,
                                                       cp, ws.get(), nthreads);
  }
  if (bad) fail(op, bad, " codes are not 0..3 (not from the forward?)");
  return g.tuple();
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
  m.def("conv2d_relu_maxpool2x2_forward", &conv2d_relu_maxpool2x2_forward, py::arg("x"),
        py::arg("w"), py::arg("b"), py::arg("stride_h"), py::arg("stride_w"), py::arg("pad_h"),
        py::arg("pad_w"), py::arg("y_out") = py::none(), py::arg("codes_out") = py::none(),
        py::arg("need_codes") = true, py::arg("algorithm") = "auto",
        "(y, codes) (N, K, P // 2, Q // 2): 2x2 stride-2 max pooling of relu(conv2d(x, w) + b); "
        "codes (uint8) the argmax's place in its window (0..3, row-major), None when need_codes "
        "is False; written into y_out and codes_out when given.");
  m.def("conv2d_relu_maxpool2x2_backward", &conv2d_relu_maxpool2x2_backward, py::arg("dy"),
        py::arg("codes"), py::arg("y"), py::arg("x"), py::arg("w"), py::arg("stride_h"),
        py::arg("stride_w"), py::arg("pad_h"), py::arg("pad_w"), py::arg("need_dx"),
        py::arg("need_dw"), py::arg("need_db"), py::arg("algorithm") = "auto",
        "(dx, dw, db) of the fused block: conv2d_backward of dy placed at each code's place "
        "where y > 0 (zeros elsewhere); None where not needed.");
}

}  // namespace fastdl::bindings
