// A block's asynchronous copies (cp.async) of query rows and of the paged cache's rows into
// shared memory, rows D + 8 values apart (each 8-row ldmatrix then touches every bank once):
// what the mma.sync prefill kernels stream their tiles with.
#pragma once
#include <cstdint>

#include "kernels/mma.cuh"
#include "kernels/paged_kv.cuh"

namespace quest {

// Starts copying rows [q0, q0 + ROWS) of head h of q ([rows][heads][D]) into Qs, zeros past
// `rows`; the block's THREADS threads share the 16-byte pieces.
template <int D, int ROWS, int THREADS, typename E>
__device__ inline void copy_query_rows(const E* q, int q0, int rows, int heads, int h, E* Qs) {
  constexpr int S = D + 8, C = D / 8;
  for (int i = threadIdx.x; i < ROWS * C; i += THREADS) {
    const int r = i / C, c = (i % C) * 8;
    const bool ok = q0 + r < rows;
    cp_async16(Qs + r * S + c, q + (ok ? (size_t(q0 + r) * heads + h) * D + c : 0), ok);
  }
}

// Starts copying the cache rows at positions [p0, p0 + ROWS) of KV head g from each cache
// from[j] (the keys, the values) into to[j], zeros at or past `total`; each piece's place in
// the pages is found once for all of them.
template <int D, int ROWS, int THREADS, typename E, int N>
__device__ inline void copy_cache_rows(const PagedKv& kv, int g, int64_t p0, int64_t total, const E* const (&from)[N], E* const (&to)[N]) {
  constexpr int S = D + 8, C = D / 8;
  for (int i = threadIdx.x; i < ROWS * C; i += THREADS) {
    const int r = i / C, c = (i % C) * 8;
    const int64_t p = p0 + r;
    const bool ok = p < total;
    const size_t off = ok ? kv.row_at(p, g, D) + c : 0;
#pragma unroll
    for (int j = 0; j < N; ++j) cp_async16(to[j] + r * S + c, from[j] + off, ok);
  }
}

}  // namespace quest
