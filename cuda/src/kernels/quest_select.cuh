// Quest's page selection in two launches: the estimate of every full page's score from the key
// bounds, then each list's top pages (the fused Quest step, quest_step.cuh, does both and the
// attention in one where it can).
#pragma once
#include <algorithm>
#include <cuda_runtime.h>

#include "kernels/paged_kv.cuh"

namespace quest {

// Quest's estimate: score[g][p] = sum over the group's query heads h and channels i of
// max(q_hi * max_pi, q_hi * min_pi), for the Quest pages p < kv.meta_full(); with per_head,
// score[h][p] for each query head h alone.
cudaError_t quest_estimate(const void* q, const PagedKv& kv, int heads, bool per_head, float* scores, cudaStream_t stream);

// Per list (`lists` rows of scores): the top (pages - 1) Quest pages by score (ties to the
// lower page), in page order, then the current one; written as CSR lists with `pages` entries
// each (fewer when fewer pages exist). `indptr` gets lists + 1 entries.
cudaError_t quest_topk(const float* scores, const PagedKv& kv, int pages, int lists, int* indptr, int* indices, cudaStream_t stream);

// One sequence of a batched selection: its queries and cache, and where its scores and lists go.
struct QuestLane {
  const void* q = nullptr;
  PagedKv kv;
  float* scores = nullptr;
  int pages = 0;  // Quest pages a list reads, the current one included
  int* indptr = nullptr;
  int* indices = nullptr;
};

// quest_estimate then quest_topk for n sequences at once (a decode batch's lanes, of one cache
// shape): one launch of each kernel for up to kLanes of them, each sequence's scores and lists
// those of the calls on it alone.
cudaError_t quest_select(const QuestLane* lanes, int n, int heads, bool per_head, cudaStream_t stream);

// The lists have min(pages, meta_full() + 1) entries each, as quest_topk writes them.
inline int listed_pages(const PagedKv& kv, int pages) { return std::min(pages, kv.meta_full() + 1); }

}  // namespace quest
