#include <algorithm>
#include <cfloat>
#include <cstdint>

#include <cooperative_groups.h>

#include "kernels/attention.cuh"
#include "kernels/cluster.cuh"
#include "kernels/launch.cuh"
#include "kernels/reduce.cuh"
#include "kernels/selection.cuh"

namespace quest {
namespace {

constexpr int kWarps = 4;    // warps per block in the attention and estimate kernels

// Sum over the `width` lanes that share a token (width divides 32, groups aligned).
template <int width>
__device__ inline float group_sum(float v) {
#pragma unroll
  for (int o = width / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// A (list, split)'s softmax state for the list's G query heads (list * G ..): the lanes' eighths
// of each scaled query, and an empty running max, sum and output.
template <int D, int G, typename T>
__device__ inline void start_state(const T* q, int list, int sub, float scale, float (&qv)[G][8], float (&m)[G], float (&l)[G],
                                   float (&acc)[G][8]) {
#pragma unroll
  for (int h = 0; h < G; ++h) {
    load8<T>(q + (size_t)(list * G + h) * D + sub * 8, qv[h]);
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      qv[h][i] *= scale;
      acc[h][i] = 0.0f;
    }
    m[h] = -FLT_MAX;
    l[h] = 0.0f;
  }
}

// Folds one token (its K and V eighths in kr, vr) into the state when `valid`; every lane
// takes part in the sums either way. `logits`, when given, gets each head's score at
// logits[h * stride].
template <int G, int LT, typename T>
__device__ inline void attend(const float (&qv)[G][8], const uint4& kr, const uint4& vr, bool valid, float (&m)[G], float (&l)[G],
                              float (&acc)[G][8], float* logits, int stride) {
  float kf[8], vf[8];
  unpack8<T>(kr, kf);
  unpack8<T>(vr, vf);
#pragma unroll
  for (int h = 0; h < G; ++h) {
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < 8; ++i) s += qv[h][i] * kf[i];
    s = group_sum<LT>(s);
    if (!valid) continue;
    if (logits) logits[(size_t)h * stride] = s;
    const float mn = fmaxf(m[h], s);
    const float c = __expf(m[h] - mn), p = __expf(s - mn);
    l[h] = l[h] * c + p;
#pragma unroll
    for (int i = 0; i < 8; ++i) acc[h][i] = acc[h][i] * c + p * vf[i];
    m[h] = mn;
  }
}

// Folds page `logical` (physical page `phys`) of KV head g into the state: every K and V
// piece of the lane's tokens is loaded, then between() runs (work that need not wait for
// them), then they are used; the unused slots of the newest page hold nothing to read.
template <int D, int G, typename T, typename Between>
__device__ inline void attend_page(const PagedKv& kv, int g, int logical, int phys, int sub, int slot, const float (&qv)[G][8], float (&m)[G],
                                   float (&sum)[G], float (&acc)[G][8], Between between) {
  constexpr int LT = D / 8, TPW = 32 / LT, ITER = kGpuPage / TPW;
  const int len = logical == kv.current_page ? kv.current_len : kGpuPage;
  const size_t base = ((size_t)phys * kv.kv_heads + g) * kGpuPage * D + sub * 8;
  uint4 kr[ITER], vr[ITER];
#pragma unroll
  for (int it = 0; it < ITER; ++it) {
    const int t = it * TPW + slot;
    kr[it] = *reinterpret_cast<const uint4*>(static_cast<const T*>(kv.k) + base + (size_t)t * D);
    vr[it] = *reinterpret_cast<const uint4*>(static_cast<const T*>(kv.v) + base + (size_t)t * D);
  }
  between();
#pragma unroll
  for (int it = 0; it < ITER; ++it) attend<G, LT, T>(qv, kr[it], vr[it], it * TPW + slot < len, m, sum, acc, nullptr, 0);
}

// Merges a block's (warp, slot) softmax states per query head through shared memory and hands
// each (head, channel) of the block's normalised output, with the head's log-sum-exp, to
// put(h, j, o, lse).
template <int D, int G, int TPW, typename Put>
__device__ inline void merge_states(const float (&m)[G], const float (&l)[G], const float (&acc)[G][8], int warp, int slot, int sub,
                                    Put put) {
  constexpr int STATES = kWarps * TPW;
  __shared__ float sm_m[STATES][G], sm_l[STATES][G], sm_acc[STATES][G][D];
  const int st = warp * TPW + slot;
#pragma unroll
  for (int h = 0; h < G; ++h) {
    if (sub == 0) {
      sm_m[st][h] = m[h];
      sm_l[st][h] = l[h];
    }
#pragma unroll
    for (int i = 0; i < 8; ++i) sm_acc[st][h][sub * 8 + i] = acc[h][i];
  }
  __syncthreads();
  for (int idx = threadIdx.x; idx < G * D; idx += blockDim.x) {
    const int h = idx / D, j = idx % D;
    float M = -FLT_MAX;
    for (int s = 0; s < STATES; ++s) M = fmaxf(M, sm_m[s][h]);
    float L = 0.0f, O = 0.0f;
    for (int s = 0; s < STATES; ++s) {
      const float w = sm_l[s][h] > 0.0f ? __expf(sm_m[s][h] - M) : 0.0f;
      L += sm_l[s][h] * w;
      O += sm_acc[s][h][j] * w;
    }
    put(h, j, L > 0.0f ? O / L : 0.0f, L > 0.0f ? M + __logf(L) : -FLT_MAX);
  }
}

// The split's output and log-sum-exp to the scratch, for the merge launch.
template <int D, int G, int TPW>
__device__ inline void finish_block(const float (&m)[G], const float (&l)[G], const float (&acc)[G][8], int list, int split, int warp,
                                    int slot, int sub, const SplitScratch& sc) {
  merge_states<D, G, TPW>(m, l, acc, warp, slot, sub, [&](int h, int j, float o, float lse) {
    const size_t at = (size_t)(list * G + h) * sc.splits + split;
    sc.o[at * D + j] = o;
    if (j == 0) sc.lse[at] = lse;
  });
}

constexpr int kClusterSplits = 16;  // a list's splits in one cluster (non-portable size)

// The splits of a list are one cluster: each block sends its output and log-sum-exp into the
// shared memory of the cluster's first block (st.async, counted by that block's mbarrier),
// which merges them once all have landed. No launch, no round trip through L2, and no
// cluster-wide release (cluster.cuh): against cluster.sync(), the fused Quest step took
// 0.3-0.6 us less at budget 1024 and at 4K, the same at 32K budget 2048, and the
// cluster attention kernel 18.9-19.0 us at budget 2048 against 19.5-19.7 (H100, docs/quest-step.md).
//
// A kernel that finishes this way calls start_cluster_merge first, then cluster_arrive_relaxed
// and, before finish_cluster, cluster_wait, so that no block sends before the first block's
// mbarrier is set up.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
__device__ inline uint64_t& merge_bar() {
  __shared__ uint64_t bar;
  return bar;
}
#endif

template <int D, int G>
__device__ inline void start_cluster_merge() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  if (threadIdx.x == 0 && cooperative_groups::this_cluster().block_rank() == 0)
    expect_bytes(&merge_bar(), kClusterSplits * G * (D + 1) * sizeof(float));
#endif
}

template <int D, int G, int TPW>
__device__ inline void finish_cluster(const float (&m)[G], const float (&l)[G], const float (&acc)[G][8], int list, int warp, int slot,
                                      int sub, float* __restrict__ out) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  __shared__ float part_o[kClusterSplits][G][D], part_lse[kClusterSplits][G];
  const int rank = int(cooperative_groups::this_cluster().block_rank());
  merge_states<D, G, TPW>(m, l, acc, warp, slot, sub, [&](int h, int j, float o, float lse) {
    send_float(&part_o[rank][h][j], o, &merge_bar(), 0);
    if (j == 0) send_float(&part_lse[rank][h], lse, &merge_bar(), 0);
  });
  // The last barrier keeps every block until the first has all it was sent.
  if (rank != 0) {
    cluster_arrive_relaxed();
    cluster_wait();
    return;
  }
  wait_bytes(&merge_bar());
  cluster_arrive_relaxed();
  for (int idx = threadIdx.x; idx < G * D; idx += blockDim.x) {
    const int h = idx / D, j = idx % D;
    float M = -FLT_MAX;
#pragma unroll
    for (int r = 0; r < kClusterSplits; ++r) M = fmaxf(M, part_lse[r][h]);
    float total = 0.0f, o = 0.0f;
#pragma unroll
    for (int r = 0; r < kClusterSplits; ++r) {
      const float w = part_lse[r][h] == -FLT_MAX ? 0.0f : __expf(part_lse[r][h] - M);
      total += w;
      o += w * part_o[r][h][j];
    }
    out[(size_t)(list * G + h) * D + j] = total > 0.0f ? o / total : 0.0f;
  }
  cluster_wait();
#endif
}

