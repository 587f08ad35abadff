// What the decode step's kernels share (decode attention, Quest's estimate, the fused Quest
// step): the online-softmax state of a list's query heads, a page folded into it, the merge of
// a block's states and of a cluster's splits on chip, and the host's dispatch to a kernel's
// instantiation and its occupancy.
#pragma once
#include <algorithm>
#include <cfloat>
#include <cstdint>
#include <iterator>
#include <type_traits>
#include <utility>

#include <cooperative_groups.h>

#include "kernels/cluster.cuh"
#include "kernels/gpu_shapes.h"
#include "kernels/launch.cuh"
#include "kernels/paged_kv.cuh"
#include "kernels/softcap.cuh"

namespace quest {

constexpr int kWarps = 4;    // warps per block in the attention and estimate kernels

// Lanes that hold one token's head_dim as 16-byte vectors: D / 8 rounded up to a power of two,
// for the shuffles' lane groups (head_dim 96: 16 lanes, of which the last 4 hold nothing).
template <int D>
__host__ __device__ constexpr int token_lanes() {
  int n = 1;
  while (n < D / 8) n *= 2;
  return n;
}

// Whether lane `sub` of a token's lanes holds a part of it (always, where D / 8 is a power of two).
template <int D>
__device__ inline bool lane_holds(int sub) {
  return token_lanes<D>() * 8 == D || sub * 8 < D;
}

// Sum over the `width` lanes that share a token (width divides 32, groups aligned).
template <int width>
__device__ inline float group_sum(float v) {
#pragma unroll
  for (int o = width / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// A (list, split)'s softmax state for the list's G query heads (list * G ..): the lanes' eighths
// of each scaled query (zeros in a lane that holds none), and an empty running max, sum and output.
template <int D, int G, typename T>
__device__ inline void start_state(const T* q, int list, int sub, float scale, float (&qv)[G][8], float (&m)[G], float (&l)[G],
                                   float (&acc)[G][8]) {
#pragma unroll
  for (int h = 0; h < G; ++h) {
    if (lane_holds<D>(sub)) load8<T>(q + (size_t)(list * G + h) * D + sub * 8, qv[h]);
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      if (!lane_holds<D>(sub)) qv[h][i] = 0.0f;
      qv[h][i] *= scale;
      acc[h][i] = 0.0f;
    }
    m[h] = -FLT_MAX;
    l[h] = 0.0f;
  }
}

// Folds one token (its K and V eighths in kr, vr) into the state when `valid`; every lane
// takes part in the sums either way. With CAP each score is soft-capped at `cap` (softcap.cuh).
// `logits`, when given, gets each head's score at logits[h * stride].
template <int G, int LT, typename T, bool CAP>
__device__ inline void attend(const float (&qv)[G][8], const uint4& kr, const uint4& vr, bool valid, float (&m)[G], float (&l)[G],
                              float (&acc)[G][8], float* logits, int stride, float cap) {
  float kf[8], vf[8];
  unpack8<T>(kr, kf);
  unpack8<T>(vr, vf);
#pragma unroll
  for (int h = 0; h < G; ++h) {
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < 8; ++i) s += qv[h][i] * kf[i];
    s = soft_cap<CAP>(group_sum<LT>(s), CAP ? 1.0f / cap : 0.0f, cap);
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
template <int D, int G, typename T, bool CAP, typename Between>
__device__ inline void attend_page(const PagedKv& kv, int g, int logical, int phys, int sub, int slot, const float (&qv)[G][8], float (&m)[G],
                                   float (&sum)[G], float (&acc)[G][8], float cap, Between between) {
  constexpr int LT = token_lanes<D>(), TPW = 32 / LT, ITER = kGpuPage / TPW;
  const int len = logical == kv.current_page ? kv.current_len : kGpuPage;
  const size_t base = ((size_t)phys * kv.kv_heads + g) * kGpuPage * D + sub * 8;
  uint4 kr[ITER], vr[ITER];
#pragma unroll
  for (int it = 0; it < ITER; ++it) {
    const int t = it * TPW + slot;
    kr[it] = vr[it] = make_uint4(0, 0, 0, 0);
    if (!lane_holds<D>(sub)) continue;
    kr[it] = *reinterpret_cast<const uint4*>(static_cast<const T*>(kv.k) + base + (size_t)t * D);
    vr[it] = *reinterpret_cast<const uint4*>(static_cast<const T*>(kv.v) + base + (size_t)t * D);
  }
  between();
#pragma unroll
  for (int it = 0; it < ITER; ++it) attend<G, LT, T, CAP>(qv, kr[it], vr[it], it * TPW + slot < len, m, sum, acc, nullptr, 0, cap);
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
    if (lane_holds<D>(sub)) {
#pragma unroll
      for (int i = 0; i < 8; ++i) sm_acc[st][h][sub * 8 + i] = acc[h][i];
    }
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

// Calls f(T{}, D, G) for the kernel instantiation of the cache's type T, head_dim D and the
// query heads of a list G (D and G as std::integral_constant); group (query heads per KV
// head) is the kernels' argument.
template <typename F>
cudaError_t with_instance(HalfType type, int head_dim, int G, F&& f) {
  static_assert(std::size(kGpuGroups) == 4 && gpu_group(1) && gpu_group(2) && gpu_group(4) && gpu_group(8), "the groups instantiated below");
  return with_type_and_dim(type, head_dim, [&](auto t, auto d) -> cudaError_t {
    switch (G) {
      case 1: return f(t, d, std::integral_constant<int, 1>{});
      case 2: return f(t, d, std::integral_constant<int, 2>{});
      case 4: return f(t, d, std::integral_constant<int, 4>{});
      case 8: return f(t, d, std::integral_constant<int, 8>{});
      default: return cudaErrorInvalidValue;
    }
  });
}

template <typename F>
cudaError_t with_instance(const PagedKv& kv, int G, F&& f) {
  return with_instance(kv.type, kv.head_dim, G, std::forward<F>(f));
}

// Blocks of `Kernel` the GPU holds at once (registers decide them): found once per kernel,
// every GPU of a process being taken as the same kind, for the decode plan (decode_plan.cuh).
template <auto Kernel>
int blocks_at_once() {
  static const int wave = [] {
    int per_sm = 1, dev = 0, sms = 1;
    cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, Kernel, kWarps * 32, 0);
    cudaGetDevice(&dev);
    cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
    return std::max(per_sm, 1) * sms;
  }();
  return wave;
}

// Clusters of kClusterSplits blocks of `Kernel` the GPU holds at once (0 before Hopper), found
// once per kernel; allows the kernel the non-portable cluster size it launches with.
template <auto Kernel>
int clusters_at_once() {
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
  return most;
}

inline bool supported(const PagedKv& kv, int heads) {
  return kv.page_size == kGpuPage && gpu_head_dim(kv.head_dim) && kv.kv_heads > 0 && heads % kv.kv_heads == 0;
}

}  // namespace quest
