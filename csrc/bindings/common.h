// Shared argument checks for the bindings in csrc/bindings/.
//
// The binding layer only adapts: it checks each argument (dtype, C-contiguity,
// number of dimensions, shape agreement, sizes), raises a Python ValueError that
// names the op and the expected and actual values, releases the GIL and calls
// the kernel. No math here, no autograd.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <cstdint>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace fastdl::bindings {

namespace py = pybind11;

// One function per area; module.cpp calls them all.
void bind_activations(py::module_& m);
void bind_gemm(py::module_& m);
void bind_conv2d(py::module_& m);
void bind_maxpool2d(py::module_& m);
void bind_norm(py::module_& m);
void bind_pool(py::module_& m);
void bind_embedding(py::module_& m);
void bind_rnn(py::module_& m);
void bind_cross_entropy(py::module_& m);
void bind_optim(py::module_& m);
void bind_fused(py::module_& m);

// ---- argument checks ----

template <typename... Parts>
[[noreturn]] inline void fail(const char* op, const Parts&... parts) {
  std::ostringstream msg;
  msg << "[" << op << "] ";
  (msg << ... << parts);
  throw py::value_error(msg.str());
}

inline std::string shape_str(const py::array& a) {
  std::ostringstream s;
  s << "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s << (i ? ", " : "") << a.shape(i);
  s << (a.ndim() == 1 ? ",)" : ")");
  return s.str();
}

// Checks that `a` holds T, is C-contiguous and aligned and (when ndim >= 0) has ndim dimensions.
template <typename T>
void check_array(const char* op, const char* name, const py::array& a, int ndim = -1) {
  if (!a.dtype().is(py::dtype::of<T>())) {
    fail(op, name, " must be ", std::string(py::str(py::dtype::of<T>())), ", got ",
         std::string(py::str(a.dtype())));
  }
  if (!(a.flags() & py::array::c_style)) fail(op, name, " must be C-contiguous");
  // A view at an odd byte offset is valid NumPy but undefined behaviour for the kernels' loads
  // (fastdl.backends.cpu copies such arrays before they get here).
  if (!(a.flags() & py::detail::npy_api::NPY_ARRAY_ALIGNED_)) {
    fail(op, name, " must be aligned to its element size (np.require(a, requirements='A'))");
  }
  if (ndim >= 0 && a.ndim() != ndim) {
    fail(op, name, " must have ", ndim, " dimensions, got ", a.ndim(), " with shape ",
         shape_str(a));
  }
}

template <typename T>
const T* in_ptr(const char* op, const char* name, const py::array& a, int ndim = -1) {
  check_array<T>(op, name, a, ndim);
  return static_cast<const T*>(a.data());
}

// Output buffers passed in by Python (in-place updates) must also be writeable.
template <typename T>
T* out_ptr(const char* op, const char* name, py::array& a, int ndim = -1) {
  check_array<T>(op, name, a, ndim);
  if (!a.writeable()) fail(op, name, " must be writeable");
  return static_cast<T*>(a.mutable_data());
}

inline void check_same_shape(const char* op, const char* name_a, const py::array& a,
                      const char* name_b, const py::array& b) {
  bool same = a.ndim() == b.ndim();
  for (py::ssize_t i = 0; same && i < a.ndim(); ++i) same = a.shape(i) == b.shape(i);
  if (!same) {
    fail(op, name_a, " and ", name_b, " must have the same shape, got ", shape_str(a), " and ",
         shape_str(b));
  }
}

// ---- pooling windows (maxpool2d, pool) ----

using Pair = std::array<int64_t, 2>;

inline std::string pair_str(const Pair& v) {
  return "(" + std::to_string(v[0]) + ", " + std::to_string(v[1]) + ")";
}

// kernel_size and stride >= 1, 0 <= padding <= kernel_size / 2.
inline void check_pool_window(const char* op, const Pair& kernel, const Pair& stride,
                              const Pair& padding) {
  if (kernel[0] < 1 || kernel[1] < 1) fail(op, "kernel_size must be >= 1, got ", pair_str(kernel));
  if (stride[0] < 1 || stride[1] < 1) fail(op, "stride must be >= 1, got ", pair_str(stride));
  for (int d = 0; d < 2; ++d) {
    // NOTE: PyTorch's rule; it also guarantees every window holds an input element.
    if (padding[d] < 0 || padding[d] > kernel[d] / 2) {
      fail(op, "padding must be >= 0 and at most half the kernel size, got padding ",
           pair_str(padding), " for kernel_size ", pair_str(kernel));
    }
  }
}

inline py::array_t<float> empty_like_shape(const py::array& a) {
  std::vector<py::ssize_t> shape(a.shape(), a.shape() + a.ndim());
  return py::array_t<float>(shape);
}

// `out` (an output buffer a compiled plan reuses), checked to be a writeable C-contiguous T array
// of `shape`; a new array when it is not given.
template <typename T>
py::array output_array(const char* op, const char* name, const std::optional<py::array>& out,
                       const std::array<int64_t, 4>& shape) {
  if (!out) return py::array_t<T>({shape[0], shape[1], shape[2], shape[3]});
  py::array a = *out;
  out_ptr<T>(op, name, a, 4);
  for (int d = 0; d < 4; ++d) {
    if (a.shape(d) != shape[d]) {
      fail(op, name, " must have shape (", shape[0], ", ", shape[1], ", ", shape[2], ", ",
           shape[3], "), got ", shape_str(a));
    }
  }
  return a;
}

// The product of non-negative sizes, or a ValueError naming the op when it overflows int64.
template <typename... Sizes>
int64_t checked_product(const char* op, const char* what, Sizes... sizes) {
  int64_t total = 1;
  for (int64_t v : {static_cast<int64_t>(sizes)...}) {
    if (v < 0 || __builtin_mul_overflow(total, v, &total)) {
      fail(op, what, " is too large: the product of its sizes overflows int64");
    }
  }
  return total;
}

}  // namespace fastdl::bindings
