#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>

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
// CL < kClusterSplits (QUEST_STEP_BLOCKS): a cluster of CL blocks a list, each taking
// kClusterSplits / CL of the splits in turn, each split's entries in the same warps and order
// and the merge over the same parts, meant to keep the output's bits (test/share-gpu asks):
// fewer blocks a list, so that more lists (a decode batch's) run at once.
template <int D, typename T, bool CAP, int CL>
__global__ void __launch_bounds__(kWarps * 32, 5) quest_step_kernel(const T* __restrict__ q, PagedKv kv, int pages, float scale, int group,
                                                                   int* __restrict__ indptr, int* __restrict__ indices,
                                                                   float* __restrict__ out, float cap) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900  // clusters: quest_step launches it on Hopper only
  constexpr int LT = token_lanes<D>(), TPW = 32 / LT, THREADS = kWarps * 32, SPB = kClusterSplits / CL;  // splits a block
  constexpr int MOST = THREADS * kStepKeys;                              // full pages the keys can hold
  constexpr int OWN = (MOST / kBoundChunk + CL - 1) / CL;                // chunks a block scores, at most
  constexpr int SPLIT = MOST / kClusterSplits + 1;                       // list entries a split holds, at most
  static_assert(kStepKeys % 4 == 0 && kBoundChunk % kStepKeys == 0, "a thread's keys are whole 16-byte pieces of one chunk");
  static_assert(kStepKeys == kClusterSplits, "a block's pages to fetch are one key of each thread a split");
  static_assert(kClusterSplits % CL == 0 && OWN % 2 == 0, "whole splits a block, its chunks scored two at a time");
  __shared__ float qs[1][D];
  __shared__ float part_sums[kWarps][kBoundChunk];
  __shared__ __align__(16) float own[OWN * kBoundChunk];
  __shared__ __align__(16) float scores[MOST];  // the list's, sent by the blocks that computed them
  __shared__ uint64_t scores_in;
  __shared__ RadixShared sh;
  __shared__ int mine[SPB * SPLIT], mine_phys[SPB * SPLIT];
  const int l = blockIdx.x, g = l / group, rank = int(cooperative_groups::this_cluster().block_rank());
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, sub = lane % LT, slot = lane / LT;
  const int n = kv.meta_full(), k = min(pages - 1, n);
  const int per = (k + kClusterSplits) / kClusterSplits;  // k + 1 entries over the splits
  const int b0 = rank * SPB * per, b1 = min(k + 1, b0 + SPB * per);  // the block's splits' entries
  if (threadIdx.x == 0) expect_bytes(&scores_in, 16 * ((n + 3) / 4));  // each chunk's scores in whole 16-byte pieces
  start_cluster_merge<D, 1>();
  cluster_arrive_relaxed();
  wait_for_previous();
  for (int j = threadIdx.x; j < D; j += THREADS) qs[0][j] = Cvt<T>::to(q[(size_t)l * D + j]);
  __syncthreads();

  // Chunk c is scored by the block of rank c % CL, into its own[c / CL]; a block's chunks are
  // loaded two at a time, to keep the bytes in flight that the estimate kernel's twice as many
  // blocks do (one at a time: 33.9 us, docs/quest-step.md). The query's state for the attention
  // waits until after the select, to leave the registers to this.
  for (int two = 0; two < OWN; two += 2) {
    const int c = rank + two * CL, c2 = c + CL;
    uint4 a[D / 16], b[D / 16], unused[1];
    if (c * kBoundChunk < n) load_bounds<D, 1, T>(qs, kv, g, c * kBoundChunk, a, unused);
    if (c2 * kBoundChunk < n) load_bounds<D, 1, T>(qs, kv, g, c2 * kBoundChunk, b, unused);
    if (c * kBoundChunk < n)
      score_bounds<D, 1, T>(qs, a, unused, c * kBoundChunk, n, part_sums, [&](int i, float s) { own[two * kBoundChunk + i] = s; });
    if (c2 * kBoundChunk < n)
      score_bounds<D, 1, T>(qs, b, unused, c2 * kBoundChunk, n, part_sums, [&](int i, float s) { own[(two + 1) * kBoundChunk + i] = s; });
  }
  // Every block's chunks to every block (itself included), once all have set up their mbarriers.
  shared_to_async();
  __syncthreads();
  cluster_wait();
  if (threadIdx.x < OWN * CL) {
    const int to = threadIdx.x % CL, part = threadIdx.x / CL, first = (rank + part * CL) * kBoundChunk;
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
  // Block r fetches into L2 the pages p (p % CL == r) that the first pass finds surely taken,
  // while the passes after it run: the select reads no memory, and the pages' bytes then come
  // in behind it (30.8 us against 31.9-32.1 at 32K, docs/quest-step.md; fetching the k-th
  // largest's digit too, some of it not taken, 31.2-31.8). Key rank + f CL of each thread.
  uint32_t fetch_key[SPB] = {};
  int fetch_phys[SPB];
#pragma unroll
  for (int f = 0; f < SPB; ++f) {
#pragma unroll
    for (int j = f * CL; j < (f + 1) * CL; ++j)  // keys f CL .. hold it (rank < CL): a select each, no indexing
      if (j - f * CL == rank) fetch_key[f] = keys[j];
    fetch_phys[f] = partial && rank + f * CL < cnt ? kv.page_table[lo + rank + f * CL] : 0;
  }
  if (partial)
    radix_select<THREADS>(
        sh, k,
        [&](auto count) {
#pragma unroll
          for (int j = 0; j < kStepKeys; ++j)
            if (j < cnt) count(keys[j]);
        },
        prefix, rest, [&](uint32_t sure) {
#pragma unroll
          for (int f = 0; f < SPB; ++f) {
            if (rank + f * CL >= cnt || fetch_key[f] < sure) continue;
            const size_t base = ((size_t)fetch_phys[f] * kv.kv_heads + g) * kGpuPage * D;
            constexpr int kBytes = kGpuPage * D * (int)sizeof(T);
            asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(static_cast<const T*>(kv.k) + base), "r"(kBytes) : "memory");
            asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(static_cast<const T*>(kv.v) + base), "r"(kBytes) : "memory");
          }
        });
  int* list = indices + (size_t)l * (k + 1);
  auto keep = [&](int pos, int page) {
    if (pos < b0 || pos >= b1) return;
    mine[pos - b0] = page;
    mine_phys[pos - b0] = kv.page_table[page];
    list[pos] = page;
  };
  take_pages(sh, keys, lo, cnt, partial, k == n, prefix, rest, keep);
  if (threadIdx.x == 0) keep(k, n);
  if (threadIdx.x == 0 && rank == 0) {
    indptr[l] = l * (k + 1);
    if (l == gridDim.x - 1) indptr[l + 1] = (l + 1) * (k + 1);
  }
