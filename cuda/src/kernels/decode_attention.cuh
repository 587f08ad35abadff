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

// The same over token lists in `splits` splits (of chunks of 16 entries), with the report's
// outputs filled where given.
cudaError_t decode_attention_tokens(const DecodeArgs& a, const TokenLists& lists, int splits, const LogitsReport& report,
                                    cudaStream_t stream);

// The splits' outputs of `heads` query heads (sc.splits each) merged into out [heads][head_dim],
// with each head's log-sum-exp into lse where given.
cudaError_t merge_decode_splits(const SplitScratch& sc, int heads, int head_dim, float* out, float* lse, cudaStream_t stream);

// The dense reads of cells of one shared prefill at one length (decode_shared.cu): their first
// `shared` logical pages are the same physical pages in each cell's page table.
constexpr int kRunCells = 16;  // cells one launch takes
struct SharedRun {
  int cells = 0;
  int shared = 0;
  const int* tables[kRunCells] = {};  // each cell's page table (logical -> physical page)
};

// Cells of `group` query heads a KV head whose heads one block of decode_attention_shared holds;
// 0 where that would be fewer than two (nothing to share).
int shared_cells_per_block(int head_dim, int group);

// Each cell's attention over its `pages` pages (all it holds), as decode_attention computes it
// alone over its dense lists with `plan` (not a cluster plan; no soft cap): a.q and a.out hold the
// cells' rows one after another ([cells][heads][head_dim]), a.scratch splits for cells x heads
// heads, a.kv's page_table is unused (run.tables). A shared page is read once for every cell of
// a block, and each cell's output has the bits of the cell alone.
cudaError_t decode_attention_shared(const DecodeArgs& a, const SharedRun& run, int pages, const PageLaunch& plan, cudaStream_t stream);

// What the GPU holds at once of these kernels for lists of G query heads: the plan's facts.
DecodeFit decode_fit(HalfType type, int head_dim, int G);

}  // namespace quest
