// Decode attention over paged 16-bit KV caches (fp16 or bf16), and Quest's page selection,
// on the GPU. Layout: K and V are [physical page][kv head][page slot][head_dim], in pages of
// kGpuPage tokens whatever Quest's page size; the key minimum and maximum of each Quest page
// (meta_page tokens) are in position order, a chunk of kBoundChunk pages at a time (see
// bound_at). Queries come in the cache's type.
#pragma once
#include <cstdint>
#include <cuda_runtime.h>

#include "kernels/half_types.cuh"

namespace quest {

constexpr int kGpuPage = 16;  // the K/V storage page the GPU kernels are built for

// The key bounds are [chunk][kv head][head_dim][kBoundChunk pages]: a channel's bounds over a
// chunk are one 128-byte line, so Quest's estimate reads only the maximum's line where the
// query's channel is non-negative and only the minimum's where it is negative (the larger of
// q * max and q * min), half the bytes of reading both.
constexpr int kBoundChunk = 64;

// Quest pages of key bounds to allocate for `pages`: whole chunks.
inline int64_t bound_pages(int64_t pages) { return (pages + kBoundChunk - 1) / kBoundChunk * kBoundChunk; }

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
  int meta_page = kGpuPage;  // tokens per key min/max entry: Quest's page size

  __host__ __device__ int length() const { return current_page * page_size + current_len; }
  // Quest pages before the one holding the newest token (that one is always read).
  __host__ __device__ int meta_full() const { return (length() - 1) / meta_page; }
  // Where Quest page `page`'s bound of KV head g, channel i lies in kmin and kmax.
  __host__ __device__ size_t bound_at(int64_t page, int g, int i) const {
    return ((size_t(page / kBoundChunk) * kv_heads + g) * head_dim + i) * kBoundChunk + page % kBoundChunk;
  }
};

// Page lists in CSR form: list l reads logical pages indices[indptr[l] .. indptr[l+1]). A list
// serves one KV head's query heads, or with per_head one query head (Quest's per-query-head
// rule), reading its KV head's keys.
struct PageLists {
  const int* indptr = nullptr;
  const int* indices = nullptr;
  bool per_head = false;
  int longest = 0;  // entries of the longest list, where the caller knows them (0: unknown)
};

// Token lists: list l reads the `count` positions indices[l * stride ..] (every policy that
// selects tokens reads as many for each list); lists as in PageLists.
struct TokenLists {
  const int* indices = nullptr;
  int stride = 0, count = 0;
  bool per_head = false;
};

// What token-list attention reports for the policies that learn from it: each entry's scaled
// score q.k per query head ([heads][stride], entry order) and each head's log-sum-exp.
struct LogitsReport {
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

// Quest's estimate: score[g][p] = sum over the group's query heads h and channels i of
// max(q_hi * max_pi, q_hi * min_pi), for the Quest pages p < kv.meta_full(); with per_head,
// score[h][p] for each query head h alone.
cudaError_t quest_estimate(const void* q, const PagedKv& kv, int heads, bool per_head, float* scores, cudaStream_t stream);

// Per list (`lists` rows of scores): the top (pages - 1) Quest pages by score (ties to the
// lower page), in page order, then the current one; written as CSR lists with `pages` entries
// each (fewer when fewer pages exist). `indptr` gets lists + 1 entries.
cudaError_t quest_topk(const float* scores, const PagedKv& kv, int pages, int lists, int* indptr, int* indices, cudaStream_t stream);

// Quest's whole decode step where Quest's page is the storage page: the estimate, the top-k
// (lists in indptr and indices as quest_topk writes them) and the attention over the lists
// into out. For lists of one query head (per_head, or one query head a KV head) of up to
// 2,048 full pages and 128 entries (budget 2048 at page 16), on Hopper, one launch does it
// all and `scores` and the scratch go unused; otherwise quest_estimate (into `scores`),
// quest_topk and decode_attention in turn.
cudaError_t quest_step(const void* q, const PagedKv& kv, int heads, bool per_head, int pages, float scale, const SplitScratch& scratch,
                       float* scores, int* indptr, int* indices, float* out, cudaStream_t stream);

// Quest's page lists (as quest_topk writes them, `pages` a list, the current page last) as
// token lists of the pages' positions, for Quest pages other than the storage page.
cudaError_t quest_pages_to_tokens(const PageLists& pages_in, const PagedKv& kv, int pages, int lists, const TokenLists& out,
                                  cudaStream_t stream);

// Per KV head, the positions its query heads' page lists (`pages` each, per_head) read
// together, added into *total: the tokens a KV head serves under per-query-head selection.
cudaError_t quest_union_tokens(const PageLists& lists, const PagedKv& kv, int heads, int pages, unsigned long long* total,
                               cudaStream_t stream);

// Appends one token's K and V ([kv_heads][head_dim], in the cache's type) at logical position
// `pos` and folds the key into its Quest page's min/max (a new page starts them at the key).
cudaError_t append_kv(const PagedKv& kv, int pos, const void* k, const void* v, cudaStream_t stream);

// Recomputes the key min/max of Quest pages [first_page, last_page] of a cache holding
// `length` tokens (a prefill writes many tokens at once).
cudaError_t page_minmax(const PagedKv& kv, int first_page, int last_page, int64_t length, cudaStream_t stream);

// Dense page lists: every KV head reads logical pages [0, pages).
cudaError_t fill_dense_lists(int kv_heads, int pages, int* indptr, int* indices, cudaStream_t stream);

}  // namespace quest
