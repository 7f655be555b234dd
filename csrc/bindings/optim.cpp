// Bindings of the optim kernels (csrc/cpu/optim.cpp).
//
// Each takes lists of arrays, one entry per parameter, updated in place: every entry must be
// a float32, C-contiguous ndarray (never converted, which would update a copy), the written
// ones writeable, each the same shape as its parameter, and no written array may share memory
// with another array of the call (the kernel's threads would race on it).
#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <iterator>
#include <utility>

#include "bindings/common.h"
#include "cpu/optim.h"

namespace fastdl::bindings {

namespace {

// The arrays of one list argument, checked and turned into pointers.
struct ArrayList {
  std::vector<py::array> arrays;  // keeps the references alive while the kernel runs
  std::vector<float*> data;
};

// `list` is a list or tuple of float32 C-contiguous arrays; `like`, when given, holds the
// parameters each entry must match in shape.
ArrayList check_list(const char* op, const char* name, const py::object& list, bool written,
                     const ArrayList* like) {
  if (!py::isinstance<py::list>(list) && !py::isinstance<py::tuple>(list)) {
    fail(op, name, " must be a list of arrays, got ", std::string(py::str(py::type::of(list))));
  }
  ArrayList out;
  const py::sequence seq = py::reinterpret_borrow<py::sequence>(list);
  const size_t n = py::len(seq);
  if (like && n != like->arrays.size()) {
    fail(op, name, " must have one entry per parameter (", like->arrays.size(), "), got ", n);
  }
  for (size_t j = 0; j < n; ++j) {
    const std::string item = std::string(name) + "[" + std::to_string(j) + "]";
    py::object obj = seq[j];
    if (!py::isinstance<py::array>(obj)) {
      fail(op, item.c_str(), " must be a NumPy array, got ",
           std::string(py::str(py::type::of(obj))));
    }
    py::array a = py::reinterpret_borrow<py::array>(obj);
    float* p = written ? out_ptr<float>(op, item.c_str(), a)
                       : const_cast<float*>(in_ptr<float>(op, item.c_str(), a));
    if (like) {
      const std::string param = "params[" + std::to_string(j) + "]";
      check_same_shape(op, item.c_str(), a, param.c_str(), like->arrays[j]);
    }
    out.arrays.push_back(a);
    out.data.push_back(p);
  }
  return out;
}

// The two lists every step takes, checked: params (written) and grads (read, one per
// parameter and of its shape), with the sizes and gradient pointers the kernels take.
struct ParamsAndGrads {
  ArrayList params, grads;
  std::vector<int64_t> sizes;
  std::vector<const float*> grad_ptrs;
};

ParamsAndGrads check_params_and_grads(const char* op, const py::object& params,
                                      const py::object& grads) {
  ParamsAndGrads out;
  out.params = check_list(op, "params", params, true, nullptr);
  out.grads = check_list(op, "grads", grads, false, &out.params);
  out.sizes.reserve(out.params.arrays.size());
  for (const py::array& a : out.params.arrays) out.sizes.push_back(a.size());
  out.grad_ptrs.assign(out.grads.data.begin(), out.grads.data.end());
  return out;
}

// Fails when a written array overlaps any other array of the call: params and every state list
// (each with its name) are written, grads only read.
void check_no_overlap(const char* op, const ParamsAndGrads& pg,
                      std::initializer_list<std::pair<const char*, const ArrayList*>> states) {
  struct Span {
    uintptr_t begin, end;
    const char* name;
    size_t j;
  };
  std::vector<Span> written, read;
  auto add = [&](const char* name, const ArrayList& list, bool is_written) {
    for (size_t j = 0; j < list.arrays.size(); ++j) {
      const uintptr_t begin = reinterpret_cast<uintptr_t>(list.data[j]);
      const uintptr_t bytes = static_cast<uintptr_t>(list.arrays[j].nbytes());
      if (bytes == 0) continue;
      (is_written ? written : read).push_back({begin, begin + bytes, name, j});
    }
  };
  add("params", pg.params, true);
  add("grads", pg.grads, false);
  for (const auto& [name, list] : states) add(name, *list, true);
  auto by_begin = [](const Span& a, const Span& b) { return a.begin < b.begin; };
  std::sort(written.begin(), written.end(), by_begin);
  auto fail_overlap = [op](const Span& a, const Span& b) {
    fail(op, a.name, "[", a.j, "] and ", b.name, "[", b.j,
         "] share memory; every written array must be separate");
  };
  // Sorted by start, written spans are disjoint iff each starts after the previous ends.
  for (size_t i = 1; i < written.size(); ++i) {
    if (written[i].begin < written[i - 1].end) fail_overlap(written[i - 1], written[i]);
  }
  // A read span overlaps a written one iff the last written span starting before its end
  // reaches past its start.
  for (const Span& r : read) {
    auto it = std::lower_bound(written.begin(), written.end(), r.end,
                               [](const Span& w, uintptr_t end) { return w.begin < end; });
    if (it != written.begin() && std::prev(it)->end > r.begin) fail_overlap(*std::prev(it), r);
  }
}

// A list the kernel uses only in some modes: checked when `needed` or when given non-empty;
// None or an empty list otherwise gives no arrays.
ArrayList optional_list(const char* op, const char* name, const py::object& list, bool needed,
                        const ArrayList& like) {
  const bool is_sequence = py::isinstance<py::list>(list) || py::isinstance<py::tuple>(list);
  const bool empty = list.is_none() || (is_sequence && py::len(list) == 0);
  if (!needed && empty) return ArrayList();
  return check_list(op, name, list, true, &like);
}

// Fails unless lo <= value (<= or < hi); NaN always fails.
void check_range(const char* op, const char* name, double value, double lo, double hi = INFINITY,
                 bool hi_open = false) {
  const bool ok = value >= lo && (hi_open ? value < hi : value <= hi);
  if (ok) return;
  if (std::isinf(hi)) fail(op, name, " must be >= ", lo, ", got ", value);
  fail(op, name, " must be in [", lo, ", ", hi, hi_open ? ")" : "]", ", got ", value);
}

// The step count and the hyperparameters Adam and NAdam share.
void check_adam_like(const char* op, int64_t step, double lr, double beta1, double beta2,
                     double eps) {
  if (step < 1) fail(op, "step must be >= 1 (the count after incrementing), got ", step);
  check_range(op, "lr", lr, 0.0);
  check_range(op, "beta1", beta1, 0.0, 1.0, true);
  check_range(op, "beta2", beta2, 0.0, 1.0, true);
  check_range(op, "eps", eps, 0.0);
}

// The five bindings below share one shape (check the numbers and the lists, fill the op's
// options, run the kernel without the GIL); the shared steps are the helpers above, and what is
// left is each op's own arguments and options struct.
void sgd_step(const py::object& params, const py::object& grads,
              const py::object& momentum_buffers, double lr, double momentum, double dampening,
              bool nesterov, double weight_decay, bool maximize, bool first_step) {
  const char* op = "sgd_step";
  check_range(op, "lr", lr, 0.0);
  check_range(op, "momentum", momentum, 0.0);
  check_range(op, "weight_decay", weight_decay, 0.0);
  if (!std::isfinite(dampening)) fail(op, "dampening must be finite, got ", dampening);
  if (nesterov && (momentum <= 0.0 || dampening != 0.0)) {
    fail(op, "nesterov needs momentum > 0 and dampening == 0, got momentum ", momentum,
         " and dampening ", dampening);
  }
  const ParamsAndGrads pg = check_params_and_grads(op, params, grads);
  // NOTE: momentum_buffers may be empty (or None) when momentum == 0: PyTorch keeps none then.
  const ArrayList b =
      optional_list(op, "momentum_buffers", momentum_buffers, momentum != 0.0, pg.params);
  check_no_overlap(op, pg, {{"momentum_buffers", &b}});

  fastdl::cpu::SgdOptions opt;
  opt.lr = static_cast<float>(lr);
  opt.momentum = static_cast<float>(momentum);
  opt.dampening = static_cast<float>(dampening);
  opt.weight_decay = static_cast<float>(weight_decay);
  opt.nesterov = nesterov;
  opt.maximize = maximize;
  opt.first_step = first_step;
  {
    py::gil_scoped_release release;
    fastdl::cpu::sgd_step(pg.params.data.data(), pg.grad_ptrs.data(),
                          momentum != 0.0 ? b.data.data() : nullptr, pg.sizes.data(),
                          static_cast<int64_t>(pg.sizes.size()), opt);
  }
}

void adam_step(const py::object& params, const py::object& grads, const py::object& exp_avgs,
               const py::object& exp_avg_sqs, int64_t step, double lr, double beta1,
               double beta2, double eps, double weight_decay, bool decoupled, bool maximize,
               const py::object& max_exp_avg_sqs) {
  const char* op = "adam_step";
  check_adam_like(op, step, lr, beta1, beta2, eps);
  check_range(op, "weight_decay", weight_decay, 0.0);
  const ParamsAndGrads pg = check_params_and_grads(op, params, grads);
  const ArrayList m = check_list(op, "exp_avgs", exp_avgs, true, &pg.params);
  const ArrayList v = check_list(op, "exp_avg_sqs", exp_avg_sqs, true, &pg.params);
  // NOTE: None means no AMSGrad; an empty list is AMSGrad over no parameters.
  const bool amsgrad = !max_exp_avg_sqs.is_none();
  const ArrayList vmax =
      optional_list(op, "max_exp_avg_sqs", max_exp_avg_sqs, amsgrad, pg.params);
  check_no_overlap(op, pg, {{"exp_avgs", &m}, {"exp_avg_sqs", &v}, {"max_exp_avg_sqs", &vmax}});

  fastdl::cpu::AdamOptions opt;
  opt.lr = lr;
  opt.beta1 = beta1;
  opt.beta2 = beta2;
  opt.eps = eps;
  opt.weight_decay = weight_decay;
  opt.step = step;
  opt.decoupled = decoupled;
  opt.maximize = maximize;
  {
    py::gil_scoped_release release;
    fastdl::cpu::adam_step(pg.params.data.data(), pg.grad_ptrs.data(), m.data.data(),
                           v.data.data(), amsgrad ? vmax.data.data() : nullptr, pg.sizes.data(),
                           static_cast<int64_t>(pg.sizes.size()), opt);
  }
}

void rmsprop_step(const py::object& params, const py::object& grads,
                  const py::object& square_avgs, const py::object& grad_avgs,
                  const py::object& momentum_buffers, double lr, double alpha, double eps,
                  double weight_decay, double momentum, bool centered, bool maximize) {
  const char* op = "rmsprop_step";
  check_range(op, "lr", lr, 0.0);
  check_range(op, "alpha", alpha, 0.0);
  check_range(op, "eps", eps, 0.0);
  check_range(op, "weight_decay", weight_decay, 0.0);
  check_range(op, "momentum", momentum, 0.0);
  const ParamsAndGrads pg = check_params_and_grads(op, params, grads);
  const ArrayList sq = check_list(op, "square_avgs", square_avgs, true, &pg.params);
  // NOTE: grad_avgs may be empty (or None) unless centered, momentum_buffers when
  // momentum == 0: PyTorch keeps neither then.
  const ArrayList ga = optional_list(op, "grad_avgs", grad_avgs, centered, pg.params);
  const ArrayList b =
      optional_list(op, "momentum_buffers", momentum_buffers, momentum > 0.0, pg.params);
  check_no_overlap(op, pg, {{"square_avgs", &sq}, {"grad_avgs", &ga}, {"momentum_buffers", &b}});

  fastdl::cpu::RmspropOptions opt;
  opt.lr = static_cast<float>(lr);
  opt.alpha = static_cast<float>(alpha);
  opt.eps = static_cast<float>(eps);
  opt.weight_decay = static_cast<float>(weight_decay);
  opt.momentum = static_cast<float>(momentum);
  opt.centered = centered;
  opt.maximize = maximize;
  {
    py::gil_scoped_release release;
    fastdl::cpu::rmsprop_step(pg.params.data.data(), pg.grad_ptrs.data(), sq.data.data(),
                              centered ? ga.data.data() : nullptr,
                              momentum > 0.0 ? b.data.data() : nullptr, pg.sizes.data(),
                              static_cast<int64_t>(pg.sizes.size()), opt);
  }
}

void adagrad_step(const py::object& params, const py::object& grads,
                  const py::object& state_sums, int64_t step, double lr, double lr_decay,
                  double weight_decay, double eps, bool maximize) {
  const char* op = "adagrad_step";
  if (step < 1) fail(op, "step must be >= 1 (the count after incrementing), got ", step);
  check_range(op, "lr", lr, 0.0);
  check_range(op, "lr_decay", lr_decay, 0.0);
  check_range(op, "weight_decay", weight_decay, 0.0);
  check_range(op, "eps", eps, 0.0);
  const ParamsAndGrads pg = check_params_and_grads(op, params, grads);
  const ArrayList s = check_list(op, "state_sums", state_sums, true, &pg.params);
  check_no_overlap(op, pg, {{"state_sums", &s}});

  fastdl::cpu::AdagradOptions opt;
  opt.lr = lr;
  opt.lr_decay = lr_decay;
  opt.weight_decay = weight_decay;
  opt.eps = eps;
  opt.step = step;
  opt.maximize = maximize;
  {
    py::gil_scoped_release release;
    fastdl::cpu::adagrad_step(pg.params.data.data(), pg.grad_ptrs.data(), s.data.data(),
                              pg.sizes.data(), static_cast<int64_t>(pg.sizes.size()), opt);
  }
}

void nadam_step(const py::object& params, const py::object& grads, const py::object& exp_avgs,
                const py::object& exp_avg_sqs, int64_t step, double lr, double beta1,
                double beta2, double eps, double mu_product, double weight_decay,
                double momentum_decay, bool decoupled, bool maximize) {
  const char* op = "nadam_step";
  check_adam_like(op, step, lr, beta1, beta2, eps);
  check_range(op, "mu_product", mu_product, 0.0, 1.0, true);
  check_range(op, "weight_decay", weight_decay, 0.0);
  check_range(op, "momentum_decay", momentum_decay, 0.0);
  const ParamsAndGrads pg = check_params_and_grads(op, params, grads);
  const ArrayList m = check_list(op, "exp_avgs", exp_avgs, true, &pg.params);
  const ArrayList v = check_list(op, "exp_avg_sqs", exp_avg_sqs, true, &pg.params);
  check_no_overlap(op, pg, {{"exp_avgs", &m}, {"exp_avg_sqs", &v}});

  fastdl::cpu::NadamOptions opt;
  opt.lr = lr;
  opt.beta1 = beta1;
  opt.beta2 = beta2;
  opt.eps = eps;
  opt.weight_decay = weight_decay;
  opt.momentum_decay = momentum_decay;
  opt.mu_product = mu_product;
  opt.step = step;
  opt.decoupled = decoupled;
  opt.maximize = maximize;
  {
    py::gil_scoped_release release;
    fastdl::cpu::nadam_step(pg.params.data.data(), pg.grad_ptrs.data(), m.data.data(),
                            v.data.data(), pg.sizes.data(), static_cast<int64_t>(pg.sizes.size()),
                            opt);
  }
}

}  // namespace

void bind_optim(py::module_& m) {
  m.def("sgd_step", &sgd_step, py::arg("params"), py::arg("grads"), py::arg("momentum_buffers"),
        py::arg("lr"), py::arg("momentum") = 0.0, py::arg("dampening") = 0.0,
        py::arg("nesterov") = false, py::arg("weight_decay") = 0.0, py::arg("maximize") = false,
        py::arg("first_step") = false,
        "One in-place SGD step over lists of float32 arrays (PyTorch's SGD semantics).");
  m.def("adam_step", &adam_step, py::arg("params"), py::arg("grads"), py::arg("exp_avgs"),
        py::arg("exp_avg_sqs"), py::arg("step"), py::arg("lr"), py::arg("beta1"),
        py::arg("beta2"), py::arg("eps"), py::arg("weight_decay") = 0.0,
        py::arg("decoupled") = false, py::arg("maximize") = false,
        py::arg("max_exp_avg_sqs") = py::none(),
        "One in-place Adam (decoupled=False) or AdamW (decoupled=True) step over lists of "
        "float32 arrays; step is the count after incrementing; max_exp_avg_sqs for AMSGrad.");
  m.def("rmsprop_step", &rmsprop_step, py::arg("params"), py::arg("grads"),
        py::arg("square_avgs"), py::arg("grad_avgs"), py::arg("momentum_buffers"), py::arg("lr"),
        py::arg("alpha"), py::arg("eps"), py::arg("weight_decay") = 0.0,
        py::arg("momentum") = 0.0, py::arg("centered") = false, py::arg("maximize") = false,
        "One in-place RMSprop step over lists of float32 arrays (PyTorch's semantics).");
  m.def("adagrad_step", &adagrad_step, py::arg("params"), py::arg("grads"),
        py::arg("state_sums"), py::arg("step"), py::arg("lr"), py::arg("lr_decay") = 0.0,
        py::arg("weight_decay") = 0.0, py::arg("eps") = 1e-10, py::arg("maximize") = false,
        "One in-place Adagrad step over lists of float32 arrays; step is the count after "
        "incrementing.");
  m.def("nadam_step", &nadam_step, py::arg("params"), py::arg("grads"), py::arg("exp_avgs"),
        py::arg("exp_avg_sqs"), py::arg("step"), py::arg("lr"), py::arg("beta1"),
        py::arg("beta2"), py::arg("eps"), py::arg("mu_product"), py::arg("weight_decay") = 0.0,
        py::arg("momentum_decay") = 4e-3, py::arg("decoupled") = false,
        py::arg("maximize") = false,
        "One in-place NAdam step over lists of float32 arrays; step is the count after "
        "incrementing, mu_product the product of mu over steps 1..step.");
}

}  // namespace fastdl::bindings
