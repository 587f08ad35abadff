// Quest's whole decode step where Quest's page is the storage page: the estimate, the top-k
// and the attention over the pages taken, fused into one launch where it can be.
#pragma once
#include <cuda_runtime.h>

#include "kernels/decode_attention.cuh"
#include "kernels/decode_plan.cuh"
#include "kernels/paged_kv.cuh"

namespace quest {

// The estimate, the top-k (lists in indptr and indices as quest_topk writes them) and the
// attention over the lists into a.out. Fused (DecodePlan::quest), one launch does it all and `scores` and the scratch
// go unused; otherwise quest_estimate (into `scores`), quest_topk and decode_attention in turn.
struct QuestStep {
  DecodeArgs a;
  bool per_head = false;  // a list a query head (Quest's per-query-head rule), else a KV head
  int pages = 0;          // Quest pages a list reads, the current one included
  QuestLaunch launch;
  float* scores = nullptr;
  int* indptr = nullptr;
  int* indices = nullptr;
};
cudaError_t quest_step(const QuestStep& p, cudaStream_t stream);

// The same for n sequences at once (a decode batch's lanes, of one cache shape): each fused
// step a launch of its own; the others' estimates, top-ks and attentions one launch a kind
// (quest_select, decode_attention), each sequence's values those of its step alone.
cudaError_t quest_step(const QuestStep* steps, int n, cudaStream_t stream);

// Whether the fused kernel serves lists of one query head of `pages` pages on the cache as it
// is now: up to 2,048 full pages and 128 entries (budget 2048 at page 16). On Hopper only,
// where quest_step_clusters of its clusters fit at once (0 elsewhere).
bool quest_step_fits(const PagedKv& kv, int pages);
int quest_step_clusters(HalfType type, int head_dim);

}  // namespace quest
