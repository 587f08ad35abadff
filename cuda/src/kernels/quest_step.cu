#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/decode_attention.cuh"
#include "kernels/quest_bounds.cuh"
#include "kernels/quest_select.cuh"
#include "kernels/quest_step.cuh"

namespace quest {
namespace {

constexpr int kStepKeys = 16;  // scores a thread of the fused Quest step holds: 2,048 pages (32K tokens at page 16)

// Quest's whole step for lists of one query head (G = 1: one KV head's heads, or Quest's
// per-query-head rule), each list a cluster of kClusterSplits blocks, without a launch or a
// trip through memory between its phases:
//  - each block scores its share of the list's chunks of pages into its shared memory, and
//    sends them to every block of the cluster (cluster.cuh: no cluster-wide release);
//  - every block runs the same radix select over all the scores, so each knows the whole
//    list; after its first pass each fetches a sixteenth of the pages surely taken into L2;
//  - each keeps (and writes to `indices`, CSR as quest_topk) the entries of its own split;
//  - the split's attention, and the merge on chip, as in decode_partial.
// At 32K, budget 2048, it takes 28.6-28.9 us (H100; 32.8 in three kernels). Selecting in
// fewer blocks and handing out the entries, spreading one select over the cluster, passing
// the scores through L2, handing out the pages from a cluster counter, the page table in
// shared memory and the other variants in docs/quest-step.md were all slower. CAP: attention
// scores soft-capped at `cap` (the estimate ranks pages by a bound, which the monotone cap keeps).
template <int D, typename T, bool CAP>
__global__ void __launch_bounds__(kWarps * 32, 5) quest_step_kernel(const T* __restrict__ q, PagedKv kv, int pages, float scale, int group,
                                                                   int* __restrict__ indptr, int* __restrict__ indices,
                                                                   float* __restrict__ out, float cap) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900  // clusters: quest_step launches it on Hopper only
  constexpr int LT = token_lanes<D>(), TPW = 32 / LT, THREADS = kWarps * 32;
  constexpr int MOST = THREADS * kStepKeys;                              // full pages the keys can hold
  constexpr int OWN = (MOST / kBoundChunk + kClusterSplits - 1) / kClusterSplits;  // chunks a block scores, at most
  constexpr int SPLIT = MOST / kClusterSplits + 1;                       // list entries a split holds, at most
  static_assert(kStepKeys % 4 == 0 && kBoundChunk % kStepKeys == 0, "a thread's keys are whole 16-byte pieces of one chunk");
  static_assert(kStepKeys == kClusterSplits, "a block's pages to fetch are one key of each thread");
  __shared__ float qs[1][D];
  __shared__ float part_sums[kWarps][kBoundChunk];
  __shared__ __align__(16) float own[OWN * kBoundChunk];
  __shared__ __align__(16) float scores[MOST];  // the list's, sent by the blocks that computed them
  __shared__ uint64_t scores_in;
  __shared__ RadixShared sh;
  __shared__ int mine[SPLIT], mine_phys[SPLIT];
  const int l = blockIdx.x, g = l / group, rank = int(cooperative_groups::this_cluster().block_rank());
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, sub = lane % LT, slot = lane / LT;
  const int n = kv.meta_full(), k = min(pages - 1, n);
  const int per = (k + kClusterSplits) / kClusterSplits;  // k + 1 entries over the splits
  const int p0 = rank * per, p1 = min(k + 1, p0 + per);
  if (threadIdx.x == 0) expect_bytes(&scores_in, 16 * ((n + 3) / 4));  // each chunk's scores in whole 16-byte pieces
  start_cluster_merge<D, 1>();
  cluster_arrive_relaxed();
  wait_for_previous();
  for (int j = threadIdx.x; j < D; j += THREADS) qs[0][j] = Cvt<T>::to(q[(size_t)l * D + j]);
  __syncthreads();

