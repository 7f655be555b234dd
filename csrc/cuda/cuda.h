// The CUDA backend's entry points: device queries, the kernel launchers of csrc/cuda/<family>.cu
// and the bindings that reach them (csrc/cuda/bindings.cpp). Built with FASTDL_CUDA=ON;
// csrc/cuda/no_cuda.cpp stands in otherwise (device_count() 0, no _C.cuda submodule).
//
// Launchers take device pointers, sizes and the CUDA stream to run on (CuPy's current stream,
// passed from Python as an integer handle); outputs and scratch are allocated by the caller
// through CuPy's memory pool. Each launcher checks the launch and throws std::runtime_error
// naming the op ("[conv2d_forward] CUDA error: ..."), which pybind11 turns into RuntimeError.
#pragma once
#include <cstdint>

namespace pybind11 {
class module_;
}

namespace fastdl::cpu {
struct SgdOptions;
struct AdamOptions;
}  // namespace fastdl::cpu

namespace fastdl::cuda {

using Stream = void*;  // a cudaStream_t; nullptr is the legacy default stream

bool is_built();
int device_count();

// Adds the _C.cuda submodule (the bindings of the launchers below); nothing without CUDA.
void bind_cuda(pybind11::module_& m);

// ---- device and errors (device.cu)

int current_device();
// The device that holds `ptr`, or -1 when `ptr` is not device memory of this process.
int pointer_device(const void* ptr);
// Throws "[op] CUDA error: ..." when the last launch failed; with FASTDL_CUDA_DEBUG defined (a
// Debug build) also synchronises `stream`, so an error inside the kernel names its op too.
void check_launch(const char* op, Stream stream);
// cudaDeviceSynchronize, an error naming the last op this thread launched.
void synchronize();
// Device properties for `fastdl info`: name, compute capability, multiprocessors, runtime.
struct DeviceInfo {
  char name[256];
  int major, minor, multiprocessors, runtime_version, driver_version;
};
DeviceInfo device_info(int device);

// ---- gemm.cu: c (batch, M, N) = op(a) @ op(b) for each batch entry; op(a) is (M, K) from a
// (M, K) or, trans_a, (K, M); op(b) is (K, N) from b (K, N) or, trans_b, (N, K). Row strides
// lda/ldb/ldc, batch strides sa/sb/sc, in elements. tf32: TF32 tensor cores (sm_80+).
void gemm(float* c, const float* a, const float* b, int64_t batch, int64_t M, int64_t N, int64_t K,
          int64_t lda, int64_t ldb, int64_t ldc, int64_t sa, int64_t sb, int64_t sc, bool trans_a,
          bool trans_b, bool tf32, Stream stream);

// ---- conv2d.cu: implicit GEMM (no im2col buffer). Sizes of x (N,C,H,W), w (K,C,R,S),
// y (N,K,P,Q), stride (sh, sw), padding (ph, pw).
struct ConvShape {
  int64_t N, C, H, W, K, R, S, P, Q, sh, sw, ph, pw;
};
// y = conv(x, w) + b; b may be null.
void conv2d_forward(float* y, const float* x, const float* w, const float* b, const ConvShape& s,
                    Stream stream);
// dx (N,C,H,W), dw (K,C,R,S), db (K,), each null when not wanted.
void conv2d_backward(float* dx, float* dw, float* db, const float* dy, const float* x,
                     const float* w, const ConvShape& s, Stream stream);

// ---- maxpool2d.cu: planes = N * C; x (planes, H, W), y and indices (planes, P, Q).
struct PoolShape {
  int64_t planes, H, W, P, Q, R, S, sh, sw, ph, pw;
};
void maxpool2d_forward(float* y, int64_t* indices, const float* x, const PoolShape& s,
                       Stream stream);
// dx (planes, H, W) = 0, plus each dy at its index (indices outside [0, H*W) are skipped).
void maxpool2d_backward(float* dx, const float* dy, const int64_t* indices, const PoolShape& s,
                        Stream stream);

// ---- activations.cu: n elements each.
enum class Activation { kRelu, kSigmoid, kTanh };
void activation_forward(Activation act, float* y, const float* x, int64_t n, Stream stream);
void activation_backward(Activation act, float* dx, const float* dy, const float* y, int64_t n,
                         Stream stream);

// ---- cross_entropy.cu: logits and log_probs (N, C). target: int64 (N,) class indices when
// index_target, else float (N, C) probabilities. weight (C,) or null. reduction 0 none, 1 mean,
// 2 sum. loss is (N,) for none, else one float. scratch holds 2 * N floats (per-sample loss and
// weight). An index target outside [0, C) that is not ignore_index gives a NaN loss.
void cross_entropy_forward(float* loss, float* log_probs, float* scratch, const float* logits,
                           const void* target, bool index_target, const float* weight, int64_t N,
                           int64_t C, int reduction, int64_t ignore_index, Stream stream);
// dloss: one float (mean, sum) or (N,) (none); scratch holds one float (mean's denominator).
void cross_entropy_backward(float* dlogits, float* scratch, const float* dloss,
                            const float* log_probs, const void* target, bool index_target,
                            const float* weight, int64_t N, int64_t C, int reduction,
                            int64_t ignore_index, Stream stream);

// ---- optim.cu: multi-tensor steps; lists of `count` device pointers, tensor j of sizes[j].
void sgd_step(float* const* params, const float* const* grads, float* const* momentum_buffers,
              const int64_t* sizes, int64_t count, const fastdl::cpu::SgdOptions& opt,
              Stream stream);
void adam_step(float* const* params, const float* const* grads, float* const* exp_avgs,
               float* const* exp_avg_sqs, float* const* max_exp_avg_sqs, const int64_t* sizes,
               int64_t count, const fastdl::cpu::AdamOptions& opt, Stream stream);

}  // namespace fastdl::cuda
