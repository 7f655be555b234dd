// fused kernels (csrc/cpu/fused.cpp): the epilogues fastdl.compile runs after a conv or GEMM
// kernel, each one pass over memory where eager runs two or three, float32.
//
// bias_relu: x (A, C, B) += bias[c], then ReLU, in place (the bias and ReLU of a conv2d or a
// linear layer in one pass after its GEMM: linear is A = rows, C = features, B = 1).
// relu_maxpool2x2: ReLU then 2x2 stride-2 max pooling of x (N, C, H, W) in one pass; the
// pool's argmax indices also mask the ReLU in backward (dx is dy at the argmax where the pooled
// output is > 0, else 0), so no ReLU output is kept.
// NaN: ReLU keeps NaN and the pool takes it (PyTorch's rules, as the relu and maxpool2d kernels).
#pragma once
#include <cstdint>

namespace fastdl::cpu {

// x is (A, C, B), bias (C,): x[a, c, b] = relu(x[a, c, b] + bias[c]).
void bias_relu(float* x, const float* bias, int64_t A, int64_t C, int64_t B);

// x (N*C planes of H x W) -> y, indices (N*C planes of H/2 x W/2, floor); indices h * W + w,
// or none when indices is nullptr (inference: a fifth of the traffic and the index arithmetic).
void relu_maxpool2x2_forward(float* y, int64_t* indices, const float* x, int64_t planes,
                             int64_t H, int64_t W);

// dx (planes of H x W) = 0 except dx[indices] = dy where y > 0 (y, dy, indices from forward).
// Each window writes only its own four places: an index outside its window (counted and
// returned; the binding raises) gives that window no gradient and never writes elsewhere.
int64_t relu_maxpool2x2_backward(float* dx, const float* dy, const int64_t* indices,
                                 const float* y, int64_t planes, int64_t H, int64_t W);

// The 2x2 pooling of the fused conv block (conv2d.h: conv2d_relu_maxpool2x2_*), on the calling
// thread, planes [p0, p1) of H x W: ReLU and pooling as relu_maxpool2x2_forward, the argmax
// recorded as its place in the window (0, 1: top row; 2, 3: bottom row, left first) into codes,
// one byte per pooled output, or not at all when codes is nullptr.
void relu_maxpool2x2_codes(float* y, uint8_t* codes, const float* x, int64_t H, int64_t W,
                           int64_t p0, int64_t p1);

// Its backward on the calling thread, planes [p0, p1): dx zero except dy at each code's place
// where y > 0. Returns how many codes were not 0..3 (those windows get no gradient).
int64_t relu_unpool2x2_codes(float* dx, const float* dy, const uint8_t* codes, const float* y,
                             int64_t H, int64_t W, int64_t p0, int64_t p1);

}  // namespace fastdl::cpu

namespace fastdl::cpu {

// The 2x2 pooling of the fused conv block (conv2d.h: conv2d_relu_maxpool2x2_*), on the calling
// thread, planes [p0, p1) of H x W: ReLU and pooling as relu_maxpool2x2_forward, the argmax
// recorded as its place in the window (0, 1: top row; 2, 3: bottom row, left first) into codes,
// one byte per pooled output, or not at all when codes is nullptr.
void relu_maxpool2x2_codes(float* y, uint8_t* codes, const float* x, int64_t H, int64_t W,
                           int64_t p0, int64_t p1);

// Its backward on the calling thread, planes [p0, p1): dx zero except dy at each code's place
// where y > 0. Returns how many codes were not 0..3 (those windows get no gradient).
int64_t relu_unpool2x2_codes(float* dx, const float* dy, const uint8_t* codes, const float* y,
                             int64_t H, int64_t W, int64_t p0, int64_t p1);

}  // namespace fastdl::cpu