  // Chunk c is scored by the block of rank c % kClusterSplits, into its own[c / kClusterSplits];
  // a block's (at most two) chunks are loaded at once, to keep the bytes in flight that the
  // estimate kernel's twice as many blocks do (one at a time: 33.9 us, docs/quest-step.md). The query's
  // state for the attention waits until after the select, to leave the registers to this.
  {
    static_assert(OWN <= 2, "a block's chunks fit two sets of lines");
    const int c = rank, c2 = rank + kClusterSplits;
    uint4 a[D / 16], b[D / 16], unused[1];
    if (c * kBoundChunk < n) load_bounds<D, 1, T>(qs, kv, g, c * kBoundChunk, a, unused);
    if (c2 * kBoundChunk < n) load_bounds<D, 1, T>(qs, kv, g, c2 * kBoundChunk, b, unused);
    if (c * kBoundChunk < n) score_bounds<D, 1, T>(qs, a, unused, c * kBoundChunk, n, part_sums, [&](int i, float s) { own[i] = s; });
    if (c2 * kBoundChunk < n)
      score_bounds<D, 1, T>(qs, b, unused, c2 * kBoundChunk, n, part_sums, [&](int i, float s) { own[kBoundChunk + i] = s; });
  }
  // Every block's chunks to every block (itself included), once all have set up their mbarriers.
  shared_to_async();
  __syncthreads();
  cluster_wait();
  if (threadIdx.x < OWN * kClusterSplits) {
    const int to = threadIdx.x % kClusterSplits, part = threadIdx.x / kClusterSplits, first = (rank + part * kClusterSplits) * kBoundChunk;
    if (first < n) send_bytes(own + part * kBoundChunk, scores + first, &scores_in, to, 16 * ((min(kBoundChunk, n - first) + 3) / 4));
  }
  wait_bytes(&scores_in);

  const int lo = min(n, (int)threadIdx.x * kStepKeys), cnt = min(n, lo + kStepKeys) - lo;
  uint32_t keys[kStepKeys];
  {
    const float4* from = reinterpret_cast<const float4*>(scores + lo);
#pragma unroll
    for (int j = 0; j < kStepKeys / 4; ++j) {
      const float4 f = j * 4 < cnt ? from[j] : make_float4(0, 0, 0, 0);
      keys[j * 4] = order_key(f.x);
      keys[j * 4 + 1] = order_key(f.y);
      keys[j * 4 + 2] = order_key(f.z);
      keys[j * 4 + 3] = order_key(f.w);
    }
  }
  const bool partial = k > 0 && k < n;
  uint32_t prefix = 0;
  int rest = k;
  // Block r fetches into L2 the pages p (p % kClusterSplits == r) that the first pass finds
  // surely taken, while the passes after it run: the select reads no memory, and the pages'
  // bytes then come in behind it (30.8 us against 31.9-32.1 at 32K, docs/quest-step.md; fetching the
  // k-th largest's digit too, some of it not taken, 31.2-31.8).
  uint32_t fetch_key = 0;
#pragma unroll
  for (int j = 0; j < kStepKeys; ++j)
    if (j == rank) fetch_key = keys[j];
  const int fetch_phys = partial && rank < cnt ? kv.page_table[lo + rank] : 0;
  if (partial)
    radix_select<THREADS>(
        sh, k,
        [&](auto count) {
#pragma unroll
          for (int j = 0; j < kStepKeys; ++j)
            if (j < cnt) count(keys[j]);
        },
        prefix, rest, [&](uint32_t sure) {
          if (rank >= cnt || fetch_key < sure) return;
          const size_t base = ((size_t)fetch_phys * kv.kv_heads + g) * kGpuPage * D;
          constexpr int kBytes = kGpuPage * D * (int)sizeof(T);
          asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(static_cast<const T*>(kv.k) + base), "r"(kBytes) : "memory");
          asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(static_cast<const T*>(kv.v) + base), "r"(kBytes) : "memory");
        });
  int* list = indices + (size_t)l * (k + 1);
  auto keep = [&](int pos, int page) {
    if (pos < p0 || pos >= p1) return;
    mine[pos - p0] = page;
    mine_phys[pos - p0] = kv.page_table[page];
    list[pos] = page;
  };
  take_pages(sh, keys, lo, cnt, partial, k == n, prefix, rest, keep);
  if (threadIdx.x == 0) keep(k, n);
  if (threadIdx.x == 0 && rank == 0) {
    indptr[l] = l * (k + 1);
    if (l == gridDim.x - 1) indptr[l + 1] = (l + 1) * (k + 1);
  }
  float qv[1][8], m[1], sum[1], acc[1][8];
  start_state<D, 1, T>(q, l, sub, scale, qv, m, sum, acc);
  __syncthreads();

  for (int i = warp; i < p1 - p0; i += kWarps) attend_page<D, 1, T, CAP>(kv, g, mine[i], mine_phys[i], sub, slot, qv, m, sum, acc, cap, [] {});
  finish_cluster<D, 1, TPW>(m, sum, acc, l, warp, slot, sub, out);