// One block per (list, split); a list's G query heads share KV head l * G / group (group: query
// heads per KV head). Each warp takes whole pages; within a page, LT lanes hold one token's
// head_dim as 16-byte vectors, so a warp covers 32 / LT tokens per step, and the page's K and
// V are all loaded before any is used (bytes in flight hide the latency). With AHEAD the next
// page's list entry and physical page are looked up while this page's K and V are in flight:
// worth it where a warp has few pages, each waiting on its two lookups, but its registers cost
// long lists a block a SM (dense at 32K: 213 against 184 us, docs/quest-step.md).
//
// With CLUSTER (and sc.splits == kClusterSplits) a list's splits form a cluster that merges on
// chip into `out`; otherwise each split goes to the scratch for merge_splits. The cluster
// kernel is held to five blocks a SM, so that a cluster a list fits for 32 lists (at 117
// registers only 28 did); the others keep the compiler's own choice (0: an explicit 1 took
// more registers and cost GQA a block a SM; docs/quest-step.md).
template <int D, int G, typename T, bool AHEAD, bool CLUSTER>
__global__ void __launch_bounds__(kWarps * 32, CLUSTER ? 5 : 0) decode_partial(const T* __restrict__ q, PagedKv kv, PageLists lists,
                                                              float scale, SplitScratch sc, int group, float* __restrict__ out) {
  constexpr int LT = D / 8, TPW = 32 / LT;
  const int l = blockIdx.x, split = blockIdx.y, g = l * G / group;
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
    attend_page<D, G, T>(kv, g, logical, AHEAD ? next_phys : kv.page_table[logical], sub, slot, qv, m, sum, acc, [&] {
      if (AHEAD && pi + kWarps < p1) {
        next = lists.indices[pi + kWarps];
        next_phys = kv.page_table[next];
      }
    });
  }

  if constexpr (CLUSTER) {
    cluster_wait();
    finish_cluster<D, G, TPW>(m, sum, acc, l, warp, slot, sub, out);
  } else {
    finish_block<D, G, TPW>(m, sum, acc, l, split, warp, slot, sub, sc);
  }
}

