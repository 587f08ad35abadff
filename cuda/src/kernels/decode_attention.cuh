// Decode attention: one query token's attention over page lists or token lists of the paged
// cache, split over the lists' entries and merged by log-sum-exp.
#pragma once
#include <cuda_runtime.h>

#include "kernels/paged_kv.cuh"

namespace quest {

// out[h] = softmax(q_h K^T * scale) V over the pages listed for h (its KV head's list, or
// its own with per_head), for `heads` query heads grouped over kv_heads (GQA): partial
// attention per split, then the log-sum-exp merge, in a launch of its own or, for short lists
// of one query head on Hopper (lists.longest given), on chip within each list's cluster of
// splits. The scratch may then go unused; its split count is an upper bound either way.
cudaError_t decode_attention(const void* q, const PagedKv& kv, const PageLists& lists, int heads, float scale,
                             const SplitScratch& scratch, float* out, cudaStream_t stream);

// The same over token lists (the split count counts chunks of 16 entries), with the report's
// outputs filled where given.
cudaError_t decode_attention_tokens(const void* q, const PagedKv& kv, const TokenLists& lists, int heads, float scale,
                                    const SplitScratch& scratch, const LogitsReport& report, float* out, cudaStream_t stream);

}  // namespace quest
