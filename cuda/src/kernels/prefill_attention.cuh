// A prefill chunk's causal attention on the GPU (prefill_attention.cu), and the column sums of
// its probabilities that the policies learning from the prefill read (prefill_column_sums.cu).
// Each call queues work on `stream` and throws on a launch error.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "kernels/paged_kv.cuh"

namespace quest {

// Tokens a forward pass of a prefill takes at once: enough rows that its GEMMs and attention
// tiles fill the GPU, few enough that its scratch stays small at any context length.
constexpr int kPrefillChunk = 2048;

// Both flash prefills keep scores in log2 units (exp2 is one instruction): s * log2(e).
constexpr float kLog2e = 1.4426950408889634f, kLn2 = 0.69314718055994531f;

// A prefill chunk's attention: `rows` queries at positions start.. over the cache.
struct PrefillArgs {
  const void* q = nullptr;  // [rows][heads][head_dim], in the cache's type
  PagedKv kv;
  int heads = 0, rows = 0;
  int64_t start = 0;
  float scale = 0;
  float* out = nullptr;  // fp32 [rows][heads][head_dim]
  float* lse = nullptr;  // each row's log-sum-exp [rows][heads], when given
  float softcap = 0;     // scores soft-capped at this (Gemma 2's attn_logit_softcapping; 0: none)
};

// Causal attention over the cache's positions [0, start + rows): flash attention on mma.sync
// (prefill_attention.cu), or on wgmma where the card is an sm_90, the addon has sm_90a code,
// the driver encodes tensor maps and the wgmma kernel is written for the head_dim
// (prefill_attention_sm90.cu).
void prefill_attention(const PrefillArgs& a, cudaStream_t stream);
// Which of the two runs on the current device, and why.
std::string prefill_attention_path();
// Why the wgmma kernel does not serve this device ("" where it does); QUEST_PREFILL_ATTENTION
// other than mma or unset is refused.
const std::string& prefill_attention_sm90_refusal();
bool prefill_attention_sm90_serves();
constexpr bool wgmma_head_dim(int head_dim) { return head_dim == 64 || head_dim == 128; }
void prefill_attention_sm90(const PrefillArgs& a, cudaStream_t stream);

// The attention probabilities that rows [row_from, rows) of such a prefill (its queries q at
// positions start.., and its lse) gave each cached position, summed over the rows and over the
// query heads of each KV head, added into acc[kv_head][position] (acc_stride floats a KV
// head), without forming the rows x keys matrix: H2O's prefill scores, SnapKV's window and
// TOVA's last row.
struct ColumnSums {
  const void* q = nullptr;
  PagedKv kv;
  int heads = 0, rows = 0;
  int64_t start = 0;
  int row_from = 0;
  float scale = 0;
  const float* lse = nullptr;
  float* acc = nullptr;
  int acc_stride = 0;
  float softcap = 0;  // as PrefillArgs'
};
void prefill_column_sums(const ColumnSums& c, cudaStream_t stream);
// The same on wgmma where the sm_90a prefill serves and head_dim is 64 or 128; false elsewhere.
bool prefill_column_sums_sm90(const ColumnSums& c, cudaStream_t stream);

}  // namespace quest
