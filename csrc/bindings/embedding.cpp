// Bindings of the embedding kernels (csrc/cpu/embedding.cpp).
#include <optional>

#include "bindings/common.h"
#include "cpu/embedding.h"

namespace fastdl::bindings {

namespace {

// dy is (M,D) float32, indices (M,) int64; returns dw (V,D) float32, V = num_embeddings.
py::array_t<float> embedding_backward(const py::array& dy, const py::array& indices,
                                      int64_t num_embeddings,
                                      const std::optional<int64_t>& padding_idx) {
  const char* op = "embedding_backward";
  const float* pdy = in_ptr<float>(op, "dy", dy, 2);
  const int64_t* pi = in_ptr<int64_t>(op, "indices", indices, 1);
  const int64_t M = dy.shape(0), D = dy.shape(1), V = num_embeddings;
  if (indices.shape(0) != M) {
    fail(op, "indices must have shape (", M, ",) for dy of shape ", shape_str(dy), ", got ",
         shape_str(indices));
  }
  if (V < 0) fail(op, "num_embeddings must be >= 0, got ", V);
  checked_product(op, "dw", V, D);
  if (padding_idx && (*padding_idx < 0 || *padding_idx >= V)) {
    fail(op, "padding_idx must be None or in [0, ", V, "), got ", *padding_idx);
  }
  py::array_t<float> dw({V, D});
  float* pdw = dw.mutable_data();
  int64_t bad = -1;
  {
    py::gil_scoped_release release;
    bad = fastdl::cpu::embedding_backward(pdw, pdy, pi, M, V, D, padding_idx.value_or(-1));
  }
  if (bad >= 0) {
    // NOTE: an IndexError, as PyTorch's "index out of range in self".
    std::ostringstream msg;
    msg << "[" << op << "] index " << pi[bad] << " (at position " << bad
        << " of indices) is out of range: indices must be in [0, " << V << ")";
    throw py::index_error(msg.str());
  }
  return dw;
}

}  // namespace

void bind_embedding(py::module_& m) {
  m.def("embedding_backward", &embedding_backward, py::arg("dy"), py::arg("indices"),
        py::arg("num_embeddings"), py::arg("padding_idx"),
        "dw (num_embeddings, D) float32 = zeros with each row of dy (M, D) added at its index "
        "(indices (M,) int64, in [0, num_embeddings)); the row padding_idx (None or an int) "
        "stays zero.");
}

}  // namespace fastdl::bindings
