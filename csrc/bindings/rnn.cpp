// Bindings of the rnn kernels (csrc/cpu/rnn.cpp): the pointwise part of LSTM and GRU steps.
#include <optional>

#include "bindings/common.h"
#include "cpu/rnn.h"

namespace fastdl::bindings {

namespace {

// The state `s` (N,H) float32, 2-D, with N * G * H within int64.
void check_state(const char* op, const char* name, const py::array& s, int64_t G) {
  check_array<float>(op, name, s, 2);
  checked_product(op, name, s.shape(0), s.shape(1), G);
}

// `a` must be (N, G*H) float32, for the state (N,H) `s` named `state`.
const float* gates_ptr(const char* op, const char* name, const py::array& a, const py::array& s,
                       const char* state, int64_t G) {
  const float* p = in_ptr<float>(op, name, a, 2);
  const int64_t N = s.shape(0), H = s.shape(1);
  if (a.shape(0) != N || a.shape(1) != G * H) {
    fail(op, name, " must have shape (", N, ", ", G * H, ") for ", state, " of shape ",
         shape_str(s), ", got ", shape_str(a));
  }
  return p;
}

// b must be None or (G*H,) float32.
const float* bias_ptr(const char* op, const std::optional<py::array>& b, int64_t G, int64_t H) {
  if (!b) return nullptr;
  const float* p = in_ptr<float>(op, "b", *b, 1);
  if (b->shape(0) != G * H) fail(op, "b must have shape (", G * H, ",), got ", shape_str(*b));
  return p;
}

// Another (N,H) array that must have the shape of `s` (named `state`).
const float* like_ptr(const char* op, const char* name, const py::array& a, const py::array& s,
                      const char* state) {
  const float* p = in_ptr<float>(op, name, a, 2);
  check_same_shape(op, name, a, state, s);
  return p;
}

// A forward step's inputs, checked: gi, gh (N, G*H), b (G*H,) or None, and the state s (N,H)
// named `state` (c for LSTM, h for GRU).
struct StepInputs {
  int64_t N, H;
  const float *gi, *gh, *b, *s;
};

StepInputs check_step(const char* op, const py::array& gi, const py::array& gh,
                      const std::optional<py::array>& b, const py::array& s, const char* state,
                      int64_t G) {
  check_state(op, state, s, 4);
  const int64_t N = s.shape(0), H = s.shape(1);
  return {N,
          H,
          gates_ptr(op, "gi", gi, s, state, G),
          gates_ptr(op, "gh", gh, s, state, G),
          bias_ptr(op, b, G, H),
          static_cast<const float*>(s.data())};
}

// gi, gh (N,4H), b (4H,) or None, c (N,H) -> (h, c_new (N,H), act (N,4H), tanh_c (N,H)).
py::tuple lstm_cell_forward(const py::array& gi, const py::array& gh,
                            const std::optional<py::array>& b, const py::array& c) {
  const char* op = "lstm_cell_forward";
  const auto [N, H, pgi, pgh, pb, pc] = check_step(op, gi, gh, b, c, "c", 4);
  py::array_t<float> h({N, H}), c_new({N, H}), act({N, 4 * H}), tanh_c({N, H});
  float *ph = h.mutable_data(), *pcn = c_new.mutable_data(), *pa = act.mutable_data(),
        *ptc = tanh_c.mutable_data();
  {
    py::gil_scoped_release release;
    fastdl::cpu::lstm_cell_forward(ph, pcn, pa, ptc, pgi, pgh, pb, pc, N, H);
  }
  return py::make_tuple(h, c_new, act, tanh_c);
}

// act (N,4H), tanh_c, c, dh, dc (or None) (N,H) -> (dgates (N,4H), dc_prev (N,H)).
py::tuple lstm_cell_backward(const py::array& act, const py::array& tanh_c, const py::array& c,
                             const py::array& dh, const std::optional<py::array>& dc) {
  const char* op = "lstm_cell_backward";
  check_state(op, "c", c, 4);
  const int64_t N = c.shape(0), H = c.shape(1);
  const float* pa = gates_ptr(op, "act", act, c, "c", 4);
  const float* ptc = like_ptr(op, "tanh_c", tanh_c, c, "c");
  const float* pdh = like_ptr(op, "dh", dh, c, "c");
  const float* pdc = dc ? like_ptr(op, "dc", *dc, c, "c") : nullptr;
  const float* pc = static_cast<const float*>(c.data());
  py::array_t<float> dgates({N, 4 * H}), dc_prev({N, H});
  float *pdg = dgates.mutable_data(), *pdcp = dc_prev.mutable_data();
  {
    py::gil_scoped_release release;
    fastdl::cpu::lstm_cell_backward(pdg, pdcp, pa, ptc, pc, pdh, pdc, N, H);
  }
  return py::make_tuple(dgates, dc_prev);
}

// gi, gh (N,3H), b (3H,) or None, h (N,H) -> (h_new (N,H), act (N,4H)).
py::tuple gru_cell_forward(const py::array& gi, const py::array& gh,
                           const std::optional<py::array>& b, const py::array& h) {
  const char* op = "gru_cell_forward";
  const auto [N, H, pgi, pgh, pb, ph] = check_step(op, gi, gh, b, h, "h", 3);
  py::array_t<float> h_new({N, H}), act({N, 4 * H});
  float *phn = h_new.mutable_data(), *pa = act.mutable_data();
  {
    py::gil_scoped_release release;
    fastdl::cpu::gru_cell_forward(phn, pa, pgi, pgh, pb, ph, N, H);
  }
  return py::make_tuple(h_new, act);
}

// act (N,4H), h, dh (N,H) -> (dgi, dgh (N,3H), dh_prev (N,H)).
py::tuple gru_cell_backward(const py::array& act, const py::array& h, const py::array& dh) {
  const char* op = "gru_cell_backward";
  check_state(op, "h", h, 4);
  const int64_t N = h.shape(0), H = h.shape(1);
  const float* pa = gates_ptr(op, "act", act, h, "h", 4);
  const float* pdh = like_ptr(op, "dh", dh, h, "h");
  const float* ph = static_cast<const float*>(h.data());
  py::array_t<float> dgi({N, 3 * H}), dgh({N, 3 * H}), dh_prev({N, H});
  float *pdi = dgi.mutable_data(), *pdg = dgh.mutable_data(), *pdhp = dh_prev.mutable_data();
  {
    py::gil_scoped_release release;
    fastdl::cpu::gru_cell_backward(pdi, pdg, pdhp, pa, ph, pdh, N, H);
  }
  return py::make_tuple(dgi, dgh, dh_prev);
}

}  // namespace

void bind_rnn(py::module_& m) {
  m.def("lstm_cell_forward", &lstm_cell_forward, py::arg("gi"), py::arg("gh"), py::arg("b"),
        py::arg("c"),
        "(h, c_new, act, tanh_c) of one LSTM step: gates = gi + gh + b (N, 4H: i, f, g, o), act "
        "= the activated gates, c_new = f c + i g, tanh_c = tanh(c_new), h = o tanh_c; float32.");
  m.def("lstm_cell_backward", &lstm_cell_backward, py::arg("act"), py::arg("tanh_c"),
        py::arg("c"), py::arg("dh"), py::arg("dc"),
        "(dgates (N, 4H), dc_prev (N, H)) of one LSTM step from its act, tanh_c, previous c and "
        "the gradients dh, dc (or None) of its outputs.");
  m.def("gru_cell_forward", &gru_cell_forward, py::arg("gi"), py::arg("gh"), py::arg("b"),
        py::arg("h"),
        "(h_new, act) of one GRU step: r, z = sigmoid(gi + gh + b), hn = gh_n + b_n, n = "
        "tanh(gi_n + r hn), h_new = n + z (h - n), act = (r, z, n, hn) (N, 4H); float32.");
  m.def("gru_cell_backward", &gru_cell_backward, py::arg("act"), py::arg("h"), py::arg("dh"),
        "(dgi, dgh (N, 3H), dh_prev (N, H)) of one GRU step from its act, previous h and dh; "
        "dh_prev is h's gradient other than through gh.");
}

}  // namespace fastdl::bindings
