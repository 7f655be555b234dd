// Bindings of the cross_entropy kernels (csrc/cpu/cross_entropy.cpp).
#include <optional>

#include "bindings/common.h"
#include "cpu/cross_entropy.h"

namespace fastdl::bindings {

namespace {

using fastdl::cpu::Reduction;

Reduction parse_reduction(const char* op, const std::string& reduction) {
  if (reduction == "none") return Reduction::kNone;
  if (reduction == "sum") return Reduction::kSum;
  if (reduction == "mean") return Reduction::kMean;
  fail(op, "reduction must be 'none', 'sum' or 'mean', got '", reduction, "'");
}

// The target is one of: int64 class indices (N,), or float32 class probabilities (N, C).
struct Target {
  const int64_t* indices = nullptr;
  const float* probs = nullptr;
};

// target is (N,) int64 or (N,C) float32, where `reference` is the (N, C) array it goes with.
Target check_target(const char* op, const py::array& target, const char* ref_name,
                    const py::array& reference) {
  Target t;
  if (target.dtype().is(py::dtype::of<int64_t>())) {
    t.indices = in_ptr<int64_t>(op, "target", target, 1);
    if (target.shape(0) != reference.shape(0)) {
      fail(op, "target of class indices must have shape (", reference.shape(0), ",) to match ",
           ref_name, " of shape ", shape_str(reference), ", got ", shape_str(target));
    }
  } else if (target.dtype().is(py::dtype::of<float>())) {
    t.probs = in_ptr<float>(op, "target", target, 2);
    check_same_shape(op, "target of class probabilities", target, ref_name, reference);
  } else {
    fail(op, "target must be int64 class indices or float32 class probabilities, got ",
         std::string(py::str(target.dtype())));
  }
  return t;
}

// weight is None or (C,) float32.
const float* check_weight(const char* op, const std::optional<py::array>& weight, int64_t C) {
  if (!weight) return nullptr;
  const float* pw = in_ptr<float>(op, "weight", *weight, 1);
  if (weight->shape(0) != C) {
    fail(op, "weight must have shape (", C, ",) (one per class), got ", shape_str(*weight));
  }
  return pw;
}

[[noreturn]] void fail_target(const char* op, const int64_t* target, int64_t row, int64_t C,
                              int64_t ignore_index) {
  fail(op, "target ", target[row], " is out of range for ", C, " classes (sample ", row,
       "; ignore_index is ", ignore_index, ")");
}

// What both passes check: the (N, C) float32 array `name` (logits or log_probs, C >= 1), the
// target and weight that go with it, and the reduction.
struct Args {
  const float* x;
  int64_t N, C;
  Target t;
  const float* weight;
  Reduction r;
};

Args check_args(const char* op, const char* name, const py::array& x, const py::array& target,
                const std::optional<py::array>& weight, const std::string& reduction) {
  Args a;
  a.x = in_ptr<float>(op, name, x, 2);
  a.N = x.shape(0), a.C = x.shape(1);
  if (a.C < 1) fail(op, name, " must have at least one class, got shape ", shape_str(x));
  a.t = check_target(op, target, name, x);
  a.weight = check_weight(op, weight, a.C);
  a.r = parse_reduction(op, reduction);
  return a;
}

// logits is (N,C); returns loss ((N,) or 0-d) and log_probs (N,C).
py::tuple cross_entropy_forward(const py::array& logits, const py::array& target,
                                const std::optional<py::array>& weight,
                                const std::string& reduction, int64_t ignore_index) {
  const char* op = "cross_entropy_forward";
  const auto [px, N, C, t, pw, r] = check_args(op, "logits", logits, target, weight, reduction);

  py::array_t<float> loss = r == Reduction::kNone ? py::array_t<float>({N})
                                                  : py::array_t<float>(std::vector<py::ssize_t>{});
  py::array_t<float> log_probs({N, C});
  float* pl = loss.mutable_data();
  float* plp = log_probs.mutable_data();
  int64_t bad = -1;
  {
    py::gil_scoped_release release;
    if (t.indices) {
      bad = fastdl::cpu::cross_entropy_forward(pl, plp, px, t.indices, pw, N, C, r, ignore_index);
    } else {
      fastdl::cpu::cross_entropy_forward(pl, plp, px, t.probs, pw, N, C, r);
    }
  }
  if (bad >= 0) fail_target(op, t.indices, bad, C, ignore_index);
  return py::make_tuple(loss, log_probs);
}

// dloss is (N,) for "none", else 0-d; log_probs is (N,C); returns dlogits (N,C).
py::array_t<float> cross_entropy_backward(const py::array& dloss, const py::array& log_probs,
                                          const py::array& target,
                                          const std::optional<py::array>& weight,
                                          const std::string& reduction, int64_t ignore_index) {
  const char* op = "cross_entropy_backward";
  const auto [plp, N, C, t, pw, r] =
      check_args(op, "log_probs", log_probs, target, weight, reduction);
  const float* pd = in_ptr<float>(op, "dloss", dloss);
  if (r == Reduction::kNone && !(dloss.ndim() == 1 && dloss.shape(0) == N)) {
    fail(op, "dloss must have shape (", N, ",) for reduction 'none', got ", shape_str(dloss));
  }
  if (r != Reduction::kNone && dloss.ndim() != 0) {
    fail(op, "dloss must be 0-d for reduction '", reduction, "', got shape ", shape_str(dloss));
  }

  py::array_t<float> dlogits({N, C});
  float* pdl = dlogits.mutable_data();
  int64_t bad = -1;
  {
    py::gil_scoped_release release;
    if (t.indices) {
      bad = fastdl::cpu::cross_entropy_backward(pdl, pd, plp, t.indices, pw, N, C, r,
                                                ignore_index);
    } else {
      fastdl::cpu::cross_entropy_backward(pdl, pd, plp, t.probs, pw, N, C, r);
    }
  }
  if (bad >= 0) fail_target(op, t.indices, bad, C, ignore_index);
  return dlogits;
}

}  // namespace

void bind_cross_entropy(py::module_& m) {
  m.def("cross_entropy_forward", &cross_entropy_forward, py::arg("logits"), py::arg("target"),
        py::arg("weight") = py::none(), py::arg("reduction") = "mean",
        py::arg("ignore_index") = -100,
        "(loss, log_probs) of softmax cross-entropy over logits (N, C) float32; target is int64 "
        "class indices (N,) or float32 class probabilities (N, C); weight is None or (C,).");
  m.def("cross_entropy_backward", &cross_entropy_backward, py::arg("dloss"), py::arg("log_probs"),
        py::arg("target"), py::arg("weight") = py::none(), py::arg("reduction") = "mean",
        py::arg("ignore_index") = -100,
        "dlogits (N, C) of softmax cross-entropy, from the forward's log_probs and the upstream "
        "dloss ((N,) for 'none', else 0-d).");
}

}  // namespace fastdl::bindings
