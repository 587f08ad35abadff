#include <algorithm>
#include <cstdint>

#include "kernels/quest_bounds.cuh"
#include "kernels/quest_select.cuh"
#include "kernels/selection.cuh"

namespace quest {
namespace {

// A block a (list, chunk of kBoundChunk pages); a list's G query heads share KV head l * G / group.
template <int D, int G, typename T>
__global__ void __launch_bounds__(kWarps * 32) estimate_kernel(const T* __restrict__ q, PagedKv kv, float* __restrict__ scores, int group) {
  __shared__ float qs[G][D];
  __shared__ float part_sums[kWarps][kBoundChunk];
  const int l = blockIdx.x, first = blockIdx.y * kBoundChunk, full = kv.meta_full();
  wait_for_previous();
  for (int j = threadIdx.x; j < G * D; j += blockDim.x) qs[j / D][j % D] = Cvt<T>::to(q[(size_t)l * G * D + j]);
  __syncthreads();
  uint4 hi[D / 16], lo[G > 1 ? D / 16 : 1];
  load_bounds<D, G, T>(qs, kv, l * G / group, first, hi, lo);
  score_bounds<D, G, T>(qs, hi, lo, first, full, part_sums, [&](int i, float score) { scores[(size_t)l * full + first + i] = score; });
}

constexpr int kTopkThreads = 256;

// One block per list: a radix select of the k-th largest score (the keys held in registers,
// KPT a thread), then the pages above it and the first (by page) of those equal to it,
// written in page order. A small block keeps the dozen barriers cheap.
template <int KPT>
__global__ void __launch_bounds__(kTopkThreads) topk_kernel(const float* __restrict__ scores, PagedKv kv, int pages,
                                                            int* __restrict__ indptr, int* __restrict__ indices) {
  __shared__ RadixShared sh;
  const int g = blockIdx.x, n = kv.meta_full();
  const int k = min(pages - 1, n);
  const int out_len = k + 1;
  int* out = indices + (size_t)g * out_len;
  wait_for_previous();
  if (threadIdx.x == 0) {
    indptr[g] = g * out_len;
    if (g == gridDim.x - 1) indptr[g + 1] = (g + 1) * out_len;
  }
  // Each thread owns a contiguous chunk, so ranks follow page order.
  const int chunk = (n + kTopkThreads - 1) / kTopkThreads;
  const int lo = min(n, (int)threadIdx.x * chunk), cnt = min(n, lo + chunk) - lo;
  uint32_t keys[KPT];
#pragma unroll
  for (int j = 0; j < KPT; ++j) keys[j] = j < cnt ? order_key(scores[(size_t)g * n + lo + j]) : 0u;
  const bool partial = k > 0 && k < n;  // otherwise every full page, or none, is taken
  uint32_t prefix = 0;
  int rest = k;
  if (partial)
    radix_select<kTopkThreads>(
        sh, k,
        [&](auto count) {
#pragma unroll
          for (int j = 0; j < KPT; ++j)
            if (j < cnt) count(keys[j]);
        },
        prefix, rest);
  take_pages(sh, keys, lo, cnt, partial, k == n, prefix, rest, [&](int pos, int page) { out[pos] = page; });
  if (threadIdx.x == 0) out[k] = n;
}

// Each list's CSR bounds and its last entry, the current page, after its top k pages.
__global__ void list_ends_kernel(int lists, int k, int current, int* indptr, int* indices) {
  wait_for_previous();
  for (int l = blockIdx.x * blockDim.x + threadIdx.x; l <= lists; l += gridDim.x * blockDim.x) {
    indptr[l] = l * (k + 1);
    if (l < lists) indices[(size_t)l * (k + 1) + k] = current;
  }
}

}  // namespace

cudaError_t quest_estimate(const void* q, const PagedKv& kv, int heads, bool per_head, float* scores, cudaStream_t stream) {
  if (!supported(kv, heads) || kv.meta_page < 1) return cudaErrorInvalidValue;
  const int full = kv.meta_full();
  if (full == 0) return cudaSuccess;
  const int group = heads / kv.kv_heads, G = per_head ? 1 : group;
  const dim3 grid(heads / G, (full + kBoundChunk - 1) / kBoundChunk);
  return with_instance(kv, G, [&](auto t, auto d, auto g) {
    using T = decltype(t);
    constexpr int kD = decltype(d)::value, kG = decltype(g)::value;
    return launch(estimate_kernel<kD, kG, T>, grid, kWarps * 32, 0, stream, static_cast<const T*>(q), kv, scores, group);
  });
}

cudaError_t quest_topk(const float* scores, const PagedKv& kv, int pages, int lists, int* indptr, int* indices, cudaStream_t stream) {
  if (pages < 1 || lists < 1) return cudaErrorInvalidValue;
  // Keys per thread: 8 up to 2048 pages (32K tokens at page 16), 32 up to 8192, 64 up to 16384.
  const int n = kv.meta_full();
  if (n <= kTopkThreads * 8) return launch(topk_kernel<8>, lists, kTopkThreads, 0, stream, scores, kv, pages, indptr, indices);
  if (n <= kTopkThreads * 32) return launch(topk_kernel<32>, lists, kTopkThreads, 0, stream, scores, kv, pages, indptr, indices);
  if (n <= kTopkThreads * 64) return launch(topk_kernel<64>, lists, kTopkThreads, 0, stream, scores, kv, pages, indptr, indices);
  // More pages than registers hold: the selection steps' top-k, which reads its scores from
  // memory on every pass, then the lists' ends.
  const int k = std::min(pages - 1, n);
  if (k > 0) {
    const cudaError_t err = top_k_indices(scores, n, n, k, lists, indices, k + 1, stream);
    if (err != cudaSuccess) return err;
  }
  return launch(list_ends_kernel, (lists + 256) / 256, 256, 0, stream, lists, k, n, indptr, indices);
}

}  // namespace quest