#endif
}

// The fused kernel over one sequence's lists (G = 1).
cudaError_t fused_step(const QuestStep& p, cudaStream_t stream) {
  const DecodeArgs& a = p.a;
  const PagedKv& kv = a.kv;
  const int heads = a.heads, group = heads / kv.kv_heads;
  if (!p.per_head && group != 1) return cudaErrorInvalidValue;
  return with_type_and_dim(kv.type, kv.head_dim, [&](auto t, auto d) -> cudaError_t {
    using T = decltype(t);
    return with_cap(a.softcap, [&](auto capped) {
      constexpr auto kernel = quest_step_kernel<decltype(d)::value, T, decltype(capped)::value>;
      clusters_at_once<kernel>();  // allows this instance its cluster size (the plan asked for the uncapped one)
      return launch_in_clusters(kClusterSplits, kernel, dim3(heads, kClusterSplits), kWarps * 32, 0, stream, static_cast<const T*>(a.q), kv,
                                p.pages, a.scale, group, p.indptr, p.indices, a.out, a.softcap);
    });
  });
}

// Whether the step's cache and lists are ones quest_step serves; its selection's lane; its lists.
bool serves(const QuestStep& p) { return supported(p.a.kv, p.a.heads) && p.a.kv.meta_page == kGpuPage && p.pages >= 1; }
QuestLane lane_of(const QuestStep& p) { return {p.a.q, p.a.kv, p.scores, p.pages, p.indptr, p.indices}; }
PageLists lists_of(const QuestStep& p) { return {p.indptr, p.indices, p.per_head, listed_pages(p.a.kv, p.pages)}; }

}  // namespace

bool quest_step_fits(const PagedKv& kv, int pages) {
  const int n = kv.meta_full();
  // Up to 8 entries a split, two pages a warp: with more, the attention kernel, which looks a
  // page ahead, is faster (32K at budget 4096: 45.0 us against 46.3-47.9 fused, docs/quest-step.md).
  const int per_split = (listed_pages(kv, pages) + kClusterSplits - 1) / kClusterSplits;
  return n >= 1 && n <= kWarps * 32 * kStepKeys && per_split <= 2 * kWarps;
}

int quest_step_clusters(HalfType type, int head_dim) {
  return with_type_and_dim(type, head_dim, [](auto t, auto d) { return clusters_at_once<quest_step_kernel<decltype(d)::value, decltype(t), false>>(); });
}

cudaError_t quest_step(const QuestStep& p, cudaStream_t stream) {
  if (!serves(p)) return cudaErrorInvalidValue;
  if (p.launch.fused) return fused_step(p, stream);
  const QuestLane lane = lane_of(p);
  const cudaError_t err = quest_select(&lane, 1, p.a.heads, p.per_head, stream);
  return err != cudaSuccess ? err : decode_attention(p.a, lists_of(p), p.launch.attention, stream);
}

cudaError_t quest_step(const QuestStep* steps, int n, cudaStream_t stream) {
  for (int i = 0; i < n; ++i)
    if (!serves(steps[i]) || steps[i].a.heads != steps[0].a.heads) return cudaErrorInvalidValue;
  // Lists of a KV head's query heads, then of one query head: one selection and attention each.
  for (const bool per_head : {false, true}) {
    std::vector<QuestLane> lanes;
    std::vector<DecodeArgs> args;
    std::vector<PageLists> lists;
    std::vector<PageLaunch> plans;
    for (int i = 0; i < n; ++i) {
      const QuestStep& p = steps[i];
      if (p.per_head != per_head) continue;
      if (p.launch.fused) {
        if (const cudaError_t err = fused_step(p, stream); err != cudaSuccess) return err;
        continue;
      }
      lanes.push_back(lane_of(p));
      args.push_back(p.a);
      lists.push_back(lists_of(p));
      plans.push_back(p.launch.attention);
    }
    if (lanes.empty()) continue;
    const int m = int(lanes.size());
    cudaError_t err = quest_select(lanes.data(), m, args[0].heads, per_head, stream);
    if (err == cudaSuccess) err = decode_attention(args.data(), lists.data(), plans.data(), m, stream);
    if (err != cudaSuccess) return err;
  }
  return cudaSuccess;
}

}  // namespace quest