// The same over token lists: a warp takes 16 consecutive list entries at a time (gathered
// by position, all loads issued before any is used), and with `report` each entry's scaled
// score q.k is written per query head, for the policies that learn from attention.
template <int D, int G, typename T>
__global__ void __launch_bounds__(kWarps * 32) token_partial(const T* __restrict__ q, PagedKv kv, TokenLists lists, float scale,
                                                             SplitScratch sc, LogitsReport report, int group) {
  constexpr int LT = D / 8, TPW = 32 / LT, ITER = kGpuPage / TPW;
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
      if (e < n) {
        const int pos = idx[e];
        const size_t off = (((size_t)kv.page_table[pos / kGpuPage] * kv.kv_heads + g) * kGpuPage + pos % kGpuPage) * D + sub * 8;
        kr[it] = *reinterpret_cast<const uint4*>(static_cast<const T*>(kv.k) + off);
        vr[it] = *reinterpret_cast<const uint4*>(static_cast<const T*>(kv.v) + off);
      }
    }
#pragma unroll
    for (int it = 0; it < ITER; ++it) {
      const int e = c * kGpuPage + it * TPW + slot;
      float* logits = report.logits && sub == 0 ? report.logits + (size_t)l * G * report.stride + e : nullptr;
      attend<G, LT, T>(qv, kr[it], vr[it], e < n, m, sum, acc, logits, report.stride);
    }
  }
  finish_block<D, G, TPW>(m, sum, acc, l, split, warp, slot, sub, sc);
}

constexpr int kMergeBatch = 32;  // splits whose outputs a thread loads at once

