// Quest (Tang et al., 2024): score every full page by an upper bound of q.k over its keys,
// sum_i max(q_i * max_i, q_i * min_i), read the top pages plus the current one.
#include <algorithm>

#include "policy/quest.h"

#include "policy/policies.h"
#include "policy/rules.h"

namespace quest {

void quest_page_scores(const PagedKvCache& cache, int layer, int kv_head, const float* q, int h0, int h1, int64_t pages, float* out) {
  const int d = cache.head_dim();
  for (int64_t p = 0; p < pages; ++p) {
    const float* mn = cache.page_min(layer, kv_head, p);
    const float* mx = cache.page_max(layer, kv_head, p);
    float total = 0;
    for (int h = h0; h < h1; ++h) {
      const float* qh = q + int64_t(h) * d;
      for (int i = 0; i < d; ++i) total += std::max(qh[i] * mx[i], qh[i] * mn[i]);
    }
    out[p] = total;
  }
}

namespace {

const PolicyParam kGqa{"questGqa", PolicyParam::Choice, 0, 0, 0, {"group", "per-query-head"}, "mode",
                       "Quest under GQA: group (one page set per KV head) or per-query-head (the paper's rule)"};

}  // namespace

bool quest_per_query_head(const PolicyOptions& o) { return o.value(kGqa) == 1; }

namespace {

class QuestPolicy final : public Policy {
 public:
  QuestPolicy(const PolicyOptions& o, int kv_heads) : o_(o), kv_heads_(kv_heads), per_head_(quest_per_query_head(o)) {}

  void select(int layer, int64_t pos, const float* q, int heads, const PagedKvCache& cache, Selection& sel) override {
    const int P = o_.page_size, d = cache.head_dim(), group = heads / kv_heads_;
    const int64_t current = pos / P;             // the page holding the newest token
    const int64_t pages = rules::quest_pages(o_.budget, P);
    meta_bytes_ = 0;
    if (rules::quest_reads_all(o_.budget, P, pos)) {
      for (auto& s : sel) s.clear();
      return;
    }
    meta_bytes_ = double(current) * kv_heads_ * d * 2 * sizeof(float);
    // GQA: the group's query heads select together (scores summed) so B tokens are read per
    // KV head; per-query-head selection is the paper's MHA rule applied to each query head.
    sel.assign(per_head_ ? heads : kv_heads_, {});
    std::vector<float> score(current);
    for (size_t s = 0; s < sel.size(); ++s) {
      const int g = per_head_ ? int(s) / group : int(s);
      const int h0 = per_head_ ? int(s) : g * group;
      const int h1 = per_head_ ? h0 + 1 : h0 + group;
      quest_page_scores(cache, layer, g, q, h0, h1, current, score.data());
      auto& list = sel[s];
      const std::vector<int32_t> top = top_k_sorted(score, pages - 1);
      note_cut(layer, s, score, top, true);
      for (int32_t p : top) append_range(list, int64_t(p) * P, int64_t(p + 1) * P);
      append_range(list, current * P, pos + 1);
    }
  }

  double meta_bytes() const override { return meta_bytes_; }

 private:
  PolicyOptions o_;
  int kv_heads_;
  bool per_head_;
  double meta_bytes_ = 0;
};

const bool registered = register_policy({
    "quest", 1, "query-aware page selection (Tang et al., 2024)",
    {kGqa},
    "nothing", "page 16: one fused call over storage pages; other page sizes: token lists",
    [](const PolicyOptions& o, int, int kv_heads) -> std::unique_ptr<Policy> { return std::make_unique<QuestPolicy>(o, kv_heads); },
});

}  // namespace

}  // namespace quest
