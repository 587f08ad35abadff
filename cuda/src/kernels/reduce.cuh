// Warp and block reductions shared by the kernels.
#pragma once
#include <cfloat>
#include <cstdint>

namespace quest {

__device__ inline float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// The sum over a quad of lanes (4g..4g + 3): one row of an mma accumulator fragment, whose
// four lanes hold its columns.
__device__ inline float quad_sum(float v) {
  v += __shfl_xor_sync(0xffffffffu, v, 1);
  return v + __shfl_xor_sync(0xffffffffu, v, 2);
}

__device__ inline float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// The sum (or max) over the block, returned to every thread; `partial` holds 32 floats.
template <bool MAX>
__device__ inline float block_reduce(float v, float* partial) {
  v = MAX ? warp_max(v) : warp_sum(v);
  if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = v;
  __syncthreads();
  const float none = MAX ? -FLT_MAX : 0.0f;
  v = threadIdx.x % 32 < blockDim.x / 32 ? partial[threadIdx.x % 32] : none;  // every warp reduces the partials
  v = MAX ? warp_max(v) : warp_sum(v);
  __syncthreads();
  return v;
}

__device__ inline float block_sum(float v, float* partial) { return block_reduce<false>(v, partial); }
__device__ inline float block_max(float v, float* partial) { return block_reduce<true>(v, partial); }

// A float's bits as an unsigned key that orders like the float (radix selection).
__device__ inline uint32_t order_key(float f) {
  const uint32_t u = __float_as_uint(f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// Inclusive prefix sum across the lanes of a warp.
__device__ inline int warp_scan(int x) {
  const int lane = threadIdx.x % 32;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const int y = __shfl_up_sync(0xffffffffu, x, o);
    if (lane >= o) x += y;
  }
  return x;
}

// Exclusive prefix sum over the block (a multiple of 32 threads, at most 1024); `total`
// gets the sum of all.
__device__ inline int block_scan(int v, int* warp_sums, int& total) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  const int x = warp_scan(v);
  if (lane == 31) warp_sums[warp] = x;
  __syncthreads();
  if (warp == 0) warp_sums[lane] = warp_scan(lane < warps ? warp_sums[lane] : 0);
  __syncthreads();
  total = warp_sums[warps - 1];
  const int before = (warp > 0 ? warp_sums[warp - 1] : 0) + x - v;
  __syncthreads();
  return before;
}

// A radix select of the k-th largest key, 8 bits a pass, by a block of THREADS threads (a
// power of two, 32 to 256).
struct RadixShared {
  int hist[2][256];  // digit counts of the keys that match the prefix so far, in turns by pass
  int warp_sums[32];
  uint32_t prefix;
  int rest;
  bool whole;  // every key matching prefix is among the k largest
};

// After the pass at `shift` has filled `hist` (one of sh.hist): the digit where the counts
// summed from the highest digit down first reach `rest` (a parallel suffix sum, each thread
// over 256 / THREADS consecutive digits) extends `prefix`; `rest` becomes how many keys still
// to take among those matching it. Every thread gets both, and the return says whether those
// are all of them.
template <int THREADS>
__device__ inline bool radix_choose(RadixShared& sh, const int* hist, int shift, uint32_t& prefix, int& rest) {
  constexpr int R = 256 / THREADS;
  static_assert(THREADS >= 32 && THREADS <= 256 && 256 % THREADS == 0, "whole digits a thread");
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int top = 255 - threadIdx.x * R;  // this thread's digits: top, top - 1, .. top - R + 1
  int own = 0;
#pragma unroll
  for (int r = 0; r < R; ++r) own += hist[top - r];
  int incl = warp_scan(own);
  if (lane == 31) sh.warp_sums[warp] = incl;
  __syncthreads();
  for (int w = 0; w < warp; ++w) incl += sh.warp_sums[w];
  // From the thread's lowest digit up, `upto` counting the keys from the highest digit down
  // to d. (Kept from the thread's highest digit down instead, the sum cost the 256-thread
  // top-k 0.4-1.1 us; this order gives 00b3e21's time again: docs/quest-step.md.)
#pragma unroll
  for (int r = R - 1, upto = incl; r >= 0; --r) {
    const int d = top - r, excl = upto - hist[d];
    if (excl < rest && upto >= rest) {
      sh.prefix = prefix | ((uint32_t)d << shift);
      sh.rest = rest - excl;
      sh.whole = upto == rest;
    }
    upto = excl;
  }
  __syncthreads();
  prefix = sh.prefix;
  rest = sh.rest;
  return sh.whole;
}

// The block of THREADS finds the k-th largest key (0 < k < the keys) in 8-bit passes over
// the keys that each(count) hands to count (this thread's). The passes run over each key's
// offset from the smallest, from the highest bit where the offsets differ: a top-k's scores
// share their high bits, and a pass over a byte-aligned digit of which they share all but a
// few bits aims the atomics at a few bins. `prefix` gets that key and `rest` how many keys
// equal to it are among the k largest. The passes stop once every key that matches the prefix
// so far is among the k largest: `prefix` is then the least key that could match it and
// `rest` their count, so "above prefix, or equal and among the first rest" still picks
// exactly the k largest.
//
// After the first pass, first_pass(sure) learns that every key >= sure is among the k
// largest: those above the digit where the k-th largest lies.
struct NoFirstPass {
  __device__ void operator()(uint32_t) const {}
};

template <int THREADS, typename EachKey, typename FirstPass = NoFirstPass>
__device__ inline void radix_select(RadixShared& sh, int k, EachKey each, uint32_t& prefix, int& rest, FirstPass first_pass = {}) {
  uint32_t lo = 0xffffffffu, hi = 0;
  each([&](uint32_t key) {
    lo = min(lo, key);
    hi = max(hi, key);
  });
  lo = __reduce_min_sync(0xffffffffu, lo);
  hi = __reduce_max_sync(0xffffffffu, hi);
  if (threadIdx.x % 32 == 0) {
    sh.warp_sums[threadIdx.x / 32] = (int)lo;
    sh.warp_sums[16 + threadIdx.x / 32] = (int)hi;
  }
#pragma unroll
  for (int i = 0; i < 256 / THREADS; ++i) sh.hist[0][threadIdx.x + i * THREADS] = 0;
  __syncthreads();
  // No barrier after these reads: warp_sums is next written after the first pass's.
  for (int w = 0; w < THREADS / 32; ++w) {
    lo = min(lo, (uint32_t)sh.warp_sums[w]);
    hi = max(hi, (uint32_t)sh.warp_sums[16 + w]);
  }
  rest = k;
  if (lo == hi) {  // every key the same
    prefix = hi;
    __syncthreads();
    return;
  }
  // The first digit's top bit is the offsets' highest; later digits may overlap bits already
  // chosen (the last starts at bit 0), which then match in every key counted.
  int shift = max(0, 31 - __clz(hi - lo) - 7);
  uint32_t mask = shift >= 24 ? 0u : ~0u << (shift + 8);
  prefix = 0;
  for (int pass = 0;; ++pass) {
    int* hist = sh.hist[pass % 2];
    each([&](uint32_t key) {
      const uint32_t off = key - lo;
      if ((off & mask) == prefix) atomicAdd(&hist[(off >> shift) & 255], 1);
    });
    // The other turn's counts, last read before the previous choice's final barrier, are
    // cleared for the next pass.
#pragma unroll
    for (int i = 0; i < 256 / THREADS; ++i) sh.hist[1 - pass % 2][threadIdx.x + i * THREADS] = 0;
    __syncthreads();
    const bool done = radix_choose<THREADS>(sh, hist, shift, prefix, rest);
    if (pass == 0) first_pass((uint32_t)min(0xffffffffull, (unsigned long long)lo + prefix + (1ull << shift)));
    if (done || shift == 0) break;
    mask |= 255u << shift;
    shift = max(0, shift - 8);
  }
  prefix += lo;
}

}  // namespace quest
