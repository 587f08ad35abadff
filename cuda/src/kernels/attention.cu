#include <algorithm>
#include <cfloat>
#include <cstdint>

#include "kernels/attention.cuh"
#include "kernels/launch.cuh"
#include "kernels/reduce.cuh"

namespace quest {
namespace {

constexpr int kPage = 16;    // the GPU kernels are built for the default page size
constexpr int kWarps = 4;    // warps per block in the attention and estimate kernels

__device__ inline void unpack8(const uint4& raw, float out[8]) {
  const __half2* h = reinterpret_cast<const __half2*>(&raw);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    float2 f = __half22float2(h[i]);
    out[2 * i] = f.x;
    out[2 * i + 1] = f.y;
  }
}

// Eight halves from one 16-byte load.
__device__ inline void load8(const __half* p, float out[8]) { unpack8(*reinterpret_cast<const uint4*>(p), out); }

// Sum over the `width` lanes that share a token (width divides 32, groups aligned).
template <int width>
__device__ inline float group_sum(float v) {
#pragma unroll
  for (int o = width / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// One block per (KV head, split). Each warp takes whole pages; within a page, LT lanes hold
// one token's head_dim as 16-byte vectors, so a warp covers 32 / LT tokens per step, and the
// page's K and V are all loaded before any is used (bytes in flight hide the latency).
template <int D, int G>
__global__ void __launch_bounds__(kWarps * 32) decode_partial(const __half* __restrict__ q, PagedKv kv, PageLists lists,
                                                              float scale, SplitScratch sc) {
  constexpr int LT = D / 8, TPW = 32 / LT, ITER = kPage / TPW;
  const int g = blockIdx.x, split = blockIdx.y;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, sub = lane % LT, slot = lane / LT;
  wait_for_previous();  // the lists may come from the top-k just before
  const int begin = lists.indptr[g], end = lists.indptr[g + 1];
  const int per = (end - begin + sc.splits - 1) / sc.splits;
  const int p0 = begin + split * per, p1 = min(end, p0 + per);

  float qv[G][8], m[G], l[G], acc[G][8];
#pragma unroll
  for (int h = 0; h < G; ++h) {
    load8(q + (size_t)(g * G + h) * D + sub * 8, qv[h]);
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      qv[h][i] *= scale;
      acc[h][i] = 0.0f;
    }
    m[h] = -FLT_MAX;
    l[h] = 0.0f;
  }

  for (int pi = p0 + warp; pi < p1; pi += kWarps) {
    const int logical = lists.indices[pi];
    const int phys = kv.page_table[logical];
    const int len = logical == kv.current_page ? kv.current_len : kPage;
    const size_t base = ((size_t)phys * kv.kv_heads + g) * kPage * D + sub * 8;
    uint4 kr[ITER], vr[ITER];
#pragma unroll
    for (int it = 0; it < ITER; ++it) {
      const int t = it * TPW + slot;
      kr[it] = *reinterpret_cast<const uint4*>(kv.k + base + (size_t)t * D);
      vr[it] = *reinterpret_cast<const uint4*>(kv.v + base + (size_t)t * D);
    }
#pragma unroll
    for (int it = 0; it < ITER; ++it) {
      const bool valid = it * TPW + slot < len;
      float kf[8], vf[8];
      unpack8(kr[it], kf);
      unpack8(vr[it], vf);
#pragma unroll
      for (int h = 0; h < G; ++h) {
        float s = 0.0f;
#pragma unroll
        for (int i = 0; i < 8; ++i) s += qv[h][i] * kf[i];
        s = group_sum<LT>(s);
        if (!valid) continue;  // the unused slots of the newest page hold nothing to read
        const float mn = fmaxf(m[h], s);
        const float c = __expf(m[h] - mn), p = __expf(s - mn);
        l[h] = l[h] * c + p;
#pragma unroll
        for (int i = 0; i < 8; ++i) acc[h][i] = acc[h][i] * c + p * vf[i];
        m[h] = mn;
      }
    }
  }

  // Merge the block's (warp, slot) states per query head through shared memory.
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
    const int head = g * G + h;
    sc.o[((size_t)head * sc.splits + split) * D + j] = L > 0.0f ? O / L : 0.0f;
    if (j == 0) sc.lse[(size_t)head * sc.splits + split] = L > 0.0f ? M + __logf(L) : -FLT_MAX;
  }
}

// One block per query head: the splits' outputs weighted by their share of the softmax mass.
// The weights are found once, by all threads together, so no thread walks the splits twice.
__global__ void merge_splits(SplitScratch sc, int head_dim, float* __restrict__ out) {
  extern __shared__ float weight[];  // [splits]
  __shared__ float partial[32];
  wait_for_previous();
  const int h = blockIdx.x;
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
  for (int j = threadIdx.x; j < head_dim; j += blockDim.x) {
    float o = 0.0f;
#pragma unroll 8
    for (int s = 0; s < sc.splits; ++s) o += weight[s] * sc.o[((size_t)h * sc.splits + s) * head_dim + j];
    out[(size_t)h * head_dim + j] = total > 0.0f ? o / total : 0.0f;
  }
}

constexpr int kEstimateUnroll = 4;  // page groups a warp loads before scoring any

// A warp covers kEstimateUnroll x 32 / LT full pages of one KV head, LT lanes a page, every
// min and max load issued before the first is used.
template <int D, int G>
__global__ void __launch_bounds__(kWarps * 32) estimate_kernel(const __half* __restrict__ q, PagedKv kv, float* __restrict__ scores) {
  constexpr int LT = D / 8, TPW = 32 / LT, U = kEstimateUnroll;
  const int g = blockIdx.x;
  const int lane = threadIdx.x % 32, sub = lane % LT, slot = lane / LT;
  const int first = (blockIdx.y * kWarps + threadIdx.x / 32) * TPW * U;
  wait_for_previous();
  float qv[G][8];
#pragma unroll
  for (int h = 0; h < G; ++h) load8(q + (size_t)(g * G + h) * D + sub * 8, qv[h]);
  const int full = kv.current_page;
  uint4 mnr[U], mxr[U];
#pragma unroll
  for (int u = 0; u < U; ++u) {
    const int p = first + u * TPW + slot;
    if (p < full) {
      const size_t off = ((size_t)kv.page_table[p] * kv.kv_heads + g) * D + sub * 8;
      mnr[u] = *reinterpret_cast<const uint4*>(kv.kmin + off);
      mxr[u] = *reinterpret_cast<const uint4*>(kv.kmax + off);
    }
  }
#pragma unroll
  for (int u = 0; u < U; ++u) {
    const int p = first + u * TPW + slot;
    float s = 0.0f;
    if (p < full) {
      float mn[8], mx[8];
      unpack8(mnr[u], mn);
      unpack8(mxr[u], mx);
#pragma unroll
      for (int h = 0; h < G; ++h)
#pragma unroll
        for (int i = 0; i < 8; ++i) s += fmaxf(qv[h][i] * mx[i], qv[h][i] * mn[i]);
    }
    s = group_sum<LT>(s);
    if (p < full && sub == 0) scores[(size_t)g * full + p] = s;
  }
}

__device__ inline uint32_t order_key(float f) {
  const uint32_t u = __float_as_uint(f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);  // larger float, larger unsigned key
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

constexpr int kTopkThreads = 256;

// One block per KV head: radix select of the k-th largest score (8 bits a pass, the keys
// held in registers, KPT a thread, the digit found by a parallel suffix sum), then the pages
// above it and the first (by page) of those equal to it, written in page order. A small
// block keeps the dozen barriers cheap.
template <int KPT>
__global__ void __launch_bounds__(kTopkThreads) topk_kernel(const float* __restrict__ scores, PagedKv kv, int pages,
                                                            int* __restrict__ indptr, int* __restrict__ indices) {
  __shared__ int hist[256];
  __shared__ int warp_sums[32];
  __shared__ uint32_t chosen_prefix;
  __shared__ int chosen_rest;
  const int g = blockIdx.x, n = kv.current_page;
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
  uint32_t prefix = 0, mask = 0;
  int rest = k;  // how many still to take among keys matching the prefix
  if (partial) {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    for (int shift = 24; shift >= 0; shift -= 8) {
      hist[threadIdx.x] = 0;
      __syncthreads();
#pragma unroll
      for (int j = 0; j < KPT; ++j)
        if (j < cnt && (keys[j] & mask) == prefix) atomicAdd(&hist[(keys[j] >> shift) & 255], 1);
      __syncthreads();
      // Suffix sums over the digits, highest first: the digit where they first reach `rest`.
      int incl = warp_scan(hist[255 - threadIdx.x]);
      if (lane == 31) warp_sums[warp] = incl;
      __syncthreads();
      for (int w = 0; w < warp; ++w) incl += warp_sums[w];
      const int d = 255 - threadIdx.x, excl = incl - hist[d];
      if (excl < rest && incl >= rest) {
        chosen_prefix = prefix | ((uint32_t)d << shift);
        chosen_rest = rest - excl;
      }
      __syncthreads();
      prefix = chosen_prefix;
      rest = chosen_rest;
      mask |= 255u << shift;
    }
  }
  // Taken: every key above the threshold, and the first `rest` keys equal to it.
  int eq = 0;
#pragma unroll
  for (int j = 0; j < KPT; ++j) eq += partial && j < cnt && keys[j] == prefix;
  int total;
  const int eq_before = block_scan(eq, warp_sums, total);
  bool take[KPT];
  int sel = 0;
#pragma unroll
  for (int j = 0, e = eq_before; j < KPT; ++j) {
    take[j] = j < cnt && (partial ? keys[j] > prefix || (keys[j] == prefix && e++ < rest) : k == n);
    sel += take[j];
  }
  int pos = block_scan(sel, warp_sums, total);
#pragma unroll
  for (int j = 0; j < KPT; ++j)
    if (take[j]) out[pos++] = lo + j;
  if (threadIdx.x == 0) out[k] = kv.current_page;
}

__global__ void append_kernel(__half* k_cache, __half* v_cache, __half* kmin, __half* kmax, const int* page_table, int kv_heads,
                              int head_dim, int page_size, int pos, const __half* k, const __half* v) {
  const int g = blockIdx.x;
  const int page = pos / page_size, slot = pos % page_size;
  wait_for_previous();
  const size_t phys = page_table[page];
  for (int i = threadIdx.x; i < head_dim; i += blockDim.x) {
    const __half kk = k[g * head_dim + i];
    k_cache[((phys * kv_heads + g) * page_size + slot) * head_dim + i] = kk;
    v_cache[((phys * kv_heads + g) * page_size + slot) * head_dim + i] = v[g * head_dim + i];
    const size_t m = (phys * kv_heads + g) * head_dim + i;
    kmin[m] = slot == 0 ? kk : __hmin(kmin[m], kk);
    kmax[m] = slot == 0 ? kk : __hmax(kmax[m], kk);
  }
}

__global__ void minmax_kernel(const __half* k_cache, __half* kmin, __half* kmax, const int* page_table, int kv_heads,
                              int head_dim, int page_size, int first_page, int pages, int64_t length) {
  const size_t n = (size_t)pages * kv_heads * head_dim;
  wait_for_previous();
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    const int d = int(i % head_dim), g = int(i / head_dim % kv_heads), page = first_page + int(i / head_dim / kv_heads);
    const size_t phys = page_table[page];
    const int len = int(min((int64_t)page_size, length - (int64_t)page * page_size));
    const __half* k = k_cache + (phys * kv_heads + g) * page_size * head_dim + d;
    __half mn = k[0], mx = k[0];
    for (int s = 1; s < len; ++s) {
      mn = __hmin(mn, k[(size_t)s * head_dim]);
      mx = __hmax(mx, k[(size_t)s * head_dim]);
    }
    kmin[(phys * kv_heads + g) * head_dim + d] = mn;
    kmax[(phys * kv_heads + g) * head_dim + d] = mx;
  }
}

__global__ void dense_lists_kernel(int kv_heads, int pages, int* indptr, int* indices) {
  wait_for_previous();
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < kv_heads * pages; i += gridDim.x * blockDim.x) {
    indices[i] = i % pages;
    if (i % pages == 0) indptr[i / pages] = i;
  }
  if (blockIdx.x == 0 && threadIdx.x == 0) indptr[kv_heads] = kv_heads * pages;
}

