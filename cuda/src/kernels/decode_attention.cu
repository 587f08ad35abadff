#include <algorithm>
#include <cfloat>
#include <cstdint>

#include "kernels/decode_attention.cuh"
#include "kernels/decode_common.cuh"
#include "kernels/reduce.cuh"

namespace quest {
namespace {

// What one sequence of a launch reads and writes; a launch's lanes are in a table that the
// blocks index by blockIdx.z (lse: the merge's log-sum-exp per query head, where wanted).
struct AttentionLane {
  const void* q = nullptr;
  PagedKv kv;
  PageLists lists;
  SplitScratch sc;
  float* out = nullptr;
  float* lse = nullptr;
};
struct AttentionLanes {
  AttentionLane lane[kLanes];
};
static_assert(sizeof(AttentionLanes) + 64 <= 4096, "a launch's table and other arguments within the 4 KiB of kernel parameters");

// One block per (list, split, lane); a list's G query heads share KV head l * G / group (group: query
// heads per KV head). Each warp takes whole pages; within a page, LT lanes hold one token's
// head_dim as 16-byte vectors (token_lanes), so a warp covers 32 / LT tokens per step, and the
// page's K and V are all loaded before any is used (bytes in flight hide the latency). With AHEAD the next
// page's list entry and physical page are looked up while this page's K and V are in flight:
// worth it where a warp has few pages, each waiting on its two lookups, but its registers cost
// long lists a block a SM (dense at 32K: 213 against 184 us, docs/quest-step.md).
//
// With LANES the lane is blockIdx.z's, and a lane of fewer splits than the launch's leaves the
// blocks past them idle; else the lane is the table's only one, whose fields then stay operands
// of the instructions, where an index costs 5-17 registers and some shapes a block a SM (ptxas).
// With CLUSTER (and sc.splits == kClusterSplits) a list's splits form a cluster that merges on
// chip into `out`; otherwise each split goes to the scratch for merge_splits. The cluster
// kernel is held to five blocks a SM, so that a cluster a list fits for 32 lists (at 117
// registers only 28 did); the others keep the compiler's own choice (0: an explicit 1 took
// more registers and cost GQA a block a SM; docs/quest-step.md). CAP: scores soft-capped at `cap`.
template <int D, int G, typename T, bool AHEAD, bool CLUSTER, bool CAP, bool LANES>
__global__ void __launch_bounds__(kWarps * 32, CLUSTER ? 5 : 0) decode_partial(const __grid_constant__ AttentionLanes lanes, float scale,
                                                                                               int group, float cap) {
  constexpr int LT = token_lanes<D>(), TPW = 32 / LT;
  const AttentionLane& my = lanes.lane[LANES ? blockIdx.z : 0];
  const PagedKv& kv = my.kv;
  const PageLists& lists = my.lists;
  const SplitScratch& sc = my.sc;
  const T* __restrict__ q = static_cast<const T*>(my.q);
  const int l = blockIdx.x, split = blockIdx.y, g = l * G / group;
  if constexpr (LANES && !CLUSTER)
    if (split >= sc.splits) return;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, sub = lane % LT, slot = lane / LT;
  if constexpr (CLUSTER) {
    start_cluster_merge<D, G>();
    cluster_arrive_relaxed();
  }
  wait_for_previous();  // the lists may come from the top-k just before
  const int begin = lists.indptr[l], end = lists.indptr[l + 1];
  const int per = (end - begin + sc.splits - 1) / sc.splits;
  const int p0 = begin + split * per, p1 = min(end, p0 + per);

  float qv[G][8], m[G], sum[G], acc[G][8];
  start_state<D, G, T>(q, l, sub, scale, qv, m, sum, acc);

  int next = 0, next_phys = 0;
  if (AHEAD && p0 + warp < p1) {
    next = lists.indices[p0 + warp];
    next_phys = kv.page_table[next];
  }
  for (int pi = p0 + warp; pi < p1; pi += kWarps) {
    const int logical = AHEAD ? next : lists.indices[pi];
    attend_page<D, G, T, CAP>(kv, g, logical, AHEAD ? next_phys : kv.page_table[logical], sub, slot, qv, m, sum, acc, cap, [&] {
      if (AHEAD && pi + kWarps < p1) {
        next = lists.indices[pi + kWarps];
        next_phys = kv.page_table[next];
      }
    });
  }

  if constexpr (CLUSTER) {
    cluster_wait();
    finish_cluster<D, G, TPW>(m, sum, acc, l, warp, slot, sub, my.out);
  } else {
    finish_block<D, G, TPW>(m, sum, acc, l, split, warp, slot, sub, sc);
  }
}

// The same over token lists: a warp takes 16 consecutive list entries at a time (gathered
// by position, all loads issued before any is used), and with `report` each entry's scaled
// (and capped) score q.k is written per query head, for the policies that learn from attention.
template <int D, int G, typename T, bool CAP>
__global__ void __launch_bounds__(kWarps * 32) token_partial(const T* __restrict__ q, PagedKv kv, TokenLists lists, float scale,
                                                             SplitScratch sc, LogitsReport report, int group, float cap) {
  constexpr int LT = token_lanes<D>(), TPW = 32 / LT, ITER = kGpuPage / TPW;
  const int l = blockIdx.x, split = blockIdx.y, g = l * G / group;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, sub = lane % LT, slot = lane / LT;
  wait_for_previous();  // the lists may come from the selection just before
  const int* idx = lists.indices + (size_t)l * lists.stride;
  const int n = lists.count, chunks = (n + kGpuPage - 1) / kGpuPage;
  const int per = (chunks + sc.splits - 1) / sc.splits;
  const int c0 = split * per, c1 = min(chunks, c0 + per);

  float qv[G][8], m[G], sum[G], acc[G][8];
  start_state<D, G, T>(q, l, sub, scale, qv, m, sum, acc);

  for (int c = c0 + warp; c < c1; c += kWarps) {
    uint4 kr[ITER], vr[ITER];
#pragma unroll
    for (int it = 0; it < ITER; ++it) {
      const int e = c * kGpuPage + it * TPW + slot;
      kr[it] = vr[it] = make_uint4(0, 0, 0, 0);
      if (e < n && lane_holds<D>(sub)) {
        const int pos = idx[e];
        const size_t off = kv.row_at(pos, g, D) + sub * 8;
        kr[it] = *reinterpret_cast<const uint4*>(static_cast<const T*>(kv.k) + off);
        vr[it] = *reinterpret_cast<const uint4*>(static_cast<const T*>(kv.v) + off);
      }
    }
#pragma unroll
    for (int it = 0; it < ITER; ++it) {
      const int e = c * kGpuPage + it * TPW + slot;
      float* logits = report.logits && sub == 0 ? report.logits + (size_t)l * G * report.stride + e : nullptr;
      attend<G, LT, T, CAP>(qv, kr[it], vr[it], e < n, m, sum, acc, logits, report.stride, cap);
    }
  }
  finish_block<D, G, TPW>(m, sum, acc, l, split, warp, slot, sub, sc);
}

constexpr int kMergeBatch = 32;  // splits whose outputs a thread loads at once

int merge_threads(int head_dim) { return std::max(128, head_dim); }

// One block per (query head, lane): the splits' outputs weighted by their share of the softmax mass.
// A thread's outputs of up to kMergeBatch splits are loaded before the weights are known, so
// the usual split counts cost one round trip to L2; the weights are found once, by all
// threads together. A thread a channel: the block has max(128, head_dim) threads (merge_threads).
__global__ void merge_splits(const __grid_constant__ AttentionLanes lanes, int head_dim) {
  extern __shared__ float weight[];  // [splits]
  __shared__ float partial[32];
  wait_for_previous();
  const AttentionLane& my = lanes.lane[blockIdx.y];
  const SplitScratch& sc = my.sc;
  float* __restrict__ out = my.out;
  float* __restrict__ lse_out = my.lse;
  const int h = blockIdx.x, j = threadIdx.x;
  const float* o = sc.o + (size_t)h * sc.splits * head_dim + j;
  float batch[kMergeBatch];
#pragma unroll
  for (int s = 0; s < kMergeBatch; ++s) batch[s] = j < head_dim && s < sc.splits ? o[(size_t)s * head_dim] : 0.0f;
  const float* lse = sc.lse + (size_t)h * sc.splits;
  float m = -FLT_MAX;
  for (int s = threadIdx.x; s < sc.splits; s += blockDim.x) m = fmaxf(m, lse[s]);
  m = block_max(m, partial);
  float total = 0.0f;
  for (int s = threadIdx.x; s < sc.splits; s += blockDim.x) {
    const float w = lse[s] == -FLT_MAX ? 0.0f : __expf(lse[s] - m);
    weight[s] = w;
    total += w;
  }
  total = block_sum(total, partial);  // its barrier also publishes weight[]
  if (lse_out && threadIdx.x == 0) lse_out[h] = total > 0.0f ? m + __logf(total) : -FLT_MAX;
  if (j >= head_dim) return;
  float acc = 0.0f;
#pragma unroll
  for (int s = 0; s < kMergeBatch; ++s)
    if (s < sc.splits) acc += weight[s] * batch[s];
  for (int s = kMergeBatch; s < sc.splits; ++s) acc += weight[s] * o[(size_t)s * head_dim];
  out[(size_t)h * head_dim + j] = total > 0.0f ? acc / total : 0.0f;
}

// The lanes pick[0..n) (at most kLanes, of one launch kind): one launch of decode_partial over
// the most splits of any, then, unless merged on chip, one of merge_splits. Soft-capped lanes
// (Gemma 2), for which no lane-indexed instance is built, a launch each.
cudaError_t attend_lanes(const DecodeArgs* a, const PageLists* lists, const PageLaunch* plans, const int* pick, int n, cudaStream_t stream) {
  if (n > 1 && a[pick[0]].softcap > 0) {
    for (int i = 0; i < n; ++i)
      if (const cudaError_t err = attend_lanes(a, lists, plans, pick + i, 1, stream); err != cudaSuccess) return err;
    return cudaSuccess;
  }
  const DecodeArgs& first = a[pick[0]];
  const PageLaunch& kind = plans[pick[0]];
  const PagedKv& kv = first.kv;
  const int heads = first.heads, group = heads / kv.kv_heads, G = lists[pick[0]].per_head ? 1 : group;
  AttentionLanes table;
  int splits = 1;
  for (int i = 0; i < n; ++i) {
    const int k = pick[i];
    table.lane[i] = {a[k].q, a[k].kv, lists[k], {a[k].scratch.o, a[k].scratch.lse, plans[k].splits}, a[k].out, nullptr};
    splits = std::max(splits, plans[k].splits);
  }
  bool merged = false;
  cudaError_t err = with_instance(kv, G, [&](auto t, auto d, auto g) {
    using T = decltype(t);
    constexpr int kD = decltype(d)::value, kG = decltype(g)::value;
    auto run = [&](auto capped, auto lanes) -> cudaError_t {
      constexpr bool kCap = decltype(capped)::value, kByLane = decltype(lanes)::value;
      auto go = [&](auto kernel, unsigned cluster) {
        return launch_in_clusters(cluster, kernel, dim3(heads / G, splits, n), kWarps * 32, 0, stream, table, first.scale, group, first.softcap);
      };
      if constexpr (kG == 1) {  // within five blocks' registers a SM without spilling
        if (kind.cluster) {
          merged = true;
          constexpr auto kernel = decode_partial<kD, kG, T, true, true, kCap, kByLane>;
          clusters_at_once<kernel>();  // allows this instance its cluster size (the plan asked for the uncapped one)
          return go(kernel, kClusterSplits);
        }
      }
      if (kind.ahead) return go(decode_partial<kD, kG, T, true, false, kCap, kByLane>, 1);
      return go(decode_partial<kD, kG, T, false, false, kCap, kByLane>, 1);
    };
    if (n > 1) return run(std::false_type{}, std::true_type{});
    return with_cap(first.softcap, [&](auto capped) { return run(capped, std::false_type{}); });
  });
  if (err != cudaSuccess || merged) return err;
  return launch(merge_splits, dim3(heads, n), merge_threads(kv.head_dim), splits * sizeof(float), stream, table, kv.head_dim);
}

}  // namespace

cudaError_t decode_attention(const DecodeArgs& a, const PageLists& lists, const PageLaunch& plan, cudaStream_t stream) {
  return decode_attention(&a, &lists, &plan, 1, stream);
}

cudaError_t decode_attention(const DecodeArgs* a, const PageLists* lists, const PageLaunch* plans, int n, cudaStream_t stream) {
  for (int i = 0; i < n; ++i) {
    const PagedKv &kv = a[i].kv, &kv0 = a[0].kv;
    if (!supported(kv, a[i].heads) || plans[i].splits < 1 || kv.type != kv0.type || kv.head_dim != kv0.head_dim ||
        kv.kv_heads != kv0.kv_heads || a[i].heads != a[0].heads || a[i].scale != a[0].scale || a[i].softcap != a[0].softcap ||
        (plans[i].cluster && plans[i].splits != kClusterSplits))
      return cudaErrorInvalidValue;
  }
  // By launch kind (neither, a look-ahead, a cluster) and list kind (a KV head's, a query head's), kLanes at a time.
  auto kind_of = [&](int i) { return (plans[i].cluster ? 2 : plans[i].ahead ? 1 : 0) + (lists[i].per_head ? 3 : 0); };
  for (int kind = 0; kind < 6; ++kind) {
    int pick[kLanes], m = 0;
    for (int i = 0; i <= n; ++i) {
      if (i < n && kind_of(i) == kind) pick[m++] = i;
      if (m == kLanes || (i == n && m > 0)) {
        if (const cudaError_t err = attend_lanes(a, lists, plans, pick, m, stream); err != cudaSuccess) return err;
        m = 0;
      }
    }
  }
  return cudaSuccess;
}

cudaError_t decode_attention_tokens(const DecodeArgs& a, const TokenLists& lists, int splits, const LogitsReport& report,
                                    cudaStream_t stream) {
  const PagedKv& kv = a.kv;
  const int heads = a.heads;
  if (!supported(kv, heads) || lists.count < 1) return cudaErrorInvalidValue;
  const int group = heads / kv.kv_heads, G = lists.per_head ? 1 : group;
  SplitScratch sc = a.scratch;
  sc.splits = splits;
  cudaError_t err = with_instance(kv, G, [&](auto t, auto d, auto g) {
    using T = decltype(t);
    constexpr int kD = decltype(d)::value, kG = decltype(g)::value;
    return with_cap(a.softcap, [&](auto capped) {
      return launch(token_partial<kD, kG, T, decltype(capped)::value>, dim3(heads / G, sc.splits), kWarps * 32, 0, stream,
                    static_cast<const T*>(a.q), kv, lists, a.scale, sc, report, group, a.softcap);
    });
  });
  if (err != cudaSuccess) return err;
  AttentionLanes table;
  table.lane[0] = {a.q, kv, {}, sc, a.out, report.lse};
  return launch(merge_splits, heads, merge_threads(kv.head_dim), sc.splits * sizeof(float), stream, table, kv.head_dim);
}

DecodeFit decode_fit(HalfType type, int head_dim, int G) {
  DecodeFit fit;
  with_instance(type, head_dim, G, [&](auto t, auto d, auto g) {
    using T = decltype(t);
    constexpr int kD = decltype(d)::value, kG = decltype(g)::value;
    fit.ahead = blocks_at_once<decode_partial<kD, kG, T, true, false, false, false>>();
    fit.plain = blocks_at_once<decode_partial<kD, kG, T, false, false, false, false>>();
    fit.tokens = blocks_at_once<token_partial<kD, kG, T, false>>();
    if constexpr (kG == 1) fit.cluster_lists = clusters_at_once<decode_partial<kD, kG, T, true, true, false, false>>();
    return cudaSuccess;
  });
  return fit;
}

}  // namespace quest
