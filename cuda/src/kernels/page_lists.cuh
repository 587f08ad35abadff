// Page lists made or converted on the device: Quest's as token lists of their positions, the
// tokens a KV head serves under per-query-head selection, and the dense lists.
#pragma once
#include <cuda_runtime.h>

#include "kernels/paged_kv.cuh"

namespace quest {

// Quest's page lists (as quest_topk writes them, `pages` a list, the current page last) as
// token lists of the pages' positions, for Quest pages other than the storage page.
cudaError_t quest_pages_to_tokens(const PageLists& pages_in, const PagedKv& kv, int pages, int lists, const TokenLists& out,
                                  cudaStream_t stream);

// Per KV head, the positions its query heads' page lists (`pages` each, per_head) read
// together, added into *total: the tokens a KV head serves under per-query-head selection.
cudaError_t quest_union_tokens(const PageLists& lists, const PagedKv& kv, int heads, int pages, unsigned long long* total,
                               cudaStream_t stream);

// Dense page lists: every KV head reads logical pages [0, pages).
cudaError_t fill_dense_lists(int kv_heads, int pages, int* indptr, int* indices, cudaStream_t stream);

}  // namespace quest
