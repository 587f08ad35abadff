// The forward pass's ops on the GPU. Activations are fp32 on the device; weights are fp16 or
// bf16 (the checkpoint's 16-bit type; fp16 for fp32 checkpoints) and every product
// accumulates in fp32. Each call queues work on `stream` and throws on a launch error.
#pragma once
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "kernels/attention.cuh"
#include "kernels/half_types.cuh"

namespace quest {

using WeightType = HalfType;

// Tokens a forward pass of a prefill takes at once: enough rows that its GEMMs and attention
// tiles fill the GPU, few enough that its scratch stays small at any context length.
constexpr int kPrefillChunk = 2048;

// What a linear layer reads as its input row, built as it is loaded (no kernel of its own):
//   Plain    x as it is, [rows][in];
//   RmsNorm  x scaled by 1 / rms(x): the norm's weight is folded into W's columns at upload;
//   SwiGlu   silu(gate) * up from x = [rows][gate (in) | up (in)].
struct LinearInput {
  enum Kind { Plain, RmsNorm, SwiGlu };
  const float* x = nullptr;
  Kind kind = Plain;
  float eps = 0;
  float* row_scale = nullptr;  // RmsNorm over several rows: scratch of one float a row
};

// y[rows][out] = input W^T + b, W [out][in] as nn.Linear stores it; with `accumulate`,
// y += instead (the residual add). One row is a GEMV; more rows use a tensor-core GEMM
// whose inputs are rounded to the weight type. `in` must be a multiple of 32.
struct DeviceLinear {
  const void* w = nullptr;
  const float* b = nullptr;
  int in = 0, out = 0;
};
void linear(const LinearInput& x, int rows, const DeviceLinear& w, WeightType t, float* y, bool accumulate, cudaStream_t stream);

// Writes x's rows as the linear layer reads them (norm or SwiGLU applied) in the weight type,
// [rows][in]: the input of a cuBLASLt GEMM (gemm.cuh).
void stage_input(const LinearInput& x, int rows, int in, WeightType t, void* dst, cudaStream_t stream);

// Converts n fp32 values to the weight type (weights are uploaded as fp32, converted on the
// device); sets the device int *nonfinite to 1 when a converted value is NaN or Inf.
void to_weight_type(const float* src, void* dst, WeightType t, size_t n, int* nonfinite, cudaStream_t stream);

void embed(const void* table, WeightType t, int dim, const int32_t* tokens, int rows, float* y, cudaStream_t stream);

// The RoPE angles of `rows` tokens at positions start..: trig = [rows][cos (half) | sin (half)],
// the angle formed in fp32 as transformers does, its sine and cosine in double. Once a
// forward pass; every layer's rope_store reads them.
void rope_angles(int rows, int64_t start, const float* inv_freq, int half, float* trig, cudaStream_t stream);

// Rotates q and k of `rows` tokens at positions start.. (rotate-half RoPE) from qkv =
// [rows][q | k | v]; writes q to q_out [rows][heads][head_dim] and k, v into the paged cache,
// both in the cache's type. One row (a decode step) also folds its key into its Quest page's
// min/max; a prefill recomputes them after (page_minmax).
void rope_store(const float* qkv, int rows, int heads, int64_t start, const float* trig, void* q_out, const PagedKv& kv, cudaStream_t stream);

// Causal attention of `rows` queries at positions start.. ([rows][heads][head_dim], in the
// cache's type) over the cache's positions [0, start + rows): flash attention on mma.sync
// (kernels/prefill_attention.cu), or on wgmma where the card is an sm_90 and the addon has
// sm_90a code (kernels/prefill_attention_sm90.cu); out is fp32 [rows][heads][head_dim], and
// lse, when given, each row's log-sum-exp [rows][heads].
void prefill_attention(const void* q, const PagedKv& kv, int heads, int rows, int64_t start, float scale, float* out, float* lse,
                       cudaStream_t stream);
// Which of the two runs on the current device, and why.
std::string prefill_attention_path();
bool prefill_attention_sm90_serves();
void prefill_attention_sm90(const void* q, const PagedKv& kv, int heads, int rows, int64_t start, float scale, float* out, float* lse,
                            cudaStream_t stream);

// The attention probabilities that rows [row_from, rows) of such a prefill (with its lse) gave
// each cached position, summed over the rows and over the query heads of each KV head, added
// into acc[kv_head][position] (acc_stride floats a KV head), without forming the rows x keys
// matrix: H2O's prefill scores, SnapKV's window and TOVA's last row.
void prefill_column_sums(const void* q, const PagedKv& kv, int heads, int rows, int64_t start, int row_from, float scale,
                         const float* lse, float* acc, int acc_stride, cudaStream_t stream);

}  // namespace quest
