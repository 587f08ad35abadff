#include "engine/kv_cache.h"

#include <algorithm>
#include <cstring>
#include <limits>

namespace quest {

PagedKvCache::PagedKvCache(int layers, int kv_heads, int head_dim, int page_size)
    : layers_(layers), kv_heads_(kv_heads), head_dim_(head_dim), page_size_(page_size),
      keys_(layers), values_(layers), mins_(layers), maxs_(layers) {}

void PagedKvCache::reserve(int64_t new_length) {
  int64_t need = (new_length + page_size_ - 1) / page_size_;
  if (need <= pages()) return;
  // Grow the physical pool geometrically so a long feed does not reallocate per page.
  if (need > physical_pages_) {
    int64_t grown = std::max<int64_t>(need, physical_pages_ * 3 / 2 + 4);
    size_t per_page = static_cast<size_t>(kv_heads_) * page_size_ * head_dim_;
    size_t per_meta = static_cast<size_t>(kv_heads_) * head_dim_;
    for (int l = 0; l < layers_; ++l) {
      keys_[l].resize(grown * per_page);
      values_[l].resize(grown * per_page);
      mins_[l].resize(grown * per_meta, std::numeric_limits<float>::infinity());
      maxs_[l].resize(grown * per_meta, -std::numeric_limits<float>::infinity());
    }
    physical_pages_ = grown;
  }
  while (pages() < need) page_table_.push_back(pages());
}

void PagedKvCache::write(int layer, int64_t pos, const float* k, const float* v) {
  for (int h = 0; h < kv_heads_; ++h) {
    std::memcpy(const_cast<float*>(key(layer, h, pos)), k + h * head_dim_, head_dim_ * sizeof(float));
    std::memcpy(const_cast<float*>(value(layer, h, pos)), v + h * head_dim_, head_dim_ * sizeof(float));
    float* mn = const_cast<float*>(page_min(layer, h, pos / page_size_));
    float* mx = const_cast<float*>(page_max(layer, h, pos / page_size_));
    const float* kh = k + h * head_dim_;
    for (int d = 0; d < head_dim_; ++d) {
      mn[d] = std::min(mn[d], kh[d]);
      mx[d] = std::max(mx[d], kh[d]);
    }
  }
}

}  // namespace quest
