// The paged KV cache: keys (after RoPE) and values per layer and KV head, in pages of
// `page_size` tokens reached through a page table, with each page's per-channel key
// minimum and maximum kept current as tokens are appended (Quest's page metadata).
#pragma once
#include <cstdint>
#include <vector>

namespace quest {

// What a KV cache stores. Auto is each backend's own: fp32 on the CPU, fp16 on the GPU. The
// CPU cache keeps fp16 or bf16 as fp32 values rounded to that type (to the nearest, ties to
// even), as a GPU cache of that type holds them.
enum class KvDtype { Auto, F32, F16, BF16 };

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

  // Makes room for tokens up to `new_length` (pages are added to the table as needed).
  void reserve(int64_t new_length);
  // Writes K and V ([kv_heads][head_dim] each) of the token at `pos` in `layer` and
  // folds the key into its page's min/max. Positions must be appended in order per layer.
  void write(int layer, int64_t pos, const float* k, const float* v);
  // Marks tokens [0, new_length) as present once every layer has written them.
  void commit(int64_t new_length) { length_ = new_length; }

  const float* key(int layer, int kv_head, int64_t pos) const { return slot(keys_, layer, kv_head, pos); }
  const float* value(int layer, int kv_head, int64_t pos) const { return slot(values_, layer, kv_head, pos); }
  const float* page_min(int layer, int kv_head, int64_t page) const { return meta(mins_, layer, kv_head, page); }
  const float* page_max(int layer, int kv_head, int64_t page) const { return meta(maxs_, layer, kv_head, page); }

 private:
  const float* slot(const std::vector<std::vector<float>>& store, int layer, int kv_head, int64_t pos) const {
    int64_t phys = page_table_[pos / page_size_];
    return store[layer].data() + ((phys * kv_heads_ + kv_head) * page_size_ + pos % page_size_) * head_dim_;
  }
  const float* meta(const std::vector<std::vector<float>>& store, int layer, int kv_head, int64_t page) const {
    return store[layer].data() + (page_table_[page] * kv_heads_ + kv_head) * head_dim_;
  }

  int layers_, kv_heads_, head_dim_, page_size_;
  KvDtype dtype_;
  int64_t length_ = 0;
  int64_t physical_pages_ = 0;
  std::vector<int64_t> page_table_;                // logical page -> physical page
  std::vector<std::vector<float>> keys_, values_;  // [layer][phys page][kv head][slot][dim]
  std::vector<std::vector<float>> mins_, maxs_;    // [layer][phys page][kv head][dim]
};

}  // namespace quest
