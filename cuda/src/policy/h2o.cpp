// H2O (Zhang et al., 2023): every cached token's accumulated attention (from every prefill
// query and every decode step), summed over the query heads of its KV head. Each step keeps
// the most recent share of B plus the heaviest of the rest; an evicted token never returns.
// Eviction happens before the step attends, so a step reads exactly B tokens.
#include "policy/h2o.h"

#include "policy/policies.h"
#include "policy/rules.h"

namespace quest {
namespace {

const PolicyParam kHeavyFraction{"h2oHeavyFraction", PolicyParam::Number, 0.5, 0, 1, {}, "",
                                 "H2O: share of the budget kept by accumulated attention (the rest is recent)"};

}  // namespace

double h2o_heavy_fraction(const PolicyOptions& o) { return o.value(kHeavyFraction); }

namespace {

class H2oPolicy final : public Policy {
 public:
  H2oPolicy(const PolicyOptions& o, int layers, int kv_heads)
      : o_(o), heavy_fraction_(h2o_heavy_fraction(o)), score_(layers, std::vector<std::vector<float>>(kv_heads)), kept_(layers, std::vector<std::vector<int32_t>>(kv_heads)),
        started_(layers, false) {}

  void request_prefill(int64_t, AttentionScores& s) override { s.want_sums = true; }
  void request_decode(AttentionScores& s) override { s.want_sums = true; }

  void observe_prefill(int layer, const AttentionScores& s) override { accumulate(layer, s); }
  void observe_decode(int layer, const AttentionScores& s) override { accumulate(layer, s); }

  void select(int layer, int64_t pos, const float*, int, const PagedKvCache&, Selection& sel) override {
    const int64_t heavy_n = rules::h2o_heavy(o_.budget, heavy_fraction_);
    const int64_t recent_n = o_.budget - heavy_n;
    bool all = true;
    for (size_t g = 0; g < kept_[layer].size(); ++g) {
      auto& kept = kept_[layer][g];
      if (!started_[layer]) append_range(kept, 0, pos);  // the prefill kept everything
      kept.push_back(int32_t(pos));
      if (int64_t(kept.size()) > o_.budget) {
        // The recent window is the newest recent_n kept tokens; the heavy set the best of the rest.
        const int64_t older = int64_t(kept.size()) - recent_n;
        const auto& sc = score_[layer][g];
        std::vector<float> s(older);
        for (int64_t i = 0; i < older; ++i) s[i] = size_t(kept[i]) < sc.size() ? sc[kept[i]] : 0.0f;
        const std::vector<int32_t> heavy = top_k_sorted(s, heavy_n);
        note_cut(layer, g, s, heavy);
        std::vector<int32_t> next;
        for (int32_t i : heavy) next.push_back(kept[i]);
        next.insert(next.end(), kept.begin() + older, kept.end());
        kept.swap(next);
      }
      all = all && int64_t(kept.size()) == pos + 1;
      sel[g] = kept;
    }
    started_[layer] = true;
    if (all)
      for (auto& s : sel) s.clear();
  }

 private:
  void accumulate(int layer, const AttentionScores& s) {
    for (size_t g = 0; g < s.sums.size(); ++g) {
      auto& dst = score_[layer][g];
      if (dst.size() < s.sums[g].size()) dst.resize(s.sums[g].size(), 0.0f);
      for (size_t j = 0; j < s.sums[g].size(); ++j) dst[j] += s.sums[g][j];
    }
  }

  PolicyOptions o_;
  double heavy_fraction_;
  std::vector<std::vector<std::vector<float>>> score_;   // [layer][kv head][position]
  std::vector<std::vector<std::vector<int32_t>>> kept_;  // [layer][kv head] sorted positions
  std::vector<bool> started_;
};

const bool registered = register_policy({
    "h2o", 2, "heavy hitters by accumulated attention plus a recent window (Zhang et al., 2023)",
    {kHeavyFraction},
    "the column sums of every prompt row's attention", "token lists on the device",
    [](const PolicyOptions& o, int layers, int kv_heads) -> std::unique_ptr<Policy> { return std::make_unique<H2oPolicy>(o, layers, kv_heads); },
});

}  // namespace

}  // namespace quest