template <int D>
cudaError_t launch_partial(int group, dim3 grid, const __half* q, const PagedKv& kv, const PageLists& lists, float scale,
                           const SplitScratch& sc, cudaStream_t stream) {
  switch (group) {
    case 1: return launch(decode_partial<D, 1>, grid, kWarps * 32, 0, stream, q, kv, lists, scale, sc);
    case 2: return launch(decode_partial<D, 2>, grid, kWarps * 32, 0, stream, q, kv, lists, scale, sc);
    case 4: return launch(decode_partial<D, 4>, grid, kWarps * 32, 0, stream, q, kv, lists, scale, sc);
    case 8: return launch(decode_partial<D, 8>, grid, kWarps * 32, 0, stream, q, kv, lists, scale, sc);
    default: return cudaErrorInvalidValue;
  }
}

template <int D>
cudaError_t launch_estimate(int group, dim3 grid, const __half* q, const PagedKv& kv, float* scores, cudaStream_t stream) {
  switch (group) {
    case 1: return launch(estimate_kernel<D, 1>, grid, kWarps * 32, 0, stream, q, kv, scores);
    case 2: return launch(estimate_kernel<D, 2>, grid, kWarps * 32, 0, stream, q, kv, scores);
    case 4: return launch(estimate_kernel<D, 4>, grid, kWarps * 32, 0, stream, q, kv, scores);
    case 8: return launch(estimate_kernel<D, 8>, grid, kWarps * 32, 0, stream, q, kv, scores);
    default: return cudaErrorInvalidValue;
  }
}

