// Oracle top-k: at each step the B tokens that receive the most attention probability from
// the query heads of each KV head (computed exactly over the whole cache). An upper bound
// for any token selector at budget B; it reads every key to choose, so it is for studies.
#include <algorithm>
#include <cmath>

#include "policy/policies.h"
#include "policy/rules.h"

namespace quest {
namespace {

class OraclePolicy final : public Policy {
 public:
  OraclePolicy(const PolicyOptions& o, int kv_heads) : o_(o), kv_heads_(kv_heads) {}

  void select(int layer, int64_t pos, const float* q, int heads, const PagedKvCache& cache, Selection& sel) override {
    if (rules::budget_covers(o_.budget, pos)) {
      for (auto& s : sel) s.clear();
      return;
    }
    const int d = cache.head_dim(), group = heads / kv_heads_;
    const float scale = o_.attend.scale_for(d), cap = o_.attend.softcap;
    std::vector<float> mass(pos + 1), logit(pos + 1);
    for (int g = 0; g < kv_heads_; ++g) {
      std::fill(mass.begin(), mass.end(), 0.0f);
      for (int h = g * group; h < (g + 1) * group; ++h) {
        const float* qh = q + int64_t(h) * d;
        float mx = -INFINITY, sum = 0;
        for (int64_t t = 0; t <= pos; ++t) {
          const float* k = cache.key(layer, g, t);
          float s = 0;
          for (int i = 0; i < d; ++i) s += qh[i] * k[i];
          logit[t] = attention_score(s, scale, cap);
          mx = std::max(mx, logit[t]);
        }
        for (int64_t t = 0; t <= pos; ++t) sum += (logit[t] = std::exp(logit[t] - mx));
        for (int64_t t = 0; t <= pos; ++t) mass[t] += logit[t] / sum;
      }
      sel[g] = top_k_sorted(mass, o_.budget);
      note_cut(layer, g, mass, sel[g]);
    }
  }

 private:
  PolicyOptions o_;
  int kv_heads_;
};

const bool registered = register_policy({
    "oracle-topk", 6, "the B tokens of most attention, computed exactly (an upper bound, for studies)", {},
    "nothing", "token lists on the device, after an attention over the whole cache",
    [](const PolicyOptions& o, int, int kv_heads) -> std::unique_ptr<Policy> { return std::make_unique<OraclePolicy>(o, kv_heads); },
});

}  // namespace

}  // namespace quest
