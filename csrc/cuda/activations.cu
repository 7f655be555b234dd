// Activations on CUDA: ReLU, sigmoid and tanh, forward and backward, elementwise over n floats
// (float4 grid-stride loops when every pointer is 16-byte aligned; a scalar tail). Backward
// passes take the forward's output y. NaN propagates as in PyTorch.
// Tests: tests/test_cuda_kernels.py; bench: bench/gpu_check.py (the CNN step).
#include "cuda/common.cuh"

namespace fastdl::cuda {

namespace {

template <Activation kAct>
__device__ __forceinline__ float forward(float x) {
  if (kAct == Activation::kRelu) return x > 0.0f || x != x ? x : 0.0f;
  if (kAct == Activation::kSigmoid) {
    const float e = expf(-fabsf(x));  // exp of a non-positive argument: never overflows
    return x >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
  }
  return tanhf(x);
}

template <Activation kAct>
__device__ __forceinline__ float backward(float dy, float y) {
  if (kAct == Activation::kRelu) return y > 0.0f ? dy : 0.0f;
  if (kAct == Activation::kSigmoid) return dy * y * (1.0f - y);
  return dy * (1.0f - y * y);
}

// out[i] = f(a[i], b[i]) over n elements; b unused by the forward.
template <Activation kAct, bool kBackward>
__global__ void activation_kernel(float* out, const float* a, const float* b, int64_t n,
                                  bool vec) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  int64_t done = 0;
  if (vec) {
    const int64_t quads = n / 4;
    for (int64_t j = i; j < quads; j += stride) {
      const float4 va = reinterpret_cast<const float4*>(a)[j];
      float4 r;
      if (kBackward) {
        const float4 vb = reinterpret_cast<const float4*>(b)[j];
        r = make_float4(backward<kAct>(va.x, vb.x), backward<kAct>(va.y, vb.y),
                        backward<kAct>(va.z, vb.z), backward<kAct>(va.w, vb.w));
      } else {
        r = make_float4(forward<kAct>(va.x), forward<kAct>(va.y), forward<kAct>(va.z),
                        forward<kAct>(va.w));
      }
      reinterpret_cast<float4*>(out)[j] = r;
    }
    done = quads * 4;
  }
  for (int64_t j = done + i; j < n; j += stride) {
    out[j] = kBackward ? backward<kAct>(a[j], b[j]) : forward<kAct>(a[j]);
  }
}

template <bool kBackward>
void launch(Activation act, float* out, const float* a, const float* b, int64_t n, Stream stream,
            const char* op) {
  if (n == 0) return;
  const bool vec = aligned16(out) && aligned16(a) && (!kBackward || aligned16(b));
  const unsigned grid = grid_for(vec ? (n + 3) / 4 : n, 256);
  const cudaStream_t st = as_stream(stream);
  switch (act) {
    case Activation::kRelu:
      activation_kernel<Activation::kRelu, kBackward><<<grid, 256, 0, st>>>(out, a, b, n, vec);
      break;
    case Activation::kSigmoid:
      activation_kernel<Activation::kSigmoid, kBackward><<<grid, 256, 0, st>>>(out, a, b, n, vec);
      break;
    case Activation::kTanh:
      activation_kernel<Activation::kTanh, kBackward><<<grid, 256, 0, st>>>(out, a, b, n, vec);
      break;
  }
  check_launch(op, stream);
}

}  // namespace

// x (n,) -> y (n,).
void activation_forward(Activation act, float* y, const float* x, int64_t n, Stream stream) {
  launch<false>(act, y, x, nullptr, n, stream, "activation_forward");
}

// dy, y (n,) -> dx (n,).
void activation_backward(Activation act, float* dx, const float* dy, const float* y, int64_t n,
                         Stream stream) {
  launch<true>(act, dx, dy, y, n, stream, "activation_backward");
}

}  // namespace fastdl::cuda
