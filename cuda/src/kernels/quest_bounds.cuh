// Quest's page scores from the key bounds, and the pages a radix select takes: shared by the
// estimate and top-k kernels (quest_select.cu) and the fused Quest step (quest_step.cu).
#pragma once
#include <cstdint>

#include "kernels/decode_common.cuh"
#include "kernels/reduce.cuh"

namespace quest {

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

}  // namespace quest
