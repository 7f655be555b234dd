// fastdl._C: the module that gathers every binding (one file per area in csrc/bindings/).
#include "bindings/common.h"
#include "cpu/parallel.h"
#include "cpu/peak.h"
#include "cuda/cuda.h"

#include <cstdlib>
#include <cstring>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace py = pybind11;
using namespace fastdl::bindings;

namespace {

// Every op returns a fresh NumPy array, and a training step frees and re-allocates the same
// few MB-sized activations and gradients. glibc serves blocks above its mmap threshold with
// fresh mmaps, so each step page-faults its whole working set in again (thousands of faults,
// about a fifth of a CNN step's CPU time). Keeping blocks up to 32 MiB in the heap, and not
// trimming it below 256 MiB of free space, lets freed activations be reused. Process-wide, so
// FASTDL_MALLOC_TUNING=0 turns it off. Returns whether it was applied.
bool tune_malloc() {
#if defined(__GLIBC__)
  const char* env = std::getenv("FASTDL_MALLOC_TUNING");
  if (env != nullptr && std::strcmp(env, "0") == 0) return false;
  return mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1 && mallopt(M_TRIM_THRESHOLD, 256 << 20) == 1;
#else
  return false;
#endif
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "fastdl's compiled kernels (private: use fastdl.backends)";

  m.def("set_num_threads", [](int n) {
    const int most = fastdl::cpu::max_num_threads();
    if (n < 1 || n > most) {
      fail("set_num_threads", "expected a thread count in [1, ", most,
           "] (4 per processor, at least 64), got ", n);
    }
    fastdl::cpu::set_num_threads(n);
  });
  m.def("get_num_threads", &fastdl::cpu::get_num_threads);
  m.def("max_num_threads", &fastdl::cpu::max_num_threads);

  py::dict config;
  config["malloc_tuning"] = tune_malloc();
  config["version"] = FASTDL_VERSION;
  config["compiler"] = FASTDL_COMPILER;
#ifdef _OPENMP
  config["openmp"] = _OPENMP;
#else
  config["openmp"] = py::none();
#endif
  config["cuda_built"] = fastdl::cuda::is_built();
  // The ISA builds of the kernel bodies compiled in, and what each really is (off x86 the
  // "avx2" and "avx512" builds are portable code); simd_level() says which one runs.
  py::dict builds;
  for (int i = 0; i < fastdl::cpu::kIsaCount; ++i) {
    const auto isa = static_cast<fastdl::cpu::Isa>(i);
    builds[fastdl::cpu::isa_name(isa)] = fastdl::cpu::isa_build(isa);
  }
  config["simd_builds"] = builds;
  // Below these, a kernel runs on the calling thread (csrc/cpu/parallel.h).
  py::dict parallel_min;
  parallel_min["elements"] = fastdl::cpu::kParallelMin;
  parallel_min["macs"] = fastdl::cpu::kParallelMinMacs;
  config["parallel_min"] = parallel_min;
  m.attr("build_config") = config;

  using fastdl::cpu::Isa;
  m.def("simd_level", [] { return fastdl::cpu::isa_name(fastdl::cpu::simd_level()); },
        "The ISA build of the kernels in use: baseline, avx2 or avx512.");
  m.def("supported_isas", [] {
    py::list isas;  // best last
    for (int i = 0; i < fastdl::cpu::kIsaCount; ++i) {
      if (fastdl::cpu::isa_supported(static_cast<Isa>(i))) {
        isas.append(fastdl::cpu::isa_name(static_cast<Isa>(i)));
      }
    }
    return isas;
  }, "The ISA builds this processor can run, best last (baseline first).");
  m.def("set_simd_level", [](const std::string& name) {
    for (int i = 0; i < fastdl::cpu::kIsaCount; ++i) {
      const Isa isa = static_cast<Isa>(i);
      if (name != fastdl::cpu::isa_name(isa)) continue;
      if (!fastdl::cpu::set_simd_level(isa)) {
        fail("set_simd_level", "this processor cannot run ", name);
      }
      return;
    }
    std::string names;
    for (int i = 0; i < fastdl::cpu::kIsaCount; ++i) {
      names += (i ? ", " : "") + std::string(fastdl::cpu::isa_name(static_cast<Isa>(i)));
    }
    fail("set_simd_level", "expected one of ", names, ", got '", name, "'");
  }, py::arg("name"), "Switch the kernels to a supported ISA build (for tests and benchmarks).");
  m.def("simd_note", [] { return std::string(fastdl::cpu::simd_note()); },
        "Why FASTDL_SIMD was not honoured, or '' when it was (or is unset).");

  m.def("cpu_features", []() {
    py::dict f;
    for (const auto& [name, present] : fastdl::cpu::cpu_features()) f[name] = present;
    return f;
  }, "The SIMD features this processor supports.");
  m.def("fma_peak", [](int64_t steps, int threads) {
    if (steps < 1 || steps > (int64_t{1} << 40)) {
      fail("fma_peak", "expected steps in [1, 2**40], got ", steps);
    }
    const int most = fastdl::cpu::max_num_threads();
    if (threads < 1 || threads > most) {
      fail("fma_peak", "expected a thread count in [1, ", most, "], got ", threads);
    }
    double gflops;
    {
      py::gil_scoped_release release;
      gflops = fastdl::cpu::fma_peak_gflops(steps, threads);
    }
    py::dict out;
    out["gflops"] = gflops;
    out["kernel"] = fastdl::cpu::fma_peak_name();
    return out;
  }, py::arg("steps"), py::arg("threads"),
  "The active ISA's fp32 FMA peak in GFLOP/s: a register-resident multiply-add loop of `steps` "
  "steps on `threads` threads (for the benchmark's roof).");
  m.def("cuda_device_count", &fastdl::cuda::device_count);

  bind_activations(m);
  bind_gemm(m);
  bind_conv2d(m);
  bind_maxpool2d(m);
  bind_norm(m);
  bind_pool(m);
  bind_embedding(m);
  bind_rnn(m);
  bind_cross_entropy(m);
  bind_optim(m);
  fastdl::cuda::bind_cuda(m);  // _C.cuda, only in a CUDA build
  bind_fused(m);
}
