// Fused optimizer steps on CUDA: SGD (momentum, dampening, nesterov, weight decay, maximize)
// and Adam/AdamW (with AMSGrad), in place, every parameter of a group in one launch through a
// multi-tensor apply: the kernel's argument is a table of the tensors' pointers and sizes, and
// each block takes one 64K-element chunk of one tensor. A group with more tensors or chunks than
// one table holds takes several launches. Formulas and rounding as csrc/cpu/optim.cpp's (Adam's
// constants come from its adam_constants).
// Tests: tests/test_cuda_kernels.py; bench: bench/gpu_check.py (Adam against copy bandwidth).

#include "cpu/optim.h"
#include "cuda/common.cuh"

namespace fastdl::cuda {

namespace {

constexpr int kMaxTensors = 32, kMaxBlocks = 256, kThreads = 512;
constexpr int64_t kChunk = 65536;

// Kept under the 4 KB kernel-argument limit of older toolkits (D = 5: about 2.9 KB).
template <int D>
struct TensorTable {
  float* ptr[D][kMaxTensors];
  int64_t size[kMaxTensors];
  unsigned char block_tensor[kMaxBlocks];
  int block_chunk[kMaxBlocks];
};

// Each block applies op to its chunk, value by value: v[d] is element i of list d. Lists whose
// bit is set in Op::kWritten are stored back; a null list (an unused state) reads as 0.
template <int D, class Op>
__global__ void __launch_bounds__(kThreads) multi_tensor_kernel(TensorTable<D> table, Op op) {
  const int j = table.block_tensor[blockIdx.x];
  const int64_t begin = static_cast<int64_t>(table.block_chunk[blockIdx.x]) * kChunk;
  const int64_t rest = table.size[j] - begin, n = rest < kChunk ? rest : kChunk;
  float* p[D];
  bool vec = true;
#pragma unroll
  for (int d = 0; d < D; ++d) {
    p[d] = table.ptr[d][j] != nullptr ? table.ptr[d][j] + begin : nullptr;
    vec = vec && (p[d] == nullptr || (reinterpret_cast<uintptr_t>(p[d]) & 15u) == 0);
  }
  int64_t done = 0;
  if (vec) {
    for (int64_t q = threadIdx.x; q < n / 4; q += blockDim.x) {
      float4 in[D];
#pragma unroll
      for (int d = 0; d < D; ++d)
        in[d] = p[d] != nullptr ? reinterpret_cast<const float4*>(p[d])[q] : make_float4(0, 0, 0, 0);
      float v[4][D];
#pragma unroll
      for (int d = 0; d < D; ++d) v[0][d] = in[d].x, v[1][d] = in[d].y, v[2][d] = in[d].z, v[3][d] = in[d].w;
#pragma unroll
      for (int e = 0; e < 4; ++e) op(v[e]);
#pragma unroll
      for (int d = 0; d < D; ++d)
        if (((Op::kWritten >> d) & 1) && p[d] != nullptr)
          reinterpret_cast<float4*>(p[d])[q] = make_float4(v[0][d], v[1][d], v[2][d], v[3][d]);
    }
    done = (n / 4) * 4;
  }
  for (int64_t i = done + threadIdx.x; i < n; i += blockDim.x) {
    float v[D];
#pragma unroll
    for (int d = 0; d < D; ++d) v[d] = p[d] != nullptr ? p[d][i] : 0.0f;
    op(v);
#pragma unroll
    for (int d = 0; d < D; ++d)
      if (((Op::kWritten >> d) & 1) && p[d] != nullptr) p[d][i] = v[d];
  }
}

// lists[d][j] is tensor j of list d (lists[d] null: the list is unused); sizes[j] elements.
template <int D, class Op>
void multi_tensor_apply(const char* name, float* const* const (&lists)[D], const int64_t* sizes,
                        int64_t count, const Op& op, cudaStream_t st) {
  TensorTable<D> table;
  int nt = 0, nb = 0;
  auto launch = [&] {
    multi_tensor_kernel<D, Op><<<nb, kThreads, 0, st>>>(table, op);
    check_launch(name, st);
    nb = 0;
  };
  for (int64_t j = 0; j < count; ++j) {
    if (sizes[j] == 0) continue;
    for (int d = 0; d < D; ++d) table.ptr[d][nt] = lists[d] != nullptr ? lists[d][j] : nullptr;
    table.size[nt] = sizes[j];
    const int64_t chunks = (sizes[j] + kChunk - 1) / kChunk;
    for (int64_t ch = 0; ch < chunks; ++ch) {
      table.block_tensor[nb] = static_cast<unsigned char>(nt);
      table.block_chunk[nb] = static_cast<int>(ch);
      ++nb;
      const bool last = ch == chunks - 1;
      if (nb == kMaxBlocks || (last && nt == kMaxTensors - 1)) {
        launch();
        if (!last) {  // the tensor goes on as entry 0 of the next table
          for (int d = 0; d < D; ++d) table.ptr[d][0] = table.ptr[d][nt];
          table.size[0] = table.size[nt];
          nt = 0;
        } else {
          nt = -1;
        }
      }
    }
    ++nt;
  }
  if (nb > 0) launch();
}

// v = {p, grad, momentum_buffer}.
struct SgdOp {
  static constexpr int kWritten = 0b101;
  float sign, lr, wd, mu, damp;
  bool decay, momentum, first, nesterov;

