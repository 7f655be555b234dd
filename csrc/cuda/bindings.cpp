// Bindings of the CUDA kernels (csrc/cuda/*.cu): the _C.cuda submodule, built with FASTDL_CUDA=ON.
//
// As csrc/bindings/ do for the CPU, they only adapt: each array argument is a CUDA array (CuPy's,
// read through __cuda_array_interface__), checked for dtype, C-contiguity, number of dimensions,
// shape agreement and device (the current one); outputs and scratch come allocated from Python
// (CuPy's memory pool), and the kernels run on the stream handle Python passes (CuPy's current
// stream). Errors are ValueError/TypeError "[op] ..." as on the CPU; a CUDA error is a
// RuntimeError naming the op.
#include <algorithm>
#include <string>
#include <vector>

#include "bindings/common.h"
#include "cpu/optim.h"
#include "cuda/cuda.h"

namespace fastdl::cuda {

namespace {

namespace py = pybind11;
using fastdl::bindings::checked_product;
using fastdl::bindings::fail;

struct DeviceArray {
  void* ptr = nullptr;
  std::vector<int64_t> shape;
  int64_t size = 0;

  float* f() const { return static_cast<float*>(ptr); }
  std::string shape_str() const {
    std::string s = "(";
    for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + (shape.size() == 1 ? ",)" : ")");
  }
};

enum class Kind { kFloat32, kInt64 };

// `obj` as a C-contiguous CUDA array of `kind` on the current device (ndim dimensions unless
// ndim < 0); `written` arrays must not be read-only.
DeviceArray device_array(const char* op, const std::string& name, const py::handle& obj, Kind kind,
                         int ndim, bool written = false) {
  if (!py::hasattr(obj, "__cuda_array_interface__")) {
    fail(op, name, " must be a CUDA array (a CuPy array), got ",
         std::string(py::str(py::type::of(obj).attr("__name__"))));
  }
  const py::dict cai = obj.attr("__cuda_array_interface__");
  const std::string typestr = py::str(cai["typestr"]);
  const char* want = kind == Kind::kFloat32 ? "<f4" : "<i8";
  if (typestr != want) {
    fail(op, name, " must be ", kind == Kind::kFloat32 ? "float32" : "int64", " (typestr ", want,
         "), got typestr ", typestr);
  }
  DeviceArray a;
  for (const py::handle d : py::tuple(cai["shape"])) a.shape.push_back(d.cast<int64_t>());
  if (ndim >= 0 && static_cast<int>(a.shape.size()) != ndim) {
    fail(op, name, " must have ", ndim, " dimensions, got ", a.shape.size(), " with shape ",
         a.shape_str());
  }
  a.size = 1;
  for (int64_t d : a.shape) a.size = checked_product(op, name.c_str(), a.size, d);
  const py::tuple data = cai["data"];
  a.ptr = reinterpret_cast<void*>(data[0].cast<uintptr_t>());
  if (written && data[1].cast<bool>()) fail(op, name, " must be writeable");
  const int64_t item = kind == Kind::kFloat32 ? 4 : 8;
  if (cai.contains("strides") && !cai["strides"].is_none() && a.size > 0) {
    int64_t expect = item;
    const py::tuple strides = cai["strides"];
    for (int i = static_cast<int>(a.shape.size()) - 1; i >= 0; --i) {
      if (a.shape[i] != 1 && strides[i].cast<int64_t>() != expect) {
        fail(op, name, " must be C-contiguous");
      }
      expect *= a.shape[i];
    }
  }
  if (a.size > 0) {
    if (reinterpret_cast<uintptr_t>(a.ptr) % item != 0) {
      fail(op, name, " must be aligned to its element size");
    }
    const int where = pointer_device(a.ptr);
    if (where < 0) fail(op, name, " is not in CUDA device memory (a host pointer?)");
    const int current = current_device();
    if (where != current) {
      fail(op, name, " is on cuda:", where, ", expected the current device cuda:", current);
    }
  }
  return a;
}

DeviceArray f32(const char* op, const std::string& name, const py::handle& obj, int ndim,
                bool written = false) {
  return device_array(op, name, obj, Kind::kFloat32, ndim, written);
}

void check_shape(const char* op, const char* name, const DeviceArray& a,
                 const std::vector<int64_t>& want) {
  if (a.shape != want) {
    DeviceArray w;
    w.shape = want;
    fail(op, name, " must have shape ", w.shape_str(), ", got ", a.shape_str());
  }
}

Stream as_stream(uintptr_t handle) { return reinterpret_cast<Stream>(handle); }

std::pair<int64_t, int64_t> pair(const char* op, const char* name, const py::object& v,
                                 int64_t least) {
  const auto p = v.cast<std::pair<int64_t, int64_t>>();
  if (p.first < least || p.second < least) {
    fail(op, name, " must be a pair of ints >= ", least, ", got (", p.first, ", ", p.second, ")");
  }
  return p;
}

// ---- gemm

// c (M, N) or (B, M, N) = op(a) @ op(b).
void matmul(const py::object& c_, const py::object& a_, const py::object& b_, bool trans_a,
            bool trans_b, bool tf32, uintptr_t stream) {
  const char* op = "matmul";
  const DeviceArray a = f32(op, "a", a_, -1), b = f32(op, "b", b_, -1);
  const size_t d = a.shape.size();
  if ((d != 2 && d != 3) || b.shape.size() != d) {
    fail(op, "expected two 2-D or two 3-D arrays, got ", a.shape_str(), " and ", b.shape_str());
  }
  const int64_t batch = d == 3 ? a.shape[0] : 1;
  if (d == 3 && b.shape[0] != batch) {
    fail(op, "batch sizes differ: a is ", a.shape_str(), ", b is ", b.shape_str());
  }
  const int64_t a0 = a.shape[d - 2], a1 = a.shape[d - 1], b0 = b.shape[d - 2], b1 = b.shape[d - 1];
  const int64_t M = trans_a ? a1 : a0, K = trans_a ? a0 : a1, N = trans_b ? b0 : b1;
  if ((trans_b ? b1 : b0) != K) {
    fail(op, "inner sizes differ: a is ", a.shape_str(), trans_a ? " transposed" : "", ", b is ",
         b.shape_str(), trans_b ? " transposed" : "");
  }
  const DeviceArray c = f32(op, "c", c_, static_cast<int>(d), true);
  check_shape(op, "c", c, d == 3 ? std::vector<int64_t>{batch, M, N} : std::vector<int64_t>{M, N});
  if (M > int64_t{65535} * 128) fail(op, "M = ", M, " is larger than the kernel's grid allows");
  gemm(c.f(), a.f(), b.f(), batch, M, N, K, a1, b1, N, M * K, K * N, M * N, trans_a, trans_b, tf32,
       as_stream(stream));
}

// ---- conv2d

ConvShape conv_shape(const char* op, const DeviceArray& x, const DeviceArray& w,
                     const py::object& stride, const py::object& padding) {
  const auto [sh, sw] = pair(op, "stride", stride, 1);
  const auto [ph, pw] = pair(op, "padding", padding, 0);
  ConvShape s{x.shape[0], x.shape[1], x.shape[2], x.shape[3], w.shape[0], w.shape[2], w.shape[3],
              0, 0, sh, sw, ph, pw};
  if (w.shape[1] != s.C) {
    fail(op, "expected input with ", w.shape[1], " channels (w is ", w.shape_str(), "), got ",
         s.C, " (x is ", x.shape_str(), ")");
  }
  const int64_t hp = s.H + 2 * ph - s.R, wp = s.W + 2 * pw - s.S;
  if (hp < 0 || wp < 0) {
    fail(op, "kernel ", s.R, "x", s.S, " is larger than the padded input ", s.H + 2 * ph, "x",
         s.W + 2 * pw);
  }
  s.P = hp / sh + 1;
  s.Q = wp / sw + 1;
  if (s.R * s.S == 0) fail(op, "kernel size must be >= 1, got ", s.R, "x", s.S);
  checked_product(op, "the output", s.N, s.K, s.P, s.Q);
  return s;
}

void conv2d_forward_(const py::object& y_, const py::object& x_, const py::object& w_,
                     const py::object& b_, const py::object& stride, const py::object& padding,
                     uintptr_t stream) {
  const char* op = "conv2d_forward";
  const DeviceArray x = f32(op, "x", x_, 4), w = f32(op, "w", w_, 4);
  const ConvShape s = conv_shape(op, x, w, stride, padding);
  const float* b = nullptr;
  if (!b_.is_none()) {
    const DeviceArray bias = f32(op, "b", b_, 1);
    check_shape(op, "b", bias, {s.K});
    b = bias.f();
  }
  const DeviceArray y = f32(op, "y", y_, 4, true);
  check_shape(op, "y", y, {s.N, s.K, s.P, s.Q});
  conv2d_forward(y.f(), x.f(), w.f(), b, s, as_stream(stream));
}

void conv2d_backward_(const py::object& dx_, const py::object& dw_, const py::object& db_,
                      const py::object& dy_, const py::object& x_, const py::object& w_,
                      const py::object& stride, const py::object& padding, uintptr_t stream) {
  const char* op = "conv2d_backward";
  const DeviceArray x = f32(op, "x", x_, 4), w = f32(op, "w", w_, 4), dy = f32(op, "dy", dy_, 4);
  const ConvShape s = conv_shape(op, x, w, stride, padding);
  check_shape(op, "dy", dy, {s.N, s.K, s.P, s.Q});
  float *dx = nullptr, *dw = nullptr, *db = nullptr;
  if (!dx_.is_none()) {
    const DeviceArray a = f32(op, "dx", dx_, 4, true);
    check_shape(op, "dx", a, x.shape);
    dx = a.f();
  }
  if (!dw_.is_none()) {
    const DeviceArray a = f32(op, "dw", dw_, 4, true);
    check_shape(op, "dw", a, w.shape);
    dw = a.f();
  }
  if (!db_.is_none()) {
    const DeviceArray a = f32(op, "db", db_, 1, true);
    check_shape(op, "db", a, {s.K});
    db = a.f();
  }
  conv2d_backward(dx, dw, db, dy.f(), x.f(), w.f(), s, as_stream(stream));
}

// ---- maxpool2d

void maxpool2d_forward_(const py::object& y_, const py::object& idx_, const py::object& x_,
                        const py::object& kernel, const py::object& stride,
                        const py::object& padding, uintptr_t stream) {
  const char* op = "maxpool2d_forward";
  const DeviceArray x = f32(op, "x", x_, 4);
  const auto [R, S] = pair(op, "kernel_size", kernel, 1);
  const auto [sh, sw] = pair(op, "stride", stride, 1);
  const auto [ph, pw] = pair(op, "padding", padding, 0);
  if (2 * ph > R || 2 * pw > S) {
    fail(op, "padding must be at most half the kernel size, got padding (", ph, ", ", pw,
         ") for kernel (", R, ", ", S, ")");
  }
  const int64_t H = x.shape[2], W = x.shape[3];
  if (H + 2 * ph < R || W + 2 * pw < S) {
    fail(op, "kernel ", R, "x", S, " is larger than the padded input ", H + 2 * ph, "x", W + 2 * pw);
  }
  const PoolShape s{x.shape[0] * x.shape[1], H, W, (H + 2 * ph - R) / sh + 1,
                    (W + 2 * pw - S) / sw + 1, R, S, sh, sw, ph, pw};
  const std::vector<int64_t> out{x.shape[0], x.shape[1], s.P, s.Q};
  const DeviceArray y = f32(op, "y", y_, 4, true);
  const DeviceArray idx = device_array(op, "indices", idx_, Kind::kInt64, 4, true);
  check_shape(op, "y", y, out);
  check_shape(op, "indices", idx, out);
  maxpool2d_forward(y.f(), static_cast<int64_t*>(idx.ptr), x.f(), s, as_stream(stream));
}

void maxpool2d_backward_(const py::object& dx_, const py::object& dy_, const py::object& idx_,
                         uintptr_t stream) {
  const char* op = "maxpool2d_backward";
  const DeviceArray dy = f32(op, "dy", dy_, 4), dx = f32(op, "dx", dx_, 4, true);
  const DeviceArray idx = device_array(op, "indices", idx_, Kind::kInt64, 4);
  check_shape(op, "indices", idx, dy.shape);
  if (dx.shape[0] != dy.shape[0] || dx.shape[1] != dy.shape[1]) {
    fail(op, "dx ", dx.shape_str(), " and dy ", dy.shape_str(), " must agree in N and C");
  }
  PoolShape s{};
  s.planes = dx.shape[0] * dx.shape[1];
  s.H = dx.shape[2];
  s.W = dx.shape[3];
  s.P = dy.shape[2];
  s.Q = dy.shape[3];
  maxpool2d_backward(dx.f(), dy.f(), static_cast<const int64_t*>(idx.ptr), s, as_stream(stream));
}

// ---- activations

Activation activation(const char* op, const std::string& name) {
  if (name == "relu") return Activation::kRelu;
  if (name == "sigmoid") return Activation::kSigmoid;
  if (name == "tanh") return Activation::kTanh;
  fail(op, "expected 'relu', 'sigmoid' or 'tanh', got '", name, "'");
}

void activation_forward_(const std::string& name, const py::object& y_, const py::object& x_,
                         uintptr_t stream) {
  const char* op = "activation_forward";
  const Activation act = activation(op, name);
  const DeviceArray x = f32(op, "x", x_, -1), y = f32(op, "y", y_, -1, true);
  check_shape(op, "y", y, x.shape);
  activation_forward(act, y.f(), x.f(), x.size, as_stream(stream));
}

void activation_backward_(const std::string& name, const py::object& dx_, const py::object& dy_,
                          const py::object& y_, uintptr_t stream) {
  const char* op = "activation_backward";
  const Activation act = activation(op, name);
  const DeviceArray dy = f32(op, "dy", dy_, -1), y = f32(op, "y", y_, -1);
  const DeviceArray dx = f32(op, "dx", dx_, -1, true);
  check_shape(op, "y", y, dy.shape);
  check_shape(op, "dx", dx, dy.shape);
  activation_backward(act, dx.f(), dy.f(), y.f(), dy.size, as_stream(stream));
}

// ---- cross_entropy

int reduction_code(const char* op, const std::string& r) {
  if (r == "none") return 0;
  if (r == "mean") return 1;
  if (r == "sum") return 2;
  fail(op, "reduction must be one of ('none', 'sum', 'mean'), got '", r, "'");
}

// What both passes check: the (N, C) float32 array `name` (logits or log_probs), the
// reduction, the target (int64 (N,) class indices or float32 (N, C)) and the weight (None or
// (C,)).
struct CrossEntropyArgs {
  DeviceArray x, target;
  int64_t N, C;
  int r;
  bool index;
  const float* weight = nullptr;
};

CrossEntropyArgs cross_entropy_args(const char* op, const char* name, const py::object& x_,
                                    const std::string& reduction, const py::object& target_,
                                    const py::object& weight_) {
  CrossEntropyArgs a;
  a.x = f32(op, name, x_, 2);
  a.N = a.x.shape[0], a.C = a.x.shape[1];
  a.r = reduction_code(op, reduction);
  const std::string typestr = py::str(target_.attr("__cuda_array_interface__")["typestr"]);
  a.index = typestr == "<i8";
  a.target = device_array(op, "target", target_, a.index ? Kind::kInt64 : Kind::kFloat32, -1);
  check_shape(op, "target", a.target,
              a.index ? std::vector<int64_t>{a.N} : std::vector<int64_t>{a.N, a.C});
  if (!weight_.is_none()) {
    const DeviceArray w = f32(op, "weight", weight_, 1);
    check_shape(op, "weight", w, {a.C});
    a.weight = w.f();
  }
  return a;
}

void cross_entropy_forward_(const py::object& loss_, const py::object& lp_,
                            const py::object& scratch_, const py::object& logits_,
                            const py::object& target_, const py::object& weight_,
                            const std::string& reduction, int64_t ignore_index, uintptr_t stream) {
  const char* op = "cross_entropy_forward";
  const auto [logits, target, N, C, r, index, weight] =
      cross_entropy_args(op, "logits", logits_, reduction, target_, weight_);
  const DeviceArray loss = f32(op, "loss", loss_, r == 0 ? 1 : 0, true);
  check_shape(op, "loss", loss, r == 0 ? std::vector<int64_t>{N} : std::vector<int64_t>{});
  const DeviceArray lp = f32(op, "log_probs", lp_, 2, true);
  check_shape(op, "log_probs", lp, {N, C});
  const DeviceArray scratch = f32(op, "scratch", scratch_, 1, true);
  check_shape(op, "scratch", scratch, {2 * N});
  cross_entropy_forward(loss.f(), lp.f(), scratch.f(), logits.f(), target.ptr, index, weight, N, C,
                        r, ignore_index, as_stream(stream));
}

void cross_entropy_backward_(const py::object& dlogits_, const py::object& scratch_,
                             const py::object& dloss_, const py::object& lp_,
                             const py::object& target_, const py::object& weight_,
                             const std::string& reduction, int64_t ignore_index,
                             uintptr_t stream) {
  const char* op = "cross_entropy_backward";
  const auto [lp, target, N, C, r, index, weight] =
      cross_entropy_args(op, "log_probs", lp_, reduction, target_, weight_);
  const DeviceArray dloss = f32(op, "dloss", dloss_, r == 0 ? 1 : 0);
  check_shape(op, "dloss", dloss, r == 0 ? std::vector<int64_t>{N} : std::vector<int64_t>{});
  const DeviceArray dlogits = f32(op, "dlogits", dlogits_, 2, true);
  check_shape(op, "dlogits", dlogits, {N, C});
  const DeviceArray scratch = f32(op, "scratch", scratch_, 1, true);
  check_shape(op, "scratch", scratch, {1});
  cross_entropy_backward(dlogits.f(), scratch.f(), dloss.f(), lp.f(), target.ptr, index, weight, N,
                         C, r, ignore_index, as_stream(stream));
}

// ---- optim

// One list argument: pointers and, for the first (params), the sizes every other list matches.
std::vector<float*> tensor_list(const char* op, const char* name, const py::object& list,
                                bool written, std::vector<int64_t>& sizes,
                                std::vector<std::pair<uintptr_t, uintptr_t>>& spans) {
  if (!py::isinstance<py::list>(list) && !py::isinstance<py::tuple>(list)) {
    fail(op, name, " must be a list of arrays");
  }
  const py::sequence seq = py::reinterpret_borrow<py::sequence>(list);
  const bool first = sizes.empty() && std::string(name) == "params";
  if (!first && py::len(seq) != sizes.size()) {
    fail(op, name, " must have one entry per parameter (", sizes.size(), "), got ", py::len(seq));
  }
  std::vector<float*> out;
  for (size_t j = 0; j < py::len(seq); ++j) {
    const std::string item = std::string(name) + "[" + std::to_string(j) + "]";
    const DeviceArray a = f32(op, item, seq[j], -1, written);
    if (first) {
      sizes.push_back(a.size);
    } else if (a.size != sizes[j]) {
      fail(op, item, " has ", a.size, " elements, params[", j, "] has ", sizes[j]);
    }
    if (a.size > 0) {
      const auto begin = reinterpret_cast<uintptr_t>(a.ptr);
      spans.emplace_back(begin, begin + 4 * static_cast<uintptr_t>(a.size));
    }
    out.push_back(a.f());
  }
  return out;
}

// Every array of an optimizer call is separate (a shared one would be updated twice).
void check_separate(const char* op, std::vector<std::pair<uintptr_t, uintptr_t>> spans) {
  std::sort(spans.begin(), spans.end());
  for (size_t i = 1; i < spans.size(); ++i) {
    if (spans[i].first < spans[i - 1].second) fail(op, "two of the arrays share memory");
  }
}

void sgd_step_(const py::object& params, const py::object& grads, const py::object& bufs,
               float lr, float momentum, float dampening, bool nesterov, float weight_decay,
               bool maximize, bool first_step, uintptr_t stream) {
  const char* op = "sgd_step";
  std::vector<int64_t> sizes;
  std::vector<std::pair<uintptr_t, uintptr_t>> spans;
  const auto p = tensor_list(op, "params", params, true, sizes, spans);
  const auto g = tensor_list(op, "grads", grads, false, sizes, spans);
  std::vector<float*> b;
  if (momentum != 0.0f) b = tensor_list(op, "momentum_buffers", bufs, true, sizes, spans);
  check_separate(op, spans);
  fastdl::cpu::SgdOptions o;
  o.lr = lr, o.momentum = momentum, o.dampening = dampening, o.weight_decay = weight_decay;
  o.nesterov = nesterov, o.maximize = maximize, o.first_step = first_step;
  sgd_step(p.data(), const_cast<const float* const*>(g.data()), b.empty() ? nullptr : b.data(),
           sizes.data(), static_cast<int64_t>(sizes.size()), o, as_stream(stream));
}

void adam_step_(const py::object& params, const py::object& grads, const py::object& m,
                const py::object& v, const py::object& vmax, int64_t step, double lr,
                double beta1, double beta2, double eps, double weight_decay, bool decoupled,
                bool maximize, uintptr_t stream) {
  const char* op = "adam_step";
  if (step < 1) fail(op, "step must be >= 1, got ", step);
  std::vector<int64_t> sizes;
  std::vector<std::pair<uintptr_t, uintptr_t>> spans;
  const auto p = tensor_list(op, "params", params, true, sizes, spans);
  const auto g = tensor_list(op, "grads", grads, false, sizes, spans);
  const auto pm = tensor_list(op, "exp_avgs", m, true, sizes, spans);
  const auto pv = tensor_list(op, "exp_avg_sqs", v, true, sizes, spans);
  std::vector<float*> pmax;
  if (!vmax.is_none()) pmax = tensor_list(op, "max_exp_avg_sqs", vmax, true, sizes, spans);
  check_separate(op, spans);
  fastdl::cpu::AdamOptions o;
  o.lr = lr, o.beta1 = beta1, o.beta2 = beta2, o.eps = eps, o.weight_decay = weight_decay;
  o.step = step, o.decoupled = decoupled, o.maximize = maximize;
  adam_step(p.data(), const_cast<const float* const*>(g.data()), pm.data(), pv.data(),
            vmax.is_none() ? nullptr : pmax.data(), sizes.data(),
            static_cast<int64_t>(sizes.size()), o, as_stream(stream));
}

}  // namespace

void bind_cuda(py::module_& m) {
  py::module_ c = m.def_submodule("cuda", "fastdl's CUDA kernels (private: use fastdl.backends.cuda)");
  c.def("synchronize", &synchronize);
  c.def("device_info", [](int device) {
    const DeviceInfo info = device_info(device);
    py::dict d;
    d["name"] = std::string(info.name);
    d["capability"] = py::make_tuple(info.major, info.minor);
    d["multiprocessors"] = info.multiprocessors;
    d["runtime_version"] = info.runtime_version;
    d["driver_version"] = info.driver_version;
    return d;
  });
  const auto s = py::arg("stream");
  c.def("matmul", &matmul, py::arg("c"), py::arg("a"), py::arg("b"), py::arg("trans_a"),
        py::arg("trans_b"), py::arg("tf32"), s);
  c.def("conv2d_forward", &conv2d_forward_, py::arg("y"), py::arg("x"), py::arg("w"),
        py::arg("b"), py::arg("stride"), py::arg("padding"), s);
  c.def("conv2d_backward", &conv2d_backward_, py::arg("dx"), py::arg("dw"), py::arg("db"),
        py::arg("dy"), py::arg("x"), py::arg("w"), py::arg("stride"), py::arg("padding"), s);
  c.def("maxpool2d_forward", &maxpool2d_forward_, py::arg("y"), py::arg("indices"), py::arg("x"),
        py::arg("kernel_size"), py::arg("stride"), py::arg("padding"), s);
  c.def("maxpool2d_backward", &maxpool2d_backward_, py::arg("dx"), py::arg("dy"),
        py::arg("indices"), s);
  c.def("activation_forward", &activation_forward_, py::arg("name"), py::arg("y"), py::arg("x"), s);
  c.def("activation_backward", &activation_backward_, py::arg("name"), py::arg("dx"),
        py::arg("dy"), py::arg("y"), s);
  c.def("cross_entropy_forward", &cross_entropy_forward_, py::arg("loss"), py::arg("log_probs"),
        py::arg("scratch"), py::arg("logits"), py::arg("target"), py::arg("weight"),
        py::arg("reduction"), py::arg("ignore_index"), s);
  c.def("cross_entropy_backward", &cross_entropy_backward_, py::arg("dlogits"),
        py::arg("scratch"), py::arg("dloss"), py::arg("log_probs"), py::arg("target"),
        py::arg("weight"), py::arg("reduction"), py::arg("ignore_index"), s);
  c.def("sgd_step", &sgd_step_, py::arg("params"), py::arg("grads"), py::arg("momentum_buffers"),
        py::arg("lr"), py::arg("momentum"), py::arg("dampening"), py::arg("nesterov"),
        py::arg("weight_decay"), py::arg("maximize"), py::arg("first_step"), s);
  c.def("adam_step", &adam_step_, py::arg("params"), py::arg("grads"), py::arg("exp_avgs"),
        py::arg("exp_avg_sqs"), py::arg("max_exp_avg_sqs"), py::arg("step"), py::arg("lr"),
        py::arg("beta1"), py::arg("beta2"), py::arg("eps"), py::arg("weight_decay"),
        py::arg("decoupled"), py::arg("maximize"), s);
}

}  // namespace fastdl::cuda
