#include "gpu/arch_ops.cuh"

#include <algorithm>

#include "kernels/cuda_util.cuh"
#include "kernels/half_types.cuh"
#include "kernels/reduce.cuh"
#include "kernels/softcap.cuh"

namespace quest {
namespace {

__global__ void scale_kernel(float* x, size_t n, float factor) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) x[i] *= factor;
}

// One warp a (row, head): the head's sum of squares, then the scaled values.
__global__ void head_rmsnorm_kernel(float* qkv, int rows, int heads, int kv_heads, int head_dim, const float* q_norm,
                                    const float* k_norm, float eps) {
  const int warp = int((blockIdx.x * size_t(blockDim.x) + threadIdx.x) / 32), lane = threadIdx.x % 32;
  const int all = heads + kv_heads;
  if (warp >= rows * all) return;
  const int r = warp / all, h = warp % all;
  float* x = qkv + size_t(r) * (heads + 2 * kv_heads) * head_dim + size_t(h) * head_dim;
  const float* w = h < heads ? q_norm : k_norm;
  float ss = 0;
  for (int i = lane; i < head_dim; i += 32) ss += x[i] * x[i];
  for (int o = 16; o > 0; o /= 2) ss += __shfl_xor_sync(0xffffffffu, ss, o);
  const float inv = 1.0f / sqrtf(ss / head_dim + eps);
  for (int i = lane; i < head_dim; i += 32) x[i] = w[i] * (x[i] * inv);
}

// One block a row: y's sum of squares, then x += weight * (y / rms(y)), the add in the CPU's operation order.
__global__ void post_norm_add_kernel(float* x, const float* y, int dim, const float* weight, float eps) {
  __shared__ float partial[32];
  const float* yr = y + size_t(blockIdx.x) * dim;
  float* xr = x + size_t(blockIdx.x) * dim;
  float ss = 0;
  for (int i = threadIdx.x; i < dim; i += blockDim.x) ss += yr[i] * yr[i];
  const float inv = 1.0f / sqrtf(block_sum(ss, partial) / dim + eps);
  for (int i = threadIdx.x; i < dim; i += blockDim.x) xr[i] += weight[i] * (yr[i] * inv);
}

__global__ void geglu_kernel(const float* gu, int rows, int inter, float* out) {
  const float k = 0.7978845608028654f;  // sqrt(2 / pi)
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < size_t(rows) * inter; i += size_t(gridDim.x) * blockDim.x) {
    const size_t r = i / inter, c = i % inter;
    const float g = gu[r * 2 * inter + c], u = gu[r * 2 * inter + inter + c];
    out[i] = 0.5f * g * (1.0f + tanhf(k * (g + 0.044715f * g * g * g))) * u;
  }
}

__global__ void softcap_kernel(float* x, size_t n, float cap) {
  const float inv = 1.0f / cap;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) x[i] = soft_cap<true>(x[i], inv, cap);
}

__global__ void window_lists_kernel(int* indices, int lists, int64_t first, int count) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < lists * count; i += gridDim.x * blockDim.x)
    indices[i] = int(first + i % count);
}

