#include <algorithm>
#include <cstdint>

#include "kernels/quest_bounds.cuh"
#include "kernels/quest_select.cuh"
#include "kernels/selection.cuh"

namespace quest {
namespace {

struct QuestLanes {
  QuestLane lane[kLanes];
};
static_assert(sizeof(QuestLanes) + 64 <= 4096, "a launch's table and other arguments within the 4 KiB of kernel parameters");

// A block a (list, chunk of kBoundChunk pages, lane); a list's G query heads share KV head l * G / group.
template <int D, int G, typename T>
__global__ void __launch_bounds__(kWarps * 32) estimate_kernel(const __grid_constant__ QuestLanes lanes, int group) {
  __shared__ float qs[G][D];
  __shared__ float part_sums[kWarps][kBoundChunk];
  const QuestLane& my = lanes.lane[blockIdx.z];
  const PagedKv& kv = my.kv;
  const T* __restrict__ q = static_cast<const T*>(my.q);
  float* __restrict__ scores = my.scores;
  const int l = blockIdx.x, first = blockIdx.y * kBoundChunk, full = kv.meta_full();
  if (first >= full) return;  // a lane of fewer pages than the launch's longest
  wait_for_previous();
  for (int j = threadIdx.x; j < G * D; j += blockDim.x) qs[j / D][j % D] = Cvt<T>::to(q[(size_t)l * G * D + j]);
  __syncthreads();
  uint4 hi[D / 16], lo[G > 1 ? D / 16 : 1];
  load_bounds<D, G, T>(qs, kv, l * G / group, first, hi, lo);
  score_bounds<D, G, T>(qs, hi, lo, first, full, part_sums, [&](int i, float score) { scores[(size_t)l * full + first + i] = score; });
}

constexpr int kTopkThreads = 256;

// One block per (list, lane): a radix select of the k-th largest score (the keys held in registers,
// KPT a thread), then the pages above it and the first (by page) of those equal to it,
// written in page order. A small block keeps the dozen barriers cheap.
template <int KPT>
__global__ void __launch_bounds__(kTopkThreads) topk_kernel(const __grid_constant__ QuestLanes lanes) {
  __shared__ RadixShared sh;
  const QuestLane& my = lanes.lane[blockIdx.y];
  const PagedKv& kv = my.kv;
  const float* __restrict__ scores = my.scores;
  int* __restrict__ indptr = my.indptr;
  int* __restrict__ indices = my.indices;
  const int pages = my.pages;
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

// The estimate of lanes[0..n) (at most kLanes), one launch over the most chunks of any.
cudaError_t estimate_lanes(const QuestLane* lanes, int n, int heads, bool per_head, cudaStream_t stream) {
  QuestLanes table;
  int chunks = 0;
  for (int i = 0; i < n; ++i) {
    const PagedKv& kv = lanes[i].kv;
    if (!supported(kv, heads) || kv.meta_page < 1 || kv.type != lanes[0].kv.type || kv.head_dim != lanes[0].kv.head_dim ||
        kv.kv_heads != lanes[0].kv.kv_heads)
      return cudaErrorInvalidValue;
    table.lane[i] = lanes[i];
    chunks = std::max(chunks, (kv.meta_full() + kBoundChunk - 1) / kBoundChunk);
  }
  if (chunks == 0) return cudaSuccess;
  const PagedKv& kv = lanes[0].kv;
  const int group = heads / kv.kv_heads, G = per_head ? 1 : group;
  return with_instance(kv, G, [&](auto t, auto d, auto g) {
    using T = decltype(t);
    constexpr int kD = decltype(d)::value, kG = decltype(g)::value;
    return launch(estimate_kernel<kD, kG, T>, dim3(heads / G, chunks, n), kWarps * 32, 0, stream, table, group);
  });
}

// The top-k of lanes[0..n) (at most kLanes) over `lists` lists each: one launch for the lanes
// whose pages the keys in registers hold (KPT a thread, the fewest that serve them all), and
// for each other lane the selection steps' top-k, which reads its scores from memory on every
// pass, then the lists' ends.
cudaError_t topk_lanes(const QuestLane* lanes, int n, int lists, cudaStream_t stream) {
  constexpr int kMostKeys = kTopkThreads * 64;
  for (int i = 0; i < n; ++i)
    if (lanes[i].pages < 1 || lists < 1) return cudaErrorInvalidValue;
  QuestLanes table;
  int m = 0, most = 0;
  for (int i = 0; i < n; ++i) {
    const QuestLane& l = lanes[i];
    const int full = l.kv.meta_full();
    if (full <= kMostKeys) {
      table.lane[m++] = l;
      most = std::max(most, full);
      continue;
    }
    const int k = std::min(l.pages - 1, full);
    if (k > 0)
      if (const cudaError_t err = top_k_indices(l.scores, full, full, k, lists, l.indices, k + 1, stream); err != cudaSuccess) return err;
    if (const cudaError_t err = launch(list_ends_kernel, (lists + 256) / 256, 256, 0, stream, lists, k, full, l.indptr, l.indices);
        err != cudaSuccess)
      return err;
  }
  if (m == 0) return cudaSuccess;
  // Keys per thread: 8 up to 2048 pages (32K tokens at page 16), 32 up to 8192, 64 up to 16384.
  const dim3 grid(lists, m);
  if (most <= kTopkThreads * 8) return launch(topk_kernel<8>, grid, kTopkThreads, 0, stream, table);
  if (most <= kTopkThreads * 32) return launch(topk_kernel<32>, grid, kTopkThreads, 0, stream, table);
  return launch(topk_kernel<64>, grid, kTopkThreads, 0, stream, table);
}

}  // namespace

cudaError_t quest_estimate(const void* q, const PagedKv& kv, int heads, bool per_head, float* scores, cudaStream_t stream) {
  QuestLane lane;
  lane.q = q;
  lane.kv = kv;
  lane.scores = scores;
  return estimate_lanes(&lane, 1, heads, per_head, stream);
}

cudaError_t quest_topk(const float* scores, const PagedKv& kv, int pages, int lists, int* indptr, int* indices, cudaStream_t stream) {
  QuestLane lane;
  lane.kv = kv;
  lane.scores = const_cast<float*>(scores);
  lane.pages = pages;
  lane.indptr = indptr;
  lane.indices = indices;
  return topk_lanes(&lane, 1, lists, stream);
}

cudaError_t quest_select(const QuestLane* lanes, int n, int heads, bool per_head, cudaStream_t stream) {
  if (n < 1 || heads < 1 || lanes[0].kv.kv_heads < 1) return cudaErrorInvalidValue;
  const int lists = per_head ? heads : lanes[0].kv.kv_heads;
  for (int i = 0; i < n; i += kLanes) {
    const int m = std::min(kLanes, n - i);
    cudaError_t err = estimate_lanes(lanes + i, m, heads, per_head, stream);
    if (err == cudaSuccess) err = topk_lanes(lanes + i, m, lists, stream);
    if (err != cudaSuccess) return err;
  }
  return cudaSuccess;
}

}  // namespace quest