bool supported(const PagedKv& kv, int heads) {
  return kv.page_size == kPage && (kv.head_dim == 64 || kv.head_dim == 128) && kv.kv_heads > 0 && heads % kv.kv_heads == 0;
}

}  // namespace

cudaError_t decode_attention(const __half* q, const PagedKv& kv, const PageLists& lists, int heads, float scale,
                             const SplitScratch& scratch, float* out, cudaStream_t stream) {
  if (!supported(kv, heads)) return cudaErrorInvalidValue;
  const dim3 grid(kv.kv_heads, scratch.splits);
  const int group = heads / kv.kv_heads;
  cudaError_t err = kv.head_dim == 128 ? launch_partial<128>(group, grid, q, kv, lists, scale, scratch, stream)
                                       : launch_partial<64>(group, grid, q, kv, lists, scale, scratch, stream);
  if (err != cudaSuccess) return err;
  return launch(merge_splits, heads, 128, scratch.splits * sizeof(float), stream, scratch, kv.head_dim, out);
}

cudaError_t quest_estimate(const __half* q, const PagedKv& kv, int heads, float* scores, cudaStream_t stream) {
  if (!supported(kv, heads)) return cudaErrorInvalidValue;
  if (kv.current_page == 0) return cudaSuccess;
  const int per_block = kWarps * (32 / (kv.head_dim / 8)) * kEstimateUnroll;
  const dim3 grid(kv.kv_heads, (kv.current_page + per_block - 1) / per_block);
  const int group = heads / kv.kv_heads;
  return kv.head_dim == 128 ? launch_estimate<128>(group, grid, q, kv, scores, stream)
                            : launch_estimate<64>(group, grid, q, kv, scores, stream);
}

