// Writing the paged cache: one token's K and V appended with its Quest page's key bounds
// updated, and the bounds of a prefill's pages recomputed.
#pragma once
#include <cstdint>
#include <cuda_runtime.h>

#include "kernels/paged_kv.cuh"

namespace quest {

// Appends one token's K and V ([kv_heads][head_dim], in the cache's type) at logical position
// `pos` and folds the key into its Quest page's min/max (a new page starts them at the key).
cudaError_t append_kv(const PagedKv& kv, int pos, const void* k, const void* v, cudaStream_t stream);

// Recomputes the key min/max of Quest pages [first_page, last_page] of a cache holding
// `length` tokens (a prefill writes many tokens at once).
cudaError_t page_minmax(const PagedKv& kv, int first_page, int last_page, int64_t length, cudaStream_t stream);

}  // namespace quest
