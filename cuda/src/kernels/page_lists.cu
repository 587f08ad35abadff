#include <algorithm>

#include "kernels/launch.cuh"
#include "kernels/page_lists.cuh"
#include "kernels/quest_select.cuh"
#include "kernels/reduce.cuh"

namespace quest {
namespace {

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

}  // namespace

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

cudaError_t fill_dense_lists(int kv_heads, int pages, int* indptr, int* indices, cudaStream_t stream) {
  const int blocks = std::min((kv_heads * pages + 255) / 256, 1024);
  return launch(dense_lists_kernel, std::max(blocks, 1), 256, 0, stream, kv_heads, pages, indptr, indices);
}

}  // namespace quest
