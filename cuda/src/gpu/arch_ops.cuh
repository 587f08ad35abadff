// The GPU ops of the model features beyond Llama's (issue #22): Qwen3's per-head q/k RMSNorm,
// the rope attention factor of YaRN and LongRoPE, sliding-window attention, and Gemma's
// embedding scale, post-norms, GeGLU and final logit soft-capping. Each queues work on
// `stream` and throws on a launch error.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/paged_kv.cuh"
#include "kernels/prefill_attention.cuh"

namespace quest {

// x[i] *= factor over n values (Gemma's embedding scale).
void scale_values(float* x, size_t n, float factor, cudaStream_t stream);

// x[r] += weight * y[r] / rms(y[r]) over `rows` rows of `dim`: a Gemma block's output through its
// post-norm (weight fp32, (1 + w) folded at load), added to the residual.
void post_norm_add(float* x, const float* y, int rows, int dim, const float* weight, float eps, cudaStream_t stream);

// out[r][i] = gelu_tanh(gu[r][i]) * gu[r][inter + i] from gu = [rows][gate (inter) | up (inter)]:
// Gemma's GeGLU (transformers' gelu_pytorch_tanh), the down projection's input [rows][inter].
void geglu(const float* gu, int rows, int inter, float* out, cudaStream_t stream);

// x[i] = cap * tanh(x[i] / cap) over n values (Gemma 2's final logit soft-capping).
void softcap(float* x, size_t n, float cap, cudaStream_t stream);

// In place on qkv = [rows][q (heads) | k (kv_heads) | v]: each q head's and each k head's
// head_dim values times 1 / rms, times q_norm or k_norm (fp32, head_dim each).
void head_rmsnorm(float* qkv, int rows, int heads, int kv_heads, int head_dim, const float* q_norm, const float* k_norm,
                  float eps, cudaStream_t stream);

// Token lists of the window at a decode step: each of `lists` lists reads positions
// pos - count + 1 .. pos, written to indices [lists][count].
void window_lists(int* indices, int lists, int64_t pos, int count, cudaStream_t stream);

// Causal attention over a sliding window (a.lse is not written): row r reads the cached
// positions (p - window, p] of p = a.start + r, its scores soft-capped at a.softcap where set. A plain kernel (a warp a row and head, online
// softmax): the prefill of windowed layers, correct before fast.
void window_prefill_attention(const PrefillArgs& a, int window, cudaStream_t stream);

}  // namespace quest
