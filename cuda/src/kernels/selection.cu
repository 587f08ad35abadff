#include <algorithm>
#include <cfloat>
#include <cstdint>

#include "kernels/launch.cuh"
#include "kernels/reduce.cuh"
#include "kernels/selection.cuh"

namespace quest {
namespace {

constexpr int kThreads = 256;

__global__ void compose_kernel(const int* __restrict__ kept, int kept_count, int kept_stride, TokenRange a, TokenRange b, int* __restrict__ out,
                               int out_stride) {
  const int g = blockIdx.y;
  const int na = max(0, a.hi - a.lo), nb = max(0, b.hi - b.lo), total = kept_count + na + nb;
  wait_for_previous();
  for (int e = blockIdx.x * blockDim.x + threadIdx.x; e < total; e += gridDim.x * blockDim.x) {
    int v;
    if (e < kept_count)
      v = kept[(size_t)g * kept_stride + e];
    else if (e < kept_count + na)
      v = a.lo + (e - kept_count);
    else
      v = b.lo + (e - kept_count - na);
    out[(size_t)g * out_stride + e] = v;
  }
}

__global__ void group_probs_kernel(const float* __restrict__ logits, const float* __restrict__ lse, int stride, int group,
                                   const int* __restrict__ lists, int count, float* __restrict__ acc, int acc_stride,
                                   float* __restrict__ probs) {
  const int g = blockIdx.y;
  wait_for_previous();
  for (int e = blockIdx.x * blockDim.x + threadIdx.x; e < count; e += gridDim.x * blockDim.x) {
    float p = 0.0f;
    for (int h = g * group; h < (g + 1) * group; ++h) p += __expf(logits[(size_t)h * stride + e] - lse[h]);
    if (acc) acc[(size_t)g * acc_stride + lists[(size_t)g * stride + e]] += p;
    if (probs) probs[(size_t)g * stride + e] = p;
  }
}

// One block per KV head: a radix select of the k-th largest key, then the keys above it and the first
// (by index) of those equal to it, written in index order. Scores are read from memory on
// each pass, so any n fits.
__global__ void __launch_bounds__(kThreads) top_k_kernel(const float* __restrict__ scores, int score_stride, int n, int k,
                                                         int* __restrict__ out, int out_stride) {
  __shared__ RadixShared sh;
  const int g = blockIdx.x;
  const float* sc = scores + (size_t)g * score_stride;
  int* o = out + (size_t)g * out_stride;
  wait_for_previous();
  // Each thread owns a contiguous chunk, so ranks follow index order.
  const int chunk = (n + kThreads - 1) / kThreads;
  const int lo = min(n, (int)threadIdx.x * chunk), hi = min(n, lo + chunk);
  const bool partial = k < n;  // otherwise every key is taken
  uint32_t prefix = 0;
  int rest = k;
  if (partial)
    radix_select<kThreads>(
        sh, k, [&](auto count) {
          for (int j = lo; j < hi; ++j) count(order_key(sc[j]));
        },
        prefix, rest);
  int eq = 0;
  if (partial)
    for (int j = lo; j < hi; ++j) eq += order_key(sc[j]) == prefix;
  int total;
  int e = block_scan(eq, sh.warp_sums, total);
  int sel = 0;
  for (int j = lo; j < hi; ++j) {
    const uint32_t key = partial ? order_key(sc[j]) : 0u;
    sel += !partial || key > prefix || (key == prefix && e++ < rest);
  }
  int pos = block_scan(sel, sh.warp_sums, total);
  e = block_scan(eq, sh.warp_sums, total);
  for (int j = lo; j < hi; ++j) {
    const uint32_t key = partial ? order_key(sc[j]) : 0u;
    if (!partial || key > prefix || (key == prefix && e++ < rest)) o[pos++] = j;
  }
}

// Whether (v, i) is a better candidate for eviction than (w, j).
__device__ inline bool worse(float v, int i, float w, int j, bool later) {
  return v < w || (v == w && (later ? i > j : i < j));
}

__global__ void __launch_bounds__(kThreads) evict_kernel(const int* __restrict__ in, int count, int in_stride, const float* __restrict__ scores,
                                                         int score_stride, bool by_position, int protect, bool later,
                                                         int* __restrict__ out, int out_stride) {
  __shared__ float best_v[32];
  __shared__ int best_i[32];
  const int g = blockIdx.x;
  const int* src = in + (size_t)g * in_stride;
  const float* sc = scores + (size_t)g * score_stride;
  wait_for_previous();
  const int candidates = count - protect;
  float v = FLT_MAX;
  int vi = -1;
  for (int i = threadIdx.x; i < candidates; i += blockDim.x) {
    const float s = sc[by_position ? src[i] : i];
    if (vi < 0 || worse(s, i, v, vi, later)) {
      v = s;
      vi = i;
    }
  }
  for (int o = 16; o > 0; o >>= 1) {
    const float w = __shfl_xor_sync(0xffffffffu, v, o);
    const int wi = __shfl_xor_sync(0xffffffffu, vi, o);
    if (wi >= 0 && (vi < 0 || worse(w, wi, v, vi, later))) {
      v = w;
      vi = wi;
    }
  }
  if (threadIdx.x % 32 == 0) {
    best_v[threadIdx.x / 32] = v;
    best_i[threadIdx.x / 32] = vi;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < (int)blockDim.x / 32; ++w)
      if (best_i[w] >= 0 && (vi < 0 || worse(best_v[w], best_i[w], v, vi, later))) {
        v = best_v[w];
        vi = best_i[w];
      }
    best_i[0] = vi;
  }
  __syncthreads();
  const int drop = best_i[0];
  int* dst = out + (size_t)g * out_stride;
  for (int i = threadIdx.x; i < count; i += blockDim.x)
    if (i != drop) dst[i < drop ? i : i - 1] = src[i];
}

__global__ void max_pool_kernel(const float* __restrict__ in, int stride, int n, int half, float* __restrict__ out) {
  const int g = blockIdx.y;
  wait_for_previous();
  for (int j = blockIdx.x * blockDim.x + threadIdx.x; j < n; j += gridDim.x * blockDim.x) {
    float m = -FLT_MAX;
    for (int t = max(0, j - half); t <= min(n - 1, j + half); ++t) m = fmaxf(m, in[(size_t)g * stride + t]);
    out[(size_t)g * stride + j] = m;
  }
}

dim3 grid_for(int n, int kv_heads) { return dim3(std::max(1, std::min((n + kThreads - 1) / kThreads, 256)), kv_heads); }

}  // namespace