#pragma unroll 1
  for (int f = 0; f < SPB; ++f) {
    const int split = rank * SPB + f, p0 = split * per - b0, p1 = min(k + 1, split * per + per) - b0;  // in mine[]
    float qv[1][8], m[1], sum[1], acc[1][8];
    start_state<D, 1, T>(q, l, sub, scale, qv, m, sum, acc);
    __syncthreads();  // mine[] written; the last split's merge done with its shared memory
    for (int i = p0 + warp; i < p1; i += kWarps) attend_page<D, 1, T, CAP>(kv, g, mine[i], mine_phys[i], sub, slot, qv, m, sum, acc, cap, [] {});
    send_cluster_split<D, 1, TPW>(m, sum, acc, split, warp, slot, sub);
  }
  merge_cluster_splits<D, 1>(l, out);
#endif
}

}  // namespace

bool quest_step_fits(const PagedKv& kv, int pages) {
  const int n = kv.meta_full();
  // Up to 8 entries a split, two pages a warp: with more, the attention kernel, which looks a
  // page ahead, is faster (32K at budget 4096: 45.0 us against 46.3-47.9 fused, docs/quest-step.md).
  const int per_split = (listed_pages(kv, pages) + kClusterSplits - 1) / kClusterSplits;
  return n >= 1 && n <= kWarps * 32 * kStepKeys && per_split <= 2 * kWarps;
}

int quest_step_clusters(HalfType type, int head_dim) {
  return with_type_and_dim(type, head_dim, [](auto t, auto d) {
    return clusters_at_once<quest_step_kernel<decltype(d)::value, decltype(t), false, kClusterSplits>>();
  });
}

int quest_step_blocks() {
  const char* env = std::getenv("QUEST_STEP_BLOCKS");
  if (!env || !*env || std::strcmp(env, "16") == 0) return kClusterSplits;
  if (std::strcmp(env, "4") == 0) return 4;
  throw std::runtime_error(std::string("QUEST_STEP_BLOCKS=") + env + ": expected 4 or 16");
}

cudaError_t quest_step(const QuestStep& p, cudaStream_t stream) {
  const DecodeArgs& a = p.a;
  const PagedKv& kv = a.kv;
  const int heads = a.heads;
  if (!supported(kv, heads) || kv.meta_page != kGpuPage || p.pages < 1) return cudaErrorInvalidValue;
  const int group = heads / kv.kv_heads, G = p.per_head ? 1 : group, lists = heads / G;
  if (p.launch.fused) {
    if (G != 1) return cudaErrorInvalidValue;
    return with_type_and_dim(kv.type, kv.head_dim, [&](auto t, auto d) -> cudaError_t {
      using T = decltype(t);
      return with_cap(a.softcap, [&](auto capped) {
        auto go = [&](auto blocks) {
          constexpr int kCL = decltype(blocks)::value;
          constexpr auto kernel = quest_step_kernel<decltype(d)::value, T, decltype(capped)::value, kCL>;
          clusters_at_once<kernel, kCL>();  // allows this instance its cluster size (the plan asked for the uncapped 16)
          return launch_in_clusters(kCL, kernel, dim3(lists, kCL), kWarps * 32, 0, stream, static_cast<const T*>(a.q), kv, p.pages, a.scale,
                                    group, p.indptr, p.indices, a.out, a.softcap);
        };
        if (p.launch.blocks == 4) return go(std::integral_constant<int, 4>{});
        if (p.launch.blocks == kClusterSplits) return go(std::integral_constant<int, kClusterSplits>{});
        return cudaErrorInvalidValue;
      });
    });
  }
  cudaError_t err = quest_estimate(a.q, kv, heads, p.per_head, p.scores, stream);
  if (err == cudaSuccess) err = quest_topk(p.scores, kv, p.pages, lists, p.indptr, p.indices, stream);
  if (err != cudaSuccess) return err;
  return decode_attention(a, {p.indptr, p.indices, p.per_head, listed_pages(kv, p.pages)}, p.launch.attention, stream);
}

}  // namespace quest
