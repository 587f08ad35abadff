#include "engine/kv_cache.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <utility>

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

KvPage::KvPage(size_t values_per_page, size_t bounds_per_page, std::shared_ptr<std::atomic<int64_t>> live_pages)
    : keys(values_per_page), values(values_per_page), mins(bounds_per_page, std::numeric_limits<float>::infinity()),
      maxs(bounds_per_page, -std::numeric_limits<float>::infinity()), live(std::move(live_pages)) {
  ++*live;
}

KvPage::KvPage(const KvPage& other)
    : keys(other.keys), values(other.values), mins(other.mins), maxs(other.maxs), live(other.live) {
  ++*live;
}

KvPage::~KvPage() { --*live; }

PagedKvCache::PagedKvCache(int layers, int kv_heads, int head_dim, int page_size, KvDtype dtype)
    : layers_(layers), kv_heads_(kv_heads), head_dim_(head_dim), page_size_(page_size), dtype_(dtype),
      per_page_(size_t(layers) * kv_heads * page_size * head_dim), per_bounds_(size_t(layers) * kv_heads * head_dim),
      live_(std::make_shared<std::atomic<int64_t>>(0)) {}

PagedKvCache PagedKvCache::fork() const { return *this; }

int64_t PagedKvCache::own_pages() const {
  int64_t n = 0;
  for (const auto& p : page_table_) n += p.use_count() == 1;
  return n;
}

void PagedKvCache::reserve(int64_t new_length) {
  const int64_t need = (new_length + page_size_ - 1) / page_size_;
  // Only the page holding position length_ can be both shared and written: earlier pages are full.
  for (int64_t p = length_ / page_size_; p < std::min(need, pages()); ++p)
    if (page_table_[p].use_count() > 1) page_table_[p] = std::make_shared<KvPage>(*page_table_[p]);
  while (pages() < need) page_table_.push_back(std::make_shared<KvPage>(per_page_, per_bounds_, live_));
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
