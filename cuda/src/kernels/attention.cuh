// Decode attention over paged 16-bit KV caches (fp16 or bf16), and Quest's page selection,
// on the GPU. Layout, as in the CPU cache: K and V are [physical page][kv head][page slot]
// [head_dim]; the per-page key minimum and maximum are [physical page][kv head][head_dim].
// Queries come in the cache's type.
#pragma once
#include <cstdint>
#include <cuda_runtime.h>

#include "kernels/half_types.cuh"

namespace quest {

constexpr int kGpuPage = 16;  // the page size the GPU kernels are built for

struct PagedKv {
  HalfType type = HalfType::F16;  // of K, V, their page bounds and the queries
  const void* k = nullptr;
  const void* v = nullptr;
  const void* kmin = nullptr;
  const void* kmax = nullptr;
  const int* page_table = nullptr;  // logical page -> physical page
  int kv_heads = 0, head_dim = 0, page_size = 0;
  int current_page = 0;  // logical page holding the newest token
  int current_len = 0;   // its valid tokens (1..page_size); every other page is full
};

// Page lists in CSR form: KV head g reads logical pages indices[indptr[g] .. indptr[g+1]).
struct PageLists {
  const int* indptr = nullptr;
  const int* indices = nullptr;
};

// Token lists: KV head g reads the `count` positions indices[g * stride ..] (every policy
// that selects tokens reads as many for each KV head).
struct TokenLists {
  const int* indices = nullptr;
  int stride = 0, count = 0;
};

// What token-list attention reports for the policies that learn from it: each entry's scaled
// score q.k per query head ([heads][stride], entry order) and each head's log-sum-exp.
struct Probe {
  float* logits = nullptr;
  int stride = 0;
  float* lse = nullptr;
};

// Split-KV scratch: each (query head, split) keeps its normalised output and log-sum-exp.
struct SplitScratch {
  float* o = nullptr;    // [heads][splits][head_dim]
  float* lse = nullptr;  // [heads][splits]
  int splits = 0;
};

// out[h] = softmax(q_h K^T * scale) V over the pages each KV head lists, for `heads` query
// heads grouped over kv_heads (GQA). Two launches: partial attention per split, then the
// log-sum-exp merge.
cudaError_t decode_attention(const void* q, const PagedKv& kv, const PageLists& lists, int heads, float scale,
                             const SplitScratch& scratch, float* out, cudaStream_t stream);

// The same over token lists (the split count counts chunks of 16 entries), with the probe's
// outputs filled where given.
cudaError_t decode_attention_tokens(const void* q, const PagedKv& kv, const TokenLists& lists, int heads, float scale,
                                    const SplitScratch& scratch, const Probe& probe, float* out, cudaStream_t stream);

// Quest's estimate: score[g][p] = sum over the group's query heads h and channels i of
// max(q_hi * max_pi, q_hi * min_pi), for the full pages p < kv.current_page.
cudaError_t quest_estimate(const void* q, const PagedKv& kv, int heads, float* scores, cudaStream_t stream);

// Per KV head: the top (pages - 1) full pages by score (ties to the lower page), in page
// order, then the current page; written as CSR lists with `pages` entries per KV head
// (fewer when fewer pages exist). `indptr` gets kv_heads + 1 entries.
cudaError_t quest_topk(const float* scores, const PagedKv& kv, int pages, int* indptr, int* indices, cudaStream_t stream);

// Appends one token's K and V ([kv_heads][head_dim], in the cache's type) at logical position
// `pos` and folds the key into its page's min/max (a new page starts them at the key).
cudaError_t append_kv(const PagedKv& kv, int pos, const void* k, const void* v, cudaStream_t stream);

// Recomputes the key min/max of logical pages [first_page, last_page] of a cache holding
// `length` tokens (a prefill writes many tokens at once).
cudaError_t page_minmax(const PagedKv& kv, int first_page, int last_page, int64_t length, cudaStream_t stream);

// Dense page lists: every KV head reads logical pages [0, pages).
cudaError_t fill_dense_lists(int kv_heads, int pages, int* indptr, int* indices, cudaStream_t stream);

}  // namespace quest
