// Plan, then run (as FlashInfer's decode): what a sequence's decode attention launches is
// decided by a plan made when the sequence is created, from what it finds once (the SMs, and
// how many blocks or clusters of each of its kernels the GPU holds at once); the entry points
// (decode_attention.cuh, quest_step.cuh) only launch what they are handed. Within the plan a
// step picks by the length of its lists, which grows with the sequence. No call here waits on
// the GPU, so a decode step can be captured in a CUDA graph.
#pragma once
#include "kernels/half_types.cuh"
#include "kernels/paged_kv.cuh"

namespace quest {

// How a page-list attention launches.
struct PageLaunch {
  int splits = 1;        // blocks a list
  bool ahead = false;    // each warp looks a page ahead: short lists
  bool cluster = false;  // a list's splits form one cluster that merges on chip (one query head a list)
};

// How Quest's step launches: one fused kernel, or the estimate, the top-k and `attention`.
struct QuestLaunch {
  bool fused = false;
  PageLaunch attention;
};

// What fits on the GPU at once of the decode kernels for one list shape (decode_attention.cu).
struct DecodeFit {
  int ahead = 1, plain = 1, tokens = 1;  // blocks of the page-list kernels (looking ahead or not) and the token-list one
  int cluster_lists = 0;                 // lists of one query head whose clusters of the on-chip-merge kernel fit
};

class DecodePlan {
 public:
  // For a cache of `type` and `head_dim` read by `heads` query heads over `kv_heads` KV heads,
  // on the current device; throws where the kernels do not serve the shape.
  DecodePlan(HalfType type, int head_dim, int heads, int kv_heads);

  // Splits the scratch must hold for any list: about four blocks a SM over the KV heads.
  int max_splits() const { return max_splits_; }
  // The splits for `lists` lists of `pages` pages each: about four blocks a SM, at least two
  // pages a split; of `count` token-list entries (chunks of kGpuPage).
  int page_splits(int pages, int lists) const;
  int token_splits(int count, int lists) const;

  // A page-list attention within `splits` splits over lists of at most `longest` pages (0:
  // unknown): lists of up to 16 pages a split look a page ahead, and where those are of one
  // query head and a cluster of kClusterSplits blocks a list fits, merge on chip; otherwise
  // no more splits than one wave of blocks holds.
  PageLaunch pages(int splits, int longest, bool per_head) const;
  // A token-list attention's splits within `splits`: one wave.
  int tokens(int splits, bool per_head) const;
  // Quest's step over `pages` pages a list (the current one included) on the cache as it is
  // now, its attention within `splits` splits: fused where quest_step_fits and its clusters fit.
  QuestLaunch quest(const PagedKv& kv, int pages, int splits, bool per_head) const;

 private:
  int heads_ = 0, group_ = 1, sms_ = 1, max_splits_ = 1;
  DecodeFit grouped_, single_;  // lists of a KV head's query heads, lists of one query head
  int step_lists_ = 0;          // lists whose clusters of the fused Quest step fit
};

}  // namespace quest