// One warp a (row, query head); each lane holds head_dim / 32 channels of q and of the output.
template <typename E, int D>
__global__ void window_attention_kernel(const E* q, PagedKv kv, int heads, int rows, int64_t start, float scale, float cap,
                                        int window, float* out) {
  constexpr int C = D / 32;
  const int warp = int((blockIdx.x * size_t(blockDim.x) + threadIdx.x) / 32), lane = threadIdx.x % 32;
  if (warp >= rows * heads) return;
  const int r = warp / heads, h = warp % heads, g = h / (heads / kv.kv_heads);
  const int64_t p = start + r, first = p - window + 1 > 0 ? p - window + 1 : 0;
  float qv[C], acc[C];
  for (int c = 0; c < C; ++c) {
    qv[c] = Cvt<E>::to(q[(size_t(r) * heads + h) * D + lane + 32 * c]);
    acc[c] = 0;
  }
  const E* K = static_cast<const E*>(kv.k);
  const E* V = static_cast<const E*>(kv.v);
  float mx = -INFINITY, sum = 0;
  for (int64_t t = first; t <= p; ++t) {
    const size_t slot = ((size_t(kv.page_table[t / kv.page_size]) * kv.kv_heads + g) * kv.page_size + t % kv.page_size) * D;
    float s = 0;
    for (int c = 0; c < C; ++c) s += qv[c] * Cvt<E>::to(K[slot + lane + 32 * c]);
    for (int o = 16; o > 0; o /= 2) s += __shfl_xor_sync(0xffffffffu, s, o);
    s *= scale;
    if (cap > 0) s = soft_cap<true>(s, 1.0f / cap, cap);  // a plain kernel: the branch costs nothing that matters here
    const float m = fmaxf(mx, s), keep = __expf(mx - m), wgt = __expf(s - m);
    sum = sum * keep + wgt;
    for (int c = 0; c < C; ++c) acc[c] = acc[c] * keep + wgt * Cvt<E>::to(V[slot + lane + 32 * c]);
    mx = m;
  }
  for (int c = 0; c < C; ++c) out[(size_t(r) * heads + h) * D + lane + 32 * c] = acc[c] / sum;
}

int blocks_for(size_t threads) { return int(std::min<size_t>((threads + 255) / 256, 65535)); }

}  // namespace

void scale_values(float* x, size_t n, float factor, cudaStream_t stream) {
  scale_kernel<<<blocks_for(n), 256, 0, stream>>>(x, n, factor);
  check(cudaGetLastError(), "scale");
}

void post_norm_add(float* x, const float* y, int rows, int dim, const float* weight, float eps, cudaStream_t stream) {
  post_norm_add_kernel<<<rows, 256, 0, stream>>>(x, y, dim, weight, eps);
  check(cudaGetLastError(), "post-norm");
}

void geglu(const float* gu, int rows, int inter, float* out, cudaStream_t stream) {
  geglu_kernel<<<blocks_for(size_t(rows) * inter), 256, 0, stream>>>(gu, rows, inter, out);
  check(cudaGetLastError(), "GeGLU");
}

void softcap(float* x, size_t n, float cap, cudaStream_t stream) {
  softcap_kernel<<<blocks_for(n), 256, 0, stream>>>(x, n, cap);
  check(cudaGetLastError(), "logit soft-capping");
}

void head_rmsnorm(float* qkv, int rows, int heads, int kv_heads, int head_dim, const float* q_norm, const float* k_norm,
                  float eps, cudaStream_t stream) {
  const size_t threads = size_t(rows) * (heads + kv_heads) * 32;
  head_rmsnorm_kernel<<<int((threads + 255) / 256), 256, 0, stream>>>(qkv, rows, heads, kv_heads, head_dim, q_norm, k_norm, eps);
  check(cudaGetLastError(), "head_rmsnorm");
}

void window_lists(int* indices, int lists, int64_t pos, int count, cudaStream_t stream) {
  window_lists_kernel<<<blocks_for(size_t(lists) * count), 256, 0, stream>>>(indices, lists, pos - count + 1, count);
  check(cudaGetLastError(), "window_lists");
}

void window_prefill_attention(const PrefillArgs& a, int window, cudaStream_t stream) {
  const size_t threads = size_t(a.rows) * a.heads * 32;
  with_type_and_dim(a.kv.type, a.kv.head_dim, [&](auto w, auto d) {
    using E = decltype(w);
    window_attention_kernel<E, decltype(d)::value><<<int((threads + 255) / 256), 256, 0, stream>>>(
        static_cast<const E*>(a.q), a.kv, a.heads, a.rows, a.start, a.scale, a.softcap, window, a.out);
  });
  check(cudaGetLastError(), "window attention");
}

}  // namespace quest
