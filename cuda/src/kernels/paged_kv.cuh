// The paged 16-bit KV cache (fp16 or bf16) as the GPU kernels read it, and the page and token
// lists, reports and split scratch that the decode step's ops pass between them. Layout: K and
// V are [physical page][kv head][page slot][head_dim], in pages of kGpuPage tokens whatever
// Quest's page size; the key minimum and maximum of each Quest page (meta_page tokens) are in
// position order, a chunk of kBoundChunk pages at a time (see bound_at). Queries come in the
// cache's type.
#pragma once
#include <cstdint>
#include <cuda_runtime.h>

#include "kernels/half_types.cuh"

namespace quest {

constexpr int kGpuPage = 16;  // the K/V storage page the GPU kernels are built for
constexpr int kLanes = 16;    // sequences (a decode batch's lanes) one launch of a decode step's kernels serves at most

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
  // Physical pages K and V hold: how far a tensor-map copy may reach. The wgmma prefill copies
  // whole pages, the slots past a sequence's end in its last page too, where a NaN would meet
  // P = 0 in P V: the pool zeroes its new pages, and a page it hands out again holds what its
  // last sequence wrote (finite unless that sequence's K or V overflowed the 16-bit type).
  int64_t capacity = 0;

  __host__ __device__ int length() const { return current_page * page_size + current_len; }
  // Quest pages before the one holding the newest token (that one is always read).
  __host__ __device__ int meta_full() const { return (length() - 1) / meta_page; }
  // Where token p's row of KV head g (d values) starts in k and v, through the page table.
  __device__ size_t row_at(int64_t p, int g, int d) const {
    return ((size_t(page_table[p / kGpuPage]) * kv_heads + g) * kGpuPage + p % kGpuPage) * d;
  }
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

}  // namespace quest