// One block per query head: the splits' outputs weighted by their share of the softmax mass.
// A thread's outputs of up to kMergeBatch splits are loaded before the weights are known, so
// the usual split counts cost one round trip to L2; the weights are found once, by all
// threads together. A thread a channel: head_dim is at most the block's 128.
__global__ void merge_splits(SplitScratch sc, int head_dim, float* __restrict__ out, float* __restrict__ lse_out) {
  extern __shared__ float weight[];  // [splits]
  __shared__ float partial[32];
  wait_for_previous();
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

// Quest's estimate over a chunk of kBoundChunk pages from `first` for one list (G query heads
// of KV head g, their queries in qs), each warp a quarter of the channels: eight lanes share
// a channel's line, 16 bytes (8 pages) each, and the warp's four lane groups take D / 16
// channels each. For each channel a lane loads the maximum's line into hi if some query head
// is non-negative there and the minimum's into lo if some is negative: with one head, only
// the one its sign picks, into hi (lo unused). Every line is loaded before any is used.
constexpr int kBoundLanes = 8;  // lanes that share a channel's line of a chunk

template <int D>
__device__ inline int bound_channel() {  // this lane's first channel
  return threadIdx.x / 32 * (D / kWarps) + threadIdx.x % 32 / kBoundLanes * (D / 16);
}

template <int D, int G, typename T>
__device__ inline void load_bounds(const float (&qs)[G][D], const PagedKv& kv, int g, int first, uint4 (&hi)[D / 16],
                                   uint4 (&lo)[G > 1 ? D / 16 : 1]) {
  constexpr int U = D / 16, PL = kBoundChunk / kBoundLanes;
  const int c0 = bound_channel<D>();
  const size_t line = kv.bound_at(first, g, c0) + threadIdx.x % kBoundLanes * PL;
#pragma unroll
  for (int u = 0; u < U; ++u) {
    const size_t at = line + (size_t)u * kBoundChunk;
    if constexpr (G == 1) {
      hi[u] = *reinterpret_cast<const uint4*>(static_cast<const T*>(qs[0][c0 + u] >= 0.0f ? kv.kmax : kv.kmin) + at);
    } else {
      bool pos = false, neg = false;
#pragma unroll
      for (int h = 0; h < G; ++h) {
        pos |= qs[h][c0 + u] >= 0.0f;
        neg |= qs[h][c0 + u] < 0.0f;
      }
      hi[u] = lo[u] = make_uint4(0, 0, 0, 0);
      if (pos) hi[u] = *reinterpret_cast<const uint4*>(static_cast<const T*>(kv.kmax) + at);
      if (neg) lo[u] = *reinterpret_cast<const uint4*>(static_cast<const T*>(kv.kmin) + at);
    }
  }
}

// The chunk's scores from load_bounds' lines: shuffles, then shared memory, add up the
// channels; put(i, score) gets page first + i for each i < kBoundChunk with first + i < full,
// and part_sums is free again on return.
template <int D, int G, typename T, typename Put>
__device__ inline void score_bounds(const float (&qs)[G][D], const uint4 (&hi)[D / 16], const uint4 (&lo)[G > 1 ? D / 16 : 1], int first,
                                    int full, float (&part_sums)[kWarps][kBoundChunk], Put put) {
  constexpr int U = D / 16, PL = kBoundChunk / kBoundLanes;
  static_assert(kBoundChunk == 64 && kWarps == 4, "eight lanes cover a chunk's line; four warps its channels");
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, part = lane % kBoundLanes, c0 = bound_channel<D>();
  float s[PL] = {};
#pragma unroll
  for (int u = 0; u < U; ++u) {
    float mx[PL], mn[PL];
    unpack8<T>(hi[u], mx);
    if constexpr (G == 1) {
#pragma unroll
      for (int p = 0; p < PL; ++p) s[p] += qs[0][c0 + u] * mx[p];
    } else {
      unpack8<T>(lo[u], mn);
#pragma unroll
      for (int h = 0; h < G; ++h) {
        const float x = qs[h][c0 + u];
#pragma unroll
        for (int p = 0; p < PL; ++p) s[p] += x * (x >= 0.0f ? mx[p] : mn[p]);
      }
    }
  }
#pragma unroll
  for (int p = 0; p < PL; ++p) {
    s[p] += __shfl_xor_sync(0xffffffffu, s[p], 8);
    s[p] += __shfl_xor_sync(0xffffffffu, s[p], 16);
    if (lane < kBoundLanes) part_sums[warp][part * PL + p] = s[p];
  }
  __syncthreads();
  const int i = threadIdx.x;
  if (i < kBoundChunk && first + i < full) put(i, part_sums[0][i] + part_sums[1][i] + part_sums[2][i] + part_sums[3][i]);
  __syncthreads();
}

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

// After a radix select over the block's keys (thread t's KPT keys are pages lo .. lo + cnt,
// consecutive threads holding consecutive pages): the k largest, every key above `prefix` and
// the first `rest` equal to it (with !partial: all of them if k == n, else none), handed to
// take(position, page) with positions 0 .. k in page order.
template <int KPT, typename Take>
__device__ inline void take_pages(RadixShared& sh, const uint32_t (&keys)[KPT], int lo, int cnt, bool partial, bool all, uint32_t prefix,
                                  int rest, Take take) {
  // One scan of both counts, packed (each at most 65,535): the keys above prefix and those
  // equal to it; the first `rest` equal ones are taken.
  int above = 0, eq = 0;
#pragma unroll
  for (int j = 0; j < KPT; ++j) {
    above += j < cnt && (partial ? keys[j] > prefix : all);
    eq += partial && j < cnt && keys[j] == prefix;
  }
  int total;
  const int before = block_scan(above | eq << 16, sh.warp_sums, total);
  int e = before >> 16, pos = (before & 0xffff) + min(e, rest);
#pragma unroll
  for (int j = 0; j < KPT; ++j)
    if (j < cnt && (partial ? keys[j] > prefix || (keys[j] == prefix && e++ < rest) : all)) take(pos++, lo + j);
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
// shared memory and the other variants in docs/quest-step.md were all slower.
template <int D, typename T>
__global__ void __launch_bounds__(kWarps * 32, 5) quest_step_kernel(const T* __restrict__ q, PagedKv kv, int pages, float scale, int group,
                                                                   int* __restrict__ indptr, int* __restrict__ indices,
                                                                   float* __restrict__ out) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900  // clusters: quest_step launches it on Hopper only
  constexpr int LT = D / 8, TPW = 32 / LT, THREADS = kWarps * 32;
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

  for (int i = warp; i < p1 - p0; i += kWarps) attend_page<D, 1, T>(kv, g, mine[i], mine_phys[i], sub, slot, qv, m, sum, acc, [] {});
  finish_cluster<D, 1, TPW>(m, sum, acc, l, warp, slot, sub, out);
#endif
}

template <typename T>
__global__ void append_kernel(T* k_cache, T* v_cache, T* kmin, T* kmax, PagedKv kv, int pos, const T* k, const T* v) {
  const int g = blockIdx.x, kv_heads = kv.kv_heads, head_dim = kv.head_dim;
  const bool first = pos % kv.meta_page == 0;
  wait_for_previous();
  const size_t at = (((size_t)kv.page_table[pos / kv.page_size] * kv_heads + g) * kv.page_size + pos % kv.page_size) * head_dim;
  for (int i = threadIdx.x; i < head_dim; i += blockDim.x) {
    const T kk = k[g * head_dim + i];
    const size_t b = kv.bound_at(pos / kv.meta_page, g, i);
    k_cache[at + i] = kk;
    v_cache[at + i] = v[g * head_dim + i];
    kmin[b] = first ? kk : Cvt<T>::min(kmin[b], kk);
    kmax[b] = first ? kk : Cvt<T>::max(kmax[b], kk);
  }
}

template <typename T>
__global__ void minmax_kernel(const T* k_cache, T* kmin, T* kmax, PagedKv kv, int first_page, int pages, int64_t length) {
  const int kv_heads = kv.kv_heads, head_dim = kv.head_dim, P = kv.meta_page;
  const size_t n = (size_t)pages * kv_heads * head_dim;
  wait_for_previous();
  // Consecutive threads take consecutive channels, so the reads of the keys (a page's worth
  // for each bound written) coalesce.
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    const int d = int(i % head_dim), g = int(i / head_dim % kv_heads), page = first_page + int(i / head_dim / kv_heads);
    const int64_t begin = (int64_t)page * P, end = min(begin + P, length);
    T mn{}, mx{};
    for (int64_t t = begin; t < end; ++t) {
      const T x = k_cache[(((size_t)kv.page_table[t / kv.page_size] * kv_heads + g) * kv.page_size + t % kv.page_size) * head_dim + d];
      mn = t == begin ? x : Cvt<T>::min(mn, x);
      mx = t == begin ? x : Cvt<T>::max(mx, x);
    }
    kmin[kv.bound_at(page, g, d)] = mn;
    kmax[kv.bound_at(page, g, d)] = mx;
  }
}

