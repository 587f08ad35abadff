#include <algorithm>

#include "gpu/kv_pool.cuh"

namespace quest {

void KvPool::reserve(int64_t pages, cudaStream_t stream) {
  const int64_t old = capacity();
  if (pages <= old) return;
  auto regrow = [&](DeviceBuffer<uint16_t>& b) {
    DeviceBuffer<uint16_t> fresh(size_t(pages) * per_page_);
    // The new pages zeroed: the wgmma prefill copies whole pages, and the slots past a
    // sequence's end, though masked, meet P = 0 in P V, where a NaN left in memory would spread.
    check(cudaMemsetAsync(fresh.ptr + size_t(old) * per_page_, 0, size_t(pages - old) * per_page_ * sizeof(uint16_t), stream), "cache zero");
    if (old > 0) check(cudaMemcpyAsync(fresh.ptr, b.ptr, size_t(old) * per_page_ * sizeof(uint16_t), cudaMemcpyDeviceToDevice, stream), "cache copy");
    check(cudaStreamSynchronize(stream), "cache copy");
    b = std::move(fresh);
  };
  for (size_t l = 0; l < k_.size(); ++l) {
    regrow(k_[l]);
    regrow(v_[l]);
  }
  refs_.resize(size_t(pages), 0);
  // Taken from the back: the new pages in ascending order, as a lone sequence's table was.
  for (int64_t p = pages - 1; p >= old; --p) free_.push_back(int(p));
}

std::vector<int> KvPool::take(int64_t n, cudaStream_t stream) {
  reserve(capacity() + shortfall(n), stream);
  std::vector<int> pages(size_t(std::max<int64_t>(n, 0)));
  for (int& p : pages) {
    p = free_.back();
    free_.pop_back();
    refs_[p] = 1;
  }
  return pages;
}

void KvPool::release(int page) {
  if (--refs_[page] == 0) free_.push_back(page);
}

void KvPool::copy(int from, int to, cudaStream_t stream) {
  const size_t bytes = per_page_ * sizeof(uint16_t);
  for (size_t l = 0; l < k_.size(); ++l) {
    check(cudaMemcpyAsync(k_[l].ptr + size_t(to) * per_page_, k_[l].ptr + size_t(from) * per_page_, bytes, cudaMemcpyDeviceToDevice, stream), "page copy");
    check(cudaMemcpyAsync(v_[l].ptr + size_t(to) * per_page_, v_[l].ptr + size_t(from) * per_page_, bytes, cudaMemcpyDeviceToDevice, stream), "page copy");
  }
}

}  // namespace quest
