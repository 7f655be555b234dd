// The CUDA backend's device queries and error reporting (built only with FASTDL_CUDA=ON;
// no_cuda.cpp stands in otherwise). Kernels are launched asynchronously on CuPy's stream: a
// bad launch raises at once (check_launch), an error inside a kernel at the next
// synchronisation, which names the last op this thread launched.
#include <cuda_runtime.h>

#include <cstring>
#include <stdexcept>
#include <string>

#include "cuda/cuda.h"

namespace fastdl::cuda {

namespace {

thread_local const char* last_op = "none";

[[noreturn]] void raise(const char* op, cudaError_t err, const char* what = "") {
  throw std::runtime_error(std::string("[") + op + "] CUDA error " + cudaGetErrorName(err) + ": " +
                           cudaGetErrorString(err) + what);
}

}  // namespace

bool is_built() { return true; }

int device_count() {
  int n = 0;
  // No driver or no device is not an error for the caller: it means zero devices.
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the error state
    return 0;
  }
  return n;
}

int current_device() {
  int d = -1;
  const cudaError_t err = cudaGetDevice(&d);
  if (err != cudaSuccess) raise("cuda", err);
  return d;
}

int pointer_device(const void* ptr) {
  cudaPointerAttributes attr;
  if (cudaPointerGetAttributes(&attr, ptr) != cudaSuccess) {
    cudaGetLastError();
    return -1;
  }
  if (attr.type != cudaMemoryTypeDevice && attr.type != cudaMemoryTypeManaged) return -1;
  return attr.device;
}

void check_launch(const char* op, Stream stream) {
  last_op = op;
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) raise(op, err);
#ifdef FASTDL_CUDA_DEBUG
  err = cudaStreamSynchronize(static_cast<cudaStream_t>(stream));
  if (err != cudaSuccess) raise(op, err, " (inside the kernel)");
#else
  (void)stream;
#endif
}

void synchronize() {
  const cudaError_t err = cudaDeviceSynchronize();
  if (err != cudaSuccess) {
    const std::string what = std::string(" (the last fastdl kernel this thread launched: ") +
                             last_op + ")";
    raise("cuda.synchronize", err, what.c_str());
  }
}

DeviceInfo device_info(int device) {
  DeviceInfo info{};
  cudaDeviceProp prop;
  cudaError_t err = cudaGetDeviceProperties(&prop, device);
  if (err != cudaSuccess) raise("cuda.get_device_properties", err);
  std::memcpy(info.name, prop.name, sizeof(info.name) - 1);  // info.name[255] stays 0
  info.major = prop.major;
  info.minor = prop.minor;
  info.multiprocessors = prop.multiProcessorCount;
  cudaRuntimeGetVersion(&info.runtime_version);
  cudaDriverGetVersion(&info.driver_version);
  return info;
}

}  // namespace fastdl::cuda
