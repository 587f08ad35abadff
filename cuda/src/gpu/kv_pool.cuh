// The K/V storage pages of a family of GPU sequences (a prefill and the cells forked from
// it, issue #20): per layer, K and V of `capacity` physical pages of kGpuPage tokens, each
// page counted by the page tables that reach it. A page no table reaches is free again.
// Growing reallocates (pages keep their numbers); a family member holds `mutex` over a whole
// forward pass, so no sibling's kernels read the old buffers then.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <mutex>
#include <vector>

#include "kernels/cuda_util.cuh"

namespace quest {

class KvPool {
 public:
  // `values_per_page`: one layer's K (or V) values of one page, in 16-bit elements.
  KvPool(int layers, size_t values_per_page) : k_(layers), v_(layers), per_page_(values_per_page) {}
  int64_t capacity() const { return int64_t(refs_.size()); }
  // Physical pages some table reaches.
  int64_t live() const { return capacity() - int64_t(free_.size()); }
  // Bytes of one page: K and V of every layer.
  size_t page_bytes() const { return 2 * k_.size() * per_page_ * sizeof(uint16_t); }
  // Bytes of one layer's K (or V) now: growing copies one such buffer at a time.
  size_t layer_bytes() const { return size_t(capacity()) * per_page_ * sizeof(uint16_t); }
  // Pages to add so that `n` can be taken: the growth take(n) would make.
  int64_t shortfall(int64_t n) const { return std::max<int64_t>(0, n - int64_t(free_.size())); }
  // Grows to hold `pages` pages in all (contents kept, copied on `stream`, which it waits for).
  void reserve(int64_t pages, cudaStream_t stream);
  // `n` free pages, each now held once (growing by the shortfall first).
  std::vector<int> take(int64_t n, cudaStream_t stream);
  void share(int page) { ++refs_[page]; }
  void release(int page);
  int refs(int page) const { return refs_[page]; }
  // Copies page `from` to page `to` in every layer (K and V), on `stream`.
  void copy(int from, int to, cudaStream_t stream);
  const void* k(int layer) const { return k_[layer].ptr; }
  const void* v(int layer) const { return v_[layer].ptr; }

  std::mutex mutex;

 private:
  std::vector<DeviceBuffer<uint16_t>> k_, v_;  // per layer, [physical page][kv head][slot][dim]
  size_t per_page_;
  std::vector<int> refs_;   // per physical page: the tables that reach it
  std::vector<int> free_;   // pages no table reaches, taken last-freed first
};

}  // namespace quest