// Each list's CSR bounds and its last entry, the current page, after its top k pages.
__global__ void list_ends_kernel(int lists, int k, int current, int* indptr, int* indices) {
  wait_for_previous();
  for (int l = blockIdx.x * blockDim.x + threadIdx.x; l <= lists; l += gridDim.x * blockDim.x) {
    indptr[l] = l * (k + 1);
    if (l < lists) indices[(size_t)l * (k + 1) + k] = current;
  }
}

// Thread per (list, entry): entry e of a list is position e % P of its (e / P)-th page.
__global__ void pages_to_tokens_kernel(PageLists in, int P, int lists, int count, int* out, int stride) {
  wait_for_previous();
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < lists * count; i += gridDim.x * blockDim.x) {
    const int l = i / count, e = i % count;
    out[(size_t)l * stride + e] = in.indices[in.indptr[l] + e / P] * P + e % P;
  }
}

// One block per KV head: its query heads' pages marked in a shared bitmap, the marks counted.
// Every list ends with the current page, which holds the `last` newest tokens.
__global__ void union_kernel(PageLists lists, int group, int pages, int P, int last, int words, unsigned long long* total) {
  extern __shared__ unsigned int marks[];
  __shared__ int partial[32];
  wait_for_previous();
  const int g = blockIdx.x;
  for (int w = threadIdx.x; w < words; w += blockDim.x) marks[w] = 0;
  __syncthreads();
  for (int i = threadIdx.x; i < group * pages; i += blockDim.x) {
    const int p = lists.indices[lists.indptr[g * group + i / pages] + i % pages];
    atomicOr(&marks[p / 32], 1u << (p % 32));
  }
  __syncthreads();
  int n = 0, distinct;
  for (int w = threadIdx.x; w < words; w += blockDim.x) n += __popc(marks[w]);
  block_scan(n, partial, distinct);
  if (threadIdx.x == 0) atomicAdd(total, (unsigned long long)((distinct - 1) * P + last));
}