  __device__ __forceinline__ void operator()(float (&v)[3]) const {
    float g = sign * v[1];
    if (decay) g += wd * v[0];
    if (momentum) {
      const float b = first ? g : mu * v[2] + damp * g;
      v[2] = b;
      g = nesterov ? g + mu * b : b;
    }
    v[0] -= lr * g;
  }
};

// v = {p, grad, exp_avg, exp_avg_sq, max_exp_avg_sq}. The CPU loop's formula
// (csrc/cpu/optim_kernels.cpp), kept apart on purpose: a device function, one element at a time.
struct AdamOp {
  static constexpr int kWritten = 0b11101;
  fastdl::cpu::AdamConstants k;
  bool coupled, amsgrad;

  __device__ __forceinline__ void operator()(float (&v)[5]) const {
    float g = k.sign * v[1];
    float pi = v[0];
    if (coupled) g += k.wd * pi;
    pi *= k.decay;  // 1 - lr * weight_decay for AdamW, exactly 1 otherwise
    const float m = k.b1 * v[2] + k.one_minus_b1 * g;
    const float s = k.b2 * v[3] + k.one_minus_b2 * g * g;
    v[2] = m;
    v[3] = s;
    float sd = s;
    if (amsgrad) {  // NaN propagates from either side, as torch.maximum's
      sd = (v[4] < s || s != s) ? s : v[4];
      v[4] = sd;
    }
    v[0] = pi - k.step_size * (m / (sqrtf(sd) * k.inv_bc2_sqrt + k.eps));
  }
};

}  // namespace

void sgd_step(float* const* params, const float* const* grads, float* const* momentum_buffers,
              const int64_t* sizes, int64_t count, const fastdl::cpu::SgdOptions& o,
              Stream stream) {
  SgdOp op{o.maximize ? -1.0f : 1.0f, o.lr, o.weight_decay, o.momentum, 1.0f - o.dampening,
           // weight_decay == 0 skips the term (as PyTorch does): an infinite p stays off 0 * inf
           o.weight_decay != 0.0f, o.momentum != 0.0f, o.first_step, o.nesterov};
  float* const* const lists[3] = {params, const_cast<float* const*>(grads),
                                  op.momentum ? momentum_buffers : nullptr};
  multi_tensor_apply("sgd_step", lists, sizes, count, op, as_stream(stream));
}

void adam_step(float* const* params, const float* const* grads, float* const* exp_avgs,
               float* const* exp_avg_sqs, float* const* max_exp_avg_sqs, const int64_t* sizes,
               int64_t count, const fastdl::cpu::AdamOptions& o, Stream stream) {
  const AdamOp op{fastdl::cpu::adam_constants(o), !o.decoupled && o.weight_decay != 0.0,
                  max_exp_avg_sqs != nullptr};
  float* const* const lists[5] = {params, const_cast<float* const*>(grads), exp_avgs, exp_avg_sqs,
                                  max_exp_avg_sqs};
  multi_tensor_apply("adam_step", lists, sizes, count, op, as_stream(stream));
}

}  // namespace fastdl::cuda
