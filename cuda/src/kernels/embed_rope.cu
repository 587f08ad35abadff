#include <cuda_bf16.h>

#include "kernels/cuda_util.cuh"
#include "kernels/embed_rope.cuh"
#include "kernels/launch.cuh"

namespace quest {
namespace {

template <typename W>
__global__ void embed_kernel(const W* __restrict__ table, int dim, const int32_t* __restrict__ tokens, float* __restrict__ y) {
  wait_for_previous();
  const W* row = table + (size_t)tokens[blockIdx.x] * dim;
  for (int i = threadIdx.x; i < dim; i += blockDim.x) y[(size_t)blockIdx.x * dim + i] = Cvt<W>::to(row[i]);
}

// trig[r][0..half) = cos, trig[r][half..2 half) = sin of row r's angles: position x inv_freq
// formed in fp32 as transformers does, its sine and cosine in double as the CPU backend.
__global__ void rope_angles_kernel(int rows, int64_t start, const float* __restrict__ inv_freq, int half, float* __restrict__ trig) {
  wait_for_previous();
  for (int idx = blockIdx.x * blockDim.x + threadIdx.x; idx < rows * half; idx += gridDim.x * blockDim.x) {
    const int r = idx / half, i = idx % half;
    const float angle = float(start + r) * inv_freq[i];
    double sd, cd;
    sincos(double(angle), &sd, &cd);
    trig[(size_t)r * 2 * half + i] = float(cd);
    trig[(size_t)r * 2 * half + half + i] = float(sd);
  }
}

// Rotates element i of head hh (query heads, then KV heads) of one token at `pos` (its qkv row
// src, its trig row); a query to q_row, a key and value into kv's cache, and with `bounds` the
// key into its Quest page's min/max (a new page starts them).
template <typename E>
__device__ inline void rope_element(const float* __restrict__ src, const float* __restrict__ trig, int i, int hh, int heads, int64_t pos,
                                    E* __restrict__ q_row, const PagedKv& kv, bool bounds) {
  const int kv_heads = kv.kv_heads, head_dim = kv.head_dim, page_size = kv.page_size, half = head_dim / 2;
  const float cs = trig[i], sn = trig[half + i];
  const float* head = src + hh * head_dim;
  const float a = head[i], b = head[i + half];
  const float ra = a * cs - b * sn, rb = b * cs + a * sn;
  if (hh < heads) {
    E* dst = q_row + (size_t)hh * head_dim;
    dst[i] = Cvt<E>::from(ra);
    dst[i + half] = Cvt<E>::from(rb);
    return;
  }
  E* k_cache = static_cast<E*>(const_cast<void*>(kv.k));
  E* v_cache = static_cast<E*>(const_cast<void*>(kv.v));
  const int g = hh - heads;
  const size_t slot = (((size_t)kv.page_table[pos / page_size] * kv_heads + g) * page_size + pos % page_size) * head_dim;
  const E ka = Cvt<E>::from(ra), kb = Cvt<E>::from(rb);
  k_cache[slot + i] = ka;
  k_cache[slot + i + half] = kb;
  if (bounds) {
    E* kmin = static_cast<E*>(const_cast<void*>(kv.kmin));
    E* kmax = static_cast<E*>(const_cast<void*>(kv.kmax));
    const bool first = pos % kv.meta_page == 0;
    const size_t ma = kv.bound_at(pos / kv.meta_page, g, i), mb = kv.bound_at(pos / kv.meta_page, g, i + half);
    kmin[ma] = first ? ka : Cvt<E>::min(kmin[ma], ka);
    kmax[ma] = first ? ka : Cvt<E>::max(kmax[ma], ka);
    kmin[mb] = first ? kb : Cvt<E>::min(kmin[mb], kb);
    kmax[mb] = first ? kb : Cvt<E>::max(kmax[mb], kb);
  }
  const float* v = head + (size_t)kv_heads * head_dim;  // v sits kv_heads heads after k
  v_cache[slot + i] = Cvt<E>::from(v[i]);
  v_cache[slot + i + half] = Cvt<E>::from(v[i + half]);
}

template <typename E>
__global__ void rope_store_kernel(const float* __restrict__ qkv, int rows, int heads, int64_t start, const float* __restrict__ trig,
                                  E* __restrict__ q_out, PagedKv kv) {
  const int half = kv.head_dim / 2, all_heads = heads + kv.kv_heads, stride = (heads + 2 * kv.kv_heads) * kv.head_dim;
  const size_t n = (size_t)rows * all_heads * half;
  wait_for_previous();
  // One row (a decode step) folds its key into the bounds, where the cache keeps them; a prefill recomputes them after.
  for (size_t idx = blockIdx.x * (size_t)blockDim.x + threadIdx.x; idx < n; idx += (size_t)gridDim.x * blockDim.x) {
    const int i = int(idx % half), hh = int(idx / half % all_heads), r = int(idx / half / all_heads);
    rope_element<E>(qkv + (size_t)r * stride, trig + (size_t)r * 2 * half, i, hh, heads, start + r, q_out + (size_t)r * heads * kv.head_dim, kv,
                    rows == 1 && kv.kmin);
  }
}

template <typename E>
__global__ void rope_lanes_kernel(const float* __restrict__ qkv, int heads, const __grid_constant__ RopeLanes lanes,
                                  const float* __restrict__ trig, E* __restrict__ q_out) {
  const PagedKv& shape = lanes.kv[0];
  const int half = shape.head_dim / 2, all_heads = heads + shape.kv_heads, stride = (heads + 2 * shape.kv_heads) * shape.head_dim;
  const size_t n = (size_t)lanes.rows * all_heads * half;
  wait_for_previous();
  for (size_t idx = blockIdx.x * (size_t)blockDim.x + threadIdx.x; idx < n; idx += (size_t)gridDim.x * blockDim.x) {
    const int i = int(idx % half), hh = int(idx / half % all_heads), r = int(idx / half / all_heads);
    rope_element<E>(qkv + (size_t)r * stride, trig + (size_t)r * 2 * half, i, hh, heads, lanes.pos[r], q_out + (size_t)r * heads * shape.head_dim,
                    lanes.kv[r], lanes.kv[r].kmin != nullptr);
  }
}

}  // namespace

void embed(const void* table, WeightType t, int dim, const int32_t* tokens, int rows, float* y, cudaStream_t s) {
  if (t == WeightType::F16)
    check(launch(embed_kernel<__half>, rows, 256, 0, s, static_cast<const __half*>(table), dim, tokens, y), "embedding");
  else
    check(launch(embed_kernel<__nv_bfloat16>, rows, 256, 0, s, static_cast<const __nv_bfloat16*>(table), dim, tokens, y), "embedding");
}

void rope_angles(int rows, int64_t start, const float* inv_freq, int half, float* trig, cudaStream_t s) {
  check(launch(rope_angles_kernel, blocks_for(size_t(rows) * half), 256, 0, s, rows, start, inv_freq, half, trig), "rope angles");
}

void rope_store_lanes(const float* qkv, int heads, const RopeLanes& lanes, const float* trig, void* q_out, cudaStream_t s) {
  const PagedKv& kv = lanes.kv[0];
  const size_t n = size_t(lanes.rows) * (heads + kv.kv_heads) * (kv.head_dim / 2);
  with_half_type(kv.type, [&](auto t) {
    using E = decltype(t);
    check(launch(rope_lanes_kernel<E>, blocks_for(n), 256, 0, s, qkv, heads, lanes, trig, static_cast<E*>(q_out)), "rope");
    return 0;
  });
}

void rope_store(const float* qkv, int rows, int heads, int64_t start, const float* trig, void* q_out, const PagedKv& kv, cudaStream_t s) {
  const size_t n = size_t(rows) * (heads + kv.kv_heads) * (kv.head_dim / 2);
  with_half_type(kv.type, [&](auto t) {
    using E = decltype(t);
    check(launch(rope_store_kernel<E>, blocks_for(n), 256, 0, s, qkv, rows, heads, start, trig, static_cast<E*>(q_out), kv), "rope");
    return 0;
  });
}

}  // namespace quest
