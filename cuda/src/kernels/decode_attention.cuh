// Decode attention: one query token's attention over page lists or token lists of the paged
// cache, split over the lists' entries and merged by log-sum-exp.
#pragma once
#include <cuda_runtime.h>

#include "kernels/decode_plan.cuh"
#include "kernels/paged_kv.cuh"

namespace quest {

// One query token's attention: its queries ([heads][head_dim], in the cache's type), the
// cache, the split scratch (of DecodePlan::max_splits() splits; its split count is the
// launch's) and the output, fp32 [heads][head_dim].
struct DecodeArgs {
  const void* q = nullptr;
  PagedKv kv;
  int heads = 0;
  float scale = 0;
  SplitScratch scratch;
  float* out = nullptr;
  float softcap = 0;  // scores soft-capped at this (Gemma 2's attn_logit_softcapping; 0: none)
};

// out[h] = softmax(q_h K^T * scale, soft-capped) V over the pages listed for h (its KV head's list, or
// its own with per_head), for `heads` query heads grouped over kv_heads (GQA): partial
// attention per split, then the log-sum-exp merge, in a launch of its own or, where the plan
// says (short lists of one query head on Hopper), on chip within each list's cluster of
// splits; the scratch then goes unused.
cudaError_t decode_attention(const DecodeArgs& a, const PageLists& lists, const PageLaunch& plan, cudaStream_t stream);

// The same for n sequences at once (a decode batch's lanes): sequence i's arguments, lists and
// launch as it would take them alone, so that its output has the same bits; one launch of
// each kernel for the lanes of each launch kind (looking ahead or not, merged on chip or not)
// and list kind (per_head or not), kLanes at a time. The lanes share the cache's type and shape, heads, scale and soft cap.
cudaError_t decode_attention(const DecodeArgs* a, const PageLists* lists, const PageLaunch* plans, int n, cudaStream_t stream);

// The same over token lists in `splits` splits (of chunks of 16 entries), with the report's
// outputs filled where given.
cudaError_t decode_attention_tokens(const DecodeArgs& a, const TokenLists& lists, int splits, const LogitsReport& report,
                                    cudaStream_t stream);

// What the GPU holds at once of these kernels for lists of G query heads: the plan's facts.
DecodeFit decode_fit(HalfType type, int head_dim, int G);

}  // namespace quest