__global__ void dense_lists_kernel(int kv_heads, int pages, int* indptr, int* indices) {
  wait_for_previous();
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < kv_heads * pages; i += gridDim.x * blockDim.x) {
    indices[i] = i % pages;
    if (i % pages == 0) indptr[i / pages] = i;
  }
  if (blockIdx.x == 0 && threadIdx.x == 0) indptr[kv_heads] = kv_heads * pages;
}

// Calls f(T{}, D, G) for the kernel instantiation of the cache's type T, head_dim D and the
// query heads of a list G (D and G as std::integral_constant); group (query heads per KV
// head) is the kernels' argument.
template <typename F>
cudaError_t with_instance(const PagedKv& kv, int G, F&& f) {
  return with_type_and_dim(kv.type, kv.head_dim, [&](auto t, auto d) -> cudaError_t {
    switch (G) {
      case 1: return f(t, d, std::integral_constant<int, 1>{});
      case 2: return f(t, d, std::integral_constant<int, 2>{});
      case 4: return f(t, d, std::integral_constant<int, 4>{});
      case 8: return f(t, d, std::integral_constant<int, 8>{});
      default: return cudaErrorInvalidValue;
    }
  });
}

// Splits for `lists` lists such that every block of `kernel` fits on the GPU at once: a block
// left for a second wave waits for a first one to finish, and the step waits for it. The
// blocks a wave holds are the kernel's own (registers decide them) and are found once per
// kernel, every GPU of a process being taken as the same kind, so that the decode loop asks
// the driver nothing.
template <auto Kernel>
int one_wave_splits(int lists, int splits) {
  static const int wave = [] {
    int per_sm = 1, dev = 0, sms = 1;
    cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, Kernel, kWarps * 32, 0);
    cudaGetDevice(&dev);
    cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
    return std::max(per_sm, 1) * sms;
  }();
  return std::max(1, std::min(splits, wave / lists));
}

// Whether `lists` clusters of kClusterSplits blocks of `Kernel` fit on the GPU at once.
template <auto Kernel>
bool clusters_fit(int lists) {
  static const int most = [] {
    if (!hopper() || cudaFuncSetAttribute(Kernel, cudaFuncAttributeNonPortableClusterSizeAllowed, 1) != cudaSuccess) return 0;
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3(1, kClusterSplits);
    cfg.blockDim = dim3(kWarps * 32);
    cudaLaunchAttribute attr;
    attr.id = cudaLaunchAttributeClusterDimension;
    attr.val.clusterDim = {1, kClusterSplits, 1};
    cfg.attrs = &attr;
    cfg.numAttrs = 1;
    int n = 0;
    return cudaOccupancyMaxActiveClusters(&n, Kernel, &cfg) == cudaSuccess ? n : 0;
  }();
  return lists <= most;
}

