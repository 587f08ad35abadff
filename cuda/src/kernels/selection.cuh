// The device steps the token-selecting policies (StreamingLLM, H2O, TOVA, SnapKV, oracle
// top-k) are composed of. Lists are per KV head, `stride` ints apart, each of the same length
// (every policy reads as many tokens for each KV head); positions within a list ascend.
#pragma once
#include <cuda_runtime.h>

namespace quest {

struct TokenRange {
  int lo = 0, hi = 0;  // [lo, hi); empty when hi <= lo
};

// The first `count` entries of each KV head's list, `stride` ints apart (none by default).
struct ListHeads {
  const int* lists = nullptr;
  int count = 0, stride = 0;
};

// out[g] = kept[g][0 .. kept.count) ++ [a.lo, a.hi) ++ [b.lo, b.hi).
cudaError_t compose_lists(const ListHeads& kept, TokenRange a, TokenRange b, int kv_heads, int* out, int out_stride, cudaStream_t stream);

// The attention probability each of the `count` entries of KV head g's list received, summed
// over the group's query heads, from a token-list attention's report.
struct GroupProbs {
  const float* logits = nullptr;  // [heads][stride]
  const float* lse = nullptr;     // [heads]
  int stride = 0;
  int heads = 0, kv_heads = 0;
  const int* lists = nullptr;  // [kv_heads][stride], `count` entries each
  int count = 0;
  float* acc = nullptr;  // where given, each probability added into acc[g][position]
  int acc_stride = 0;
  float* probs = nullptr;  // where given, written to probs[g][entry]
};
cudaError_t group_probs(const GroupProbs& p, cudaStream_t stream);

// out[g] = the indices of the `k` largest of scores[g][0 .. n) (ties to the lower index),
// ascending. k <= n.
cudaError_t top_k_indices(const float* scores, int score_stride, int n, int k, int kv_heads, int* out, int out_stride,
                          cudaStream_t stream);

// out[g] = in[g][0 .. count) without the entry whose score is least among the first
// count - protect (the newest `protect` entries stay); count - 1 entries are written.
struct EvictOne {
  const int* in = nullptr;
  int count = 0, in_stride = 0;
  const float* scores = nullptr;
  int score_stride = 0;
  bool by_position = false;  // an entry's score is scores[g][in[g][i]], else scores[g][i]
  int protect = 0;
  bool drop_later = false;  // a tie drops the later entry, else the earlier
  int kv_heads = 0;
  int* out = nullptr;
  int out_stride = 0;
};
cudaError_t evict_one(const EvictOne& e, cudaStream_t stream);

// out[g][j] = max of in[g][t] over t in [j - half, j + half] within [0, n) (SnapKV's pooling).
cudaError_t max_pool(const float* in, int stride, int n, int half, int kv_heads, float* out, cudaStream_t stream);

}  // namespace quest
