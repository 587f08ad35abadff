// The device steps the token-selecting policies (StreamingLLM, H2O, TOVA, SnapKV, oracle
// top-k) are composed of. Lists are per KV head, `stride` ints apart, each of the same length
// (every policy reads as many tokens for each KV head); positions within a list ascend.
#pragma once
#include <cuda_runtime.h>

namespace quest {

struct TokenRange {
  int lo = 0, hi = 0;  // [lo, hi); empty when hi <= lo
};

// out[g] = kept[g][0 .. kept_count) ++ [a.lo, a.hi) ++ [b.lo, b.hi); `kept` may be null
// when kept_count is 0.
cudaError_t compose_lists(const int* kept, int kept_count, int kept_stride, TokenRange a, TokenRange b, int kv_heads, int* out,
                          int out_stride, cudaStream_t stream);

// The attention probability each of the `count` entries of KV head g's list received, summed
// over the group's query heads, from a token-list attention's report (logits [heads][stride],
// lse [heads]). Added into acc[g][position] when `acc` is given; written to probs[g][entry]
// when `probs` is.
cudaError_t group_probs(const float* logits, const float* lse, int stride, int heads, int kv_heads, const int* lists, int count,
                        float* acc, int acc_stride, float* probs, cudaStream_t stream);

// out[g] = the indices of the `k` largest of scores[g][0 .. n) (ties to the lower index),
// ascending. k <= n.
cudaError_t top_k_indices(const float* scores, int score_stride, int n, int k, int kv_heads, int* out, int out_stride,
                          cudaStream_t stream);

// out[g] = in[g][0 .. count) without the entry whose score is least among the first
// count - protect (the newest `protect` entries stay). An entry's score is
// scores[g][in[g][i]] when `by_position`, else scores[g][i]; a tie drops the later entry
// when `later`, else the earlier. count - 1 entries are written.
cudaError_t evict_one(const int* in, int count, int in_stride, const float* scores, int score_stride, bool by_position, int protect,
                      bool later, int kv_heads, int* out, int out_stride, cudaStream_t stream);

// out[g][j] = max of in[g][t] over t in [j - half, j + half] within [0, n) (SnapKV's pooling).
cudaError_t max_pool(const float* in, int stride, int n, int half, int kv_heads, float* out, cudaStream_t stream);

}  // namespace quest