bool supported(const PagedKv& kv, int heads) {
  return kv.page_size == kGpuPage && (kv.head_dim == 64 || kv.head_dim == 128) && kv.kv_heads > 0 && heads % kv.kv_heads == 0;
}

}  // namespace

cudaError_t decode_attention(const void* q, const PagedKv& kv, const PageLists& lists, int heads, float scale,
                             const SplitScratch& scratch, float* out, cudaStream_t stream) {
  if (!supported(kv, heads)) return cudaErrorInvalidValue;
  const int group = heads / kv.kv_heads, G = lists.per_head ? 1 : group;
  SplitScratch sc = scratch;  // fewer splits than the scratch holds keep its layout consistent
  // Lists known to be short (up to 16 pages a split: Quest's, dense to 4K) look a page ahead,
  // and where a cluster of kClusterSplits blocks a list fits, merge on chip.
  const bool ahead = lists.longest > 0 && (lists.longest + scratch.splits - 1) / scratch.splits <= 16;
  bool merged = false;
  cudaError_t err = with_instance(kv, G, [&](auto t, auto d, auto g) {
    using T = decltype(t);
    constexpr int kD = decltype(d)::value, kG = decltype(g)::value;
    auto go = [&](auto kernel, int splits, unsigned cluster) {
      sc.splits = splits;
      return launch_in_clusters(cluster, kernel, dim3(heads / G, splits), kWarps * 32, 0, stream, static_cast<const T*>(q), kv, lists,
                                scale, sc, group, out);
    };
    if constexpr (kG == 1) {  // within five blocks' registers a SM without spilling
      if (ahead && clusters_fit<decode_partial<kD, kG, T, true, true>>(heads / G)) {
        merged = true;
        return go(decode_partial<kD, kG, T, true, true>, kClusterSplits, kClusterSplits);
      }
    }
    if (ahead)
      return go(decode_partial<kD, kG, T, true, false>, one_wave_splits<decode_partial<kD, kG, T, true, false>>(heads / G, scratch.splits), 1);
    return go(decode_partial<kD, kG, T, false, false>, one_wave_splits<decode_partial<kD, kG, T, false, false>>(heads / G, scratch.splits), 1);
  });
  if (err != cudaSuccess || merged) return err;
  return launch(merge_splits, heads, 128, sc.splits * sizeof(float), stream, sc, kv.head_dim, out, static_cast<float*>(nullptr));
}

cudaError_t decode_attention_tokens(const void* q, const PagedKv& kv, const TokenLists& lists, int heads, float scale,
                                    const SplitScratch& scratch, const LogitsReport& report, float* out, cudaStream_t stream) {
  if (!supported(kv, heads) || lists.count < 1) return cudaErrorInvalidValue;
  const int group = heads / kv.kv_heads, G = lists.per_head ? 1 : group;
  SplitScratch sc = scratch;
  cudaError_t err = with_instance(kv, G, [&](auto t, auto d, auto g) {
    using T = decltype(t);
    constexpr int kD = decltype(d)::value, kG = decltype(g)::value;
    sc.splits = one_wave_splits<token_partial<kD, kG, T>>(heads / G, scratch.splits);
    return launch(token_partial<kD, kG, T>, dim3(heads / G, sc.splits), kWarps * 32, 0, stream, static_cast<const T*>(q), kv, lists,
                  scale, sc, report, group);
  });
  if (err != cudaSuccess) return err;
  return launch(merge_splits, heads, 128, sc.splits * sizeof(float), stream, sc, kv.head_dim, out, report.lse);
}

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

// The lists have min(pages, meta_full() + 1) entries each, as quest_topk writes them.
static int listed_pages(const PagedKv& kv, int pages) { return std::min(pages, kv.meta_full() + 1); }