cudaError_t compose_lists(const ListHeads& kept, TokenRange a, TokenRange b, int kv_heads, int* out, int out_stride, cudaStream_t stream) {
  const int total = kept.count + std::max(0, a.hi - a.lo) + std::max(0, b.hi - b.lo);
  if (total > out_stride) return cudaErrorInvalidValue;
  return launch(compose_kernel, grid_for(total, kv_heads), kThreads, 0, stream, kept.lists, kept.count, kept.stride, a, b, out, out_stride);
}

cudaError_t group_probs(const GroupProbs& p, cudaStream_t stream) {
  return launch(group_probs_kernel, grid_for(p.count, p.kv_heads), kThreads, 0, stream, p.logits, p.lse, p.stride, p.heads / p.kv_heads,
                p.lists, p.count, p.acc, p.acc_stride, p.probs);
}

cudaError_t top_k_indices(const float* scores, int score_stride, int n, int k, int kv_heads, int* out, int out_stride,
                          cudaStream_t stream) {
  if (k < 1 || k > n || k > out_stride) return cudaErrorInvalidValue;
  return launch(top_k_kernel, kv_heads, kThreads, 0, stream, scores, score_stride, n, k, out, out_stride);
}

cudaError_t evict_one(const EvictOne& e, cudaStream_t stream) {
  if (e.count - e.protect < 1 || e.count - 1 > e.out_stride) return cudaErrorInvalidValue;
  return launch(evict_kernel, e.kv_heads, kThreads, 0, stream, e.in, e.count, e.in_stride, e.scores, e.score_stride, e.by_position, e.protect,
                e.drop_later, e.out, e.out_stride);
}

cudaError_t max_pool(const float* in, int stride, int n, int half, int kv_heads, float* out, cudaStream_t stream) {
  return launch(max_pool_kernel, grid_for(n, kv_heads), kThreads, 0, stream, in, stride, n, half, out);
}

}  // namespace quest
