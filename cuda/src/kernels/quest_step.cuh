// Quest's whole decode step where Quest's page is the storage page: the estimate, the top-k
// and the attention over the pages taken, fused into one launch where it can be.
#pragma once
#include <cuda_runtime.h>

#include "kernels/paged_kv.cuh"

namespace quest {

// Quest's whole decode step where Quest's page is the storage page: the estimate, the top-k
// (lists in indptr and indices as quest_topk writes them) and the attention over the lists
// into out. For lists of one query head (per_head, or one query head a KV head) of up to
// 2,048 full pages and 128 entries (budget 2048 at page 16), on Hopper, one launch does it
// all and `scores` and the scratch go unused; otherwise quest_estimate (into `scores`),
// quest_topk and decode_attention in turn.
cudaError_t quest_step(const void* q, const PagedKv& kv, int heads, bool per_head, int pages, float scale, const SplitScratch& scratch,
                       float* scores, int* indptr, int* indices, float* out, cudaStream_t stream);

}  // namespace quest
