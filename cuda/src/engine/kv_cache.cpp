#include "engine/kv_cache.h"

#include <algorithm>
#include <cstring>
#include <limits>

namespace quest {
namespace {

float round_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7f800000u) != 0x7f800000u) u += 0x7fffu + ((u >> 16) & 1u);  // inf and NaN stay
  u &= 0xffff0000u;
  std::memcpy(&f, &u, 4);
  return f;
}

float round_f16(float f) { return float(static_cast<_Float16>(f)); }

}  // namespace

PagedKvCache::PagedKvCache(int layers, int kv_heads, int head_dim, int page_size, KvDtype dtype)
    : layers_(layers), kv_heads_(kv_heads), head_dim_(head_dim), page_size_(page_size), dtype_(dtype),
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
  auto stored = [this](float x) { return dtype_ == KvDtype::F16 ? round_f16(x) : dtype_ == KvDtype::BF16 ? round_bf16(x) : x; };
  for (int h = 0; h < kv_heads_; ++h) {
    float* kd = const_cast<float*>(key(layer, h, pos));
    float* vd = const_cast<float*>(value(layer, h, pos));
    float* mn = const_cast<float*>(page_min(layer, h, pos / page_size_));
    float* mx = const_cast<float*>(page_max(layer, h, pos / page_size_));
    for (int d = 0; d < head_dim_; ++d) {
      kd[d] = stored(k[h * head_dim_ + d]);
      vd[d] = stored(v[h * head_dim_ + d]);
      mn[d] = std::min(mn[d], kd[d]);
      mx[d] = std::max(mx[d], kd[d]);
    }
  }
}

}  // namespace quest