cudaError_t quest_step(const void* q, const PagedKv& kv, int heads, bool per_head, int pages, float scale, const SplitScratch& scratch,
                       float* scores, int* indptr, int* indices, float* out, cudaStream_t stream) {
  if (!supported(kv, heads) || kv.meta_page != kGpuPage || pages < 1) return cudaErrorInvalidValue;
  const int group = heads / kv.kv_heads, G = per_head ? 1 : group, lists = heads / G, n = kv.meta_full();
  const int listed = listed_pages(kv, pages);
  // Up to 8 entries a split, two pages a warp: with more, the attention kernel, which looks a
  // page ahead, is faster (32K at budget 4096: 45.0 us against 46.3-47.9 fused, docs/quest-step.md).
  const int per_split = (listed + kClusterSplits - 1) / kClusterSplits;
  if (G == 1 && n >= 1 && n <= kWarps * 32 * kStepKeys && per_split <= 2 * kWarps) {
    bool fused = false;
    const cudaError_t err = with_type_and_dim(kv.type, kv.head_dim, [&](auto t, auto d) -> cudaError_t {
      using T = decltype(t);
      constexpr auto kernel = quest_step_kernel<decltype(d)::value, T>;
      if (!clusters_fit<kernel>(lists)) return cudaSuccess;
      fused = true;
      return launch_in_clusters(kClusterSplits, kernel, dim3(lists, kClusterSplits), kWarps * 32, 0, stream, static_cast<const T*>(q), kv,
                                pages, scale, group, indptr, indices, out);
    });
    if (err != cudaSuccess || fused) return err;
  }
  cudaError_t err = quest_estimate(q, kv, heads, per_head, scores, stream);
  if (err == cudaSuccess) err = quest_topk(scores, kv, pages, lists, indptr, indices, stream);
  if (err != cudaSuccess) return err;
  return decode_attention(q, kv, {indptr, indices, per_head, listed}, heads, scale, scratch, out, stream);
}

cudaError_t quest_pages_to_tokens(const PageLists& pages_in, const PagedKv& kv, int pages, int lists, const TokenLists& out,
                                  cudaStream_t stream) {
  const int P = kv.meta_page, n = listed_pages(kv, pages);
  const int count = (n - 1) * P + (kv.length() - kv.meta_full() * P);
  if (count != out.count || out.stride < count) return cudaErrorInvalidValue;
  const int blocks = std::min((lists * count + 255) / 256, 1024);
  // The lists are const to the attention that reads them; this call writes them.
  return launch(pages_to_tokens_kernel, blocks, 256, 0, stream, pages_in, P, lists, count, const_cast<int*>(out.indices), out.stride);
}

cudaError_t quest_union_tokens(const PageLists& lists, const PagedKv& kv, int heads, int pages, unsigned long long* total,
                               cudaStream_t stream) {
  const int P = kv.meta_page, n = listed_pages(kv, pages), words = (kv.meta_full() + 1 + 31) / 32;
  return launch(union_kernel, kv.kv_heads, 256, words * sizeof(unsigned int), stream, lists, heads / kv.kv_heads, n, P,
                kv.length() - kv.meta_full() * P, words, total);
}

// The cache's pointers are const in PagedKv (the attention kernels only read them); the two
// calls that write the cache take them back.
cudaError_t append_kv(const PagedKv& kv, int pos, const void* k, const void* v, cudaStream_t stream) {
  return with_half_type(kv.type, [&](auto t) {
    using T = decltype(t);
    auto w = [](const void* p) { return static_cast<T*>(const_cast<void*>(p)); };
    return launch(append_kernel<T>, kv.kv_heads, 128, 0, stream, w(kv.k), w(kv.v), w(kv.kmin), w(kv.kmax), kv, pos,
                  static_cast<const T*>(k), static_cast<const T*>(v));
  });
}

cudaError_t page_minmax(const PagedKv& kv, int first_page, int last_page, int64_t length, cudaStream_t stream) {
  const int pages = last_page - first_page + 1;
  if (pages <= 0) return cudaSuccess;
  const size_t n = (size_t)pages * kv.kv_heads * kv.head_dim;
  const int blocks = int(std::min<size_t>((n + 255) / 256, 4096));
  return with_half_type(kv.type, [&](auto t) {
    using T = decltype(t);
    auto w = [](const void* p) { return static_cast<T*>(const_cast<void*>(p)); };
    return launch(minmax_kernel<T>, blocks, 256, 0, stream, static_cast<const T*>(kv.k), w(kv.kmin), w(kv.kmax), kv, first_page, pages,
                  length);
  });
}

cudaError_t fill_dense_lists(int kv_heads, int pages, int* indptr, int* indices, cudaStream_t stream) {
  const int blocks = std::min((kv_heads * pages + 255) / 256, 1024);
  return launch(dense_lists_kernel, std::max(blocks, 1), 256, 0, stream, kv_heads, pages, indptr, indices);
}

}  // namespace quest