cudaError_t quest_topk(const float* scores, const PagedKv& kv, int pages, int* indptr, int* indices, cudaStream_t stream) {
  if (pages < 1) return cudaErrorInvalidValue;
  // Keys per thread: 8 up to 2048 pages (32K tokens), 32 up to 8192, 64 up to 16384 (256K).
  const int n = kv.current_page;
  if (n <= kTopkThreads * 8) return launch(topk_kernel<8>, kv.kv_heads, kTopkThreads, 0, stream, scores, kv, pages, indptr, indices);
  if (n <= kTopkThreads * 32) return launch(topk_kernel<32>, kv.kv_heads, kTopkThreads, 0, stream, scores, kv, pages, indptr, indices);
  if (n <= kTopkThreads * 64) return launch(topk_kernel<64>, kv.kv_heads, kTopkThreads, 0, stream, scores, kv, pages, indptr, indices);
  return cudaErrorInvalidValue;
}

cudaError_t append_kv(__half* k_cache, __half* v_cache, __half* kmin, __half* kmax, const int* page_table, int kv_heads,
                      int head_dim, int page_size, int pos, const __half* k, const __half* v, cudaStream_t stream) {
  return launch(append_kernel, kv_heads, 128, 0, stream, k_cache, v_cache, kmin, kmax, page_table, kv_heads, head_dim, page_size, pos, k, v);
}

cudaError_t page_minmax(const __half* k_cache, __half* kmin, __half* kmax, const int* page_table, int kv_heads, int head_dim,
                        int page_size, int first_page, int last_page, int64_t length, cudaStream_t stream) {
  const int pages = last_page - first_page + 1;
  if (pages <= 0) return cudaSuccess;
  const size_t n = (size_t)pages * kv_heads * head_dim;
  const int blocks = int(std::min<size_t>((n + 255) / 256, 4096));
  return launch(minmax_kernel, blocks, 256, 0, stream, k_cache, kmin, kmax, page_table, kv_heads, head_dim, page_size, first_page,
                pages, length);
}

cudaError_t fill_dense_lists(int kv_heads, int pages, int* indptr, int* indices, cudaStream_t stream) {
  const int blocks = std::min((kv_heads * pages + 255) / 256, 1024);
  return launch(dense_lists_kernel, std::max(blocks, 1), 256, 0, stream, kv_heads, pages, indptr, indices);
}

}  // namespace quest
