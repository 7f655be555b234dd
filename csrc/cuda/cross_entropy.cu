// Softmax cross-entropy on CUDA, fused: log-softmax and the per-sample loss in one pass per row
// (one warp per row), then one block sums the batch for "mean" and "sum". Targets are class
// indices (int64, with ignore_index and optional class weights) or class probabilities (float,
// (N, C)). The backward recomputes softmax from log_probs. See INTERFACE.md for the formulas.
// NOTE: an index target outside [0, C) that is not ignore_index makes the loss NaN (the CPU
// raises ValueError; here that check would cost a synchronisation per call).
// Tests: tests/test_cuda_kernels.py; bench: bench/gpu_check.py (the CNN step).
#include "cuda/common.cuh"

namespace fastdl::cuda {

namespace {

constexpr int kRowsPerBlock = 8;  // warps per block, one row each

struct Targets {
  const void* target;
  bool index;
  const float* weight;
  int64_t C, ignore_index;

  // Row i's class, -1 when ignored, -2 when out of range (index targets only).
  __device__ __forceinline__ int64_t cls(int64_t i) const {
    const int64_t t = static_cast<const int64_t*>(target)[i];
    if (t == ignore_index) return -1;
    return (t < 0 || t >= C) ? -2 : t;
  }
  // What row i adds to "mean"'s denominator: w[t_i] (0 when ignored, NaN when out of range)
  // for index targets, 1 for probabilities.
  __device__ __forceinline__ float sample_weight(int64_t i) const {
    if (!index) return 1.0f;
    const int64_t t = cls(i);
    if (t == -1) return 0.0f;
    if (t == -2) return NAN;
    return weight != nullptr ? __ldg(weight + t) : 1.0f;
  }
  __device__ __forceinline__ float prob(int64_t i, int64_t c) const {
    const float w = weight != nullptr ? __ldg(weight + c) : 1.0f;
    return w * static_cast<const float*>(target)[i * C + c];
  }
};

// log_probs[i] = log_softmax(logits[i]); loss_i into row_loss[i], its weight into row_weight[i].
__global__ void cross_entropy_rows(float* log_probs, float* row_loss, float* row_weight,
                                   const float* logits, Targets tg, int64_t N) {
  const int lane = threadIdx.x & 31;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + (threadIdx.x >> 5);
  if (i >= N) return;  // whole warps leave together
  const int64_t C = tg.C;
  const float* x = logits + i * C;
  float* lp = log_probs + i * C;
  float mx = -INFINITY;
  for (int64_t c = lane; c < C; c += 32) mx = fmaxf(mx, x[c]);
  mx = warp_max(mx);
  float sum = 0.0f;
  for (int64_t c = lane; c < C; c += 32) sum += expf(x[c] - mx);
  const float log_sum = logf(warp_sum(sum));
  float loss = 0.0f;
  for (int64_t c = lane; c < C; c += 32) {
    const float v = (x[c] - mx) - log_sum;
    lp[c] = v;
    if (!tg.index) loss -= tg.prob(i, c) * v;
  }
  loss = warp_sum(loss);
  if (lane == 0) {
    const float w = tg.sample_weight(i);
    if (tg.index) {
      const int64_t t = tg.cls(i);
      loss = t >= 0 ? -w * ((x[t] - mx) - log_sum) : (t == -1 ? 0.0f : NAN);
    }
    row_loss[i] = loss;
    row_weight[i] = w;
  }
}

// loss[0] = sum of row_loss (sum), or that over the sum of row_weight (mean). One block.
__global__ void cross_entropy_reduce(float* loss, const float* row_loss, const float* row_weight,
                                     int64_t N, bool mean) {
  __shared__ float shared[32];
  float l = 0.0f, w = 0.0f;
  for (int64_t i = threadIdx.x; i < N; i += blockDim.x) {
    l += row_loss[i];
    w += row_weight[i];
  }
  l = block_sum(l, shared);
  w = block_sum(w, shared);
  if (threadIdx.x == 0) loss[0] = mean ? l / w : l;  // NOTE: all ignored gives 0/0 = NaN
}

// denominator[0] = sum of the rows' weights ("mean" only). One block.
__global__ void cross_entropy_denominator(float* denominator, Targets tg, int64_t N) {
  __shared__ float shared[32];
  float w = 0.0f;
  for (int64_t i = threadIdx.x; i < N; i += blockDim.x) w += tg.sample_weight(i);
  w = block_sum(w, shared);
  if (threadIdx.x == 0) denominator[0] = w;
}

// dlogits[i] from log_probs[i]; g_i = dloss (sum), dloss / denominator (mean), dloss[i] (none).
__global__ void cross_entropy_backward_rows(float* dlogits, const float* dloss,
                                            const float* denominator, const float* log_probs,
                                            Targets tg, int64_t N, int reduction) {
  const int lane = threadIdx.x & 31;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + (threadIdx.x >> 5);
  if (i >= N) return;
  const int64_t C = tg.C;
  const float* lp = log_probs + i * C;
  float* dx = dlogits + i * C;
  float g = reduction == 0 ? dloss[i] : dloss[0];
  if (reduction == 1) g /= denominator[0];
  if (tg.index) {
    const int64_t t = tg.cls(i);
    // Ignored rows stay 0 even when g is NaN (every sample ignored).
    const float coef = t == -1 ? 0.0f : (t == -2 ? NAN : g * tg.sample_weight(i));
    for (int64_t c = lane; c < C; c += 32) dx[c] = coef * (expf(lp[c]) - (c == t ? 1.0f : 0.0f));
    return;
  }
  float total = 0.0f;  // sum_c w[c] target[i, c]
  for (int64_t c = lane; c < C; c += 32) total += tg.prob(i, c);
  total = warp_sum(total);
  for (int64_t c = lane; c < C; c += 32) dx[c] = g * (expf(lp[c]) * total - tg.prob(i, c));
}

unsigned row_blocks(int64_t N) { return static_cast<unsigned>((N + kRowsPerBlock - 1) / kRowsPerBlock); }

}  // namespace

// logits (N, C) -> loss ((N,) or one float), log_probs (N, C); scratch 2 * N floats.
void cross_entropy_forward(float* loss, float* log_probs, float* scratch, const float* logits,
                           const void* target, bool index_target, const float* weight, int64_t N,
                           int64_t C, int reduction, int64_t ignore_index, Stream stream) {
  const cudaStream_t st = as_stream(stream);
  const Targets tg{target, index_target, weight, C, ignore_index};
  float* row_loss = reduction == 0 ? loss : scratch;
  if (N > 0) {
    cross_entropy_rows<<<row_blocks(N), 32 * kRowsPerBlock, 0, st>>>(log_probs, row_loss,
                                                                      scratch + N, logits, tg, N);
    check_launch("cross_entropy_forward", stream);
  }
  if (reduction != 0) {
    cross_entropy_reduce<<<1, 1024, 0, st>>>(loss, row_loss, scratch + N, N, reduction == 1);
    check_launch("cross_entropy_forward", stream);
  }
}

// dloss (one float or (N,)), log_probs (N, C) -> dlogits (N, C); scratch one float.
void cross_entropy_backward(float* dlogits, float* scratch, const float* dloss,
                            const float* log_probs, const void* target, bool index_target,
                            const float* weight, int64_t N, int64_t C, int reduction,
                            int64_t ignore_index, Stream stream) {
  if (N == 0) return;
  const cudaStream_t st = as_stream(stream);
  const Targets tg{target, index_target, weight, C, ignore_index};
  if (reduction == 1) {
    cross_entropy_denominator<<<1, 1024, 0, st>>>(scratch, tg, N);
    check_launch("cross_entropy_backward", stream);
  }
  cross_entropy_backward_rows<<<row_blocks(N), 32 * kRowsPerBlock, 0, st>>>(
      dlogits, dloss, scratch, log_probs, tg, N, reduction);
  check_launch("cross_entropy_backward", stream);
}

}  // namespace fastdl::cuda
