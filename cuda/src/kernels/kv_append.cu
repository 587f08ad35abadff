#include <algorithm>
#include <cstdint>

#include "kernels/kv_append.cuh"
#include "kernels/launch.cuh"

namespace quest {
namespace {

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

}  // namespace

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

}  // namespace quest
