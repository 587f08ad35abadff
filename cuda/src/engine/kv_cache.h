// The paged KV cache: keys (after RoPE) and values per layer and KV head, in pages of
// `page_size` tokens reached through a page table, with each page's per-channel key
// minimum and maximum kept current as tokens are appended (Quest's page metadata).
// Pages are reference-counted: fork() gives a cache that shares every page with this one
// (one prefill serving several cells), and the first write to a shared page copies it.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

namespace quest {

// What a KV cache stores. Auto is each backend's own: fp32 on the CPU, fp16 on the GPU. The
// CPU cache keeps fp16 or bf16 as fp32 values rounded to that type (to the nearest, ties to
// even), as a GPU cache of that type holds them.
enum class KvDtype { Auto, F32, F16, BF16 };

// One page of every layer: keys and values [layer][kv head][slot][dim], bounds [layer][kv head][dim].
// `live` counts the pages of a cache and all its forks, for the memory statistics.
struct KvPage {
  KvPage(size_t values_per_page, size_t bounds_per_page, std::shared_ptr<std::atomic<int64_t>> live);
  KvPage(const KvPage& other);
  ~KvPage();
  std::vector<float> keys, values, mins, maxs;
  std::shared_ptr<std::atomic<int64_t>> live;
};

class PagedKvCache {
 public:
  PagedKvCache(int layers, int kv_heads, int head_dim, int page_size, KvDtype dtype = KvDtype::Auto);

  int page_size() const { return page_size_; }
  int kv_heads() const { return kv_heads_; }
  int head_dim() const { return head_dim_; }
  int64_t length() const { return length_; }
  int64_t pages() const { return static_cast<int64_t>(page_table_.size()); }
  // Bytes one stored value stands for.
  int element_bytes() const { return dtype_ == KvDtype::F16 || dtype_ == KvDtype::BF16 ? 2 : 4; }

  // A cache holding the same tokens that shares every page with this one; whichever writes
  // a shared page first (the last, partial one) writes its own copy.
  PagedKvCache fork() const;
  // Pages this cache reaches that no fork shares, and pages held by it and all its forks.
  int64_t own_pages() const;
  int64_t live_pages() const { return live_->load(); }
  // Bytes of one page (keys, values and bounds of every layer), as stored here (fp32).
  int64_t page_bytes() const { return int64_t(2 * per_page_ + 2 * per_bounds_) * int64_t(sizeof(float)); }

  // Makes room for tokens up to `new_length` (pages are added to the table as needed, and a
  // shared page that will be written is copied first).
  void reserve(int64_t new_length);
  // Writes K and V ([kv_heads][head_dim] each) of the token at `pos` in `layer` and
  // folds the key into its page's min/max. Positions must be appended in order per layer.
  void write(int layer, int64_t pos, const float* k, const float* v);
  // Marks tokens [0, new_length) as present once every layer has written them.
  void commit(int64_t new_length) { length_ = new_length; }

  const float* key(int layer, int kv_head, int64_t pos) const { return slot(page_table_[pos / page_size_]->keys, layer, kv_head, pos); }
  const float* value(int layer, int kv_head, int64_t pos) const { return slot(page_table_[pos / page_size_]->values, layer, kv_head, pos); }
  const float* page_min(int layer, int kv_head, int64_t page) const { return bound(page_table_[page]->mins, layer, kv_head); }
  const float* page_max(int layer, int kv_head, int64_t page) const { return bound(page_table_[page]->maxs, layer, kv_head); }

 private:
  const float* slot(const std::vector<float>& store, int layer, int kv_head, int64_t pos) const {
    return store.data() + ((int64_t(layer) * kv_heads_ + kv_head) * page_size_ + pos % page_size_) * head_dim_;
  }
  const float* bound(const std::vector<float>& store, int layer, int kv_head) const {
    return store.data() + (int64_t(layer) * kv_heads_ + kv_head) * head_dim_;
  }

  int layers_, kv_heads_, head_dim_, page_size_;
  KvDtype dtype_;
  size_t per_page_, per_bounds_;
  int64_t length_ = 0;
  std::vector<std::shared_ptr<KvPage>> page_table_;  // logical page -> its page, shared by forks
  std::shared_ptr<std::atomic<int64_t>> live_;       // pages alive in this cache's family
};

}  // namespace quest
