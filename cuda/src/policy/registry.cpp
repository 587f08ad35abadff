#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

#include "policy/policies.h"

namespace quest {

std::vector<int32_t> top_k_sorted(const std::vector<float>& scores, int64_t k) {
  std::vector<int32_t> idx(scores.size());
  std::iota(idx.begin(), idx.end(), 0);
  k = std::min<int64_t>(k, int64_t(idx.size()));
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int32_t a, int32_t b) {
    return scores[a] > scores[b] || (scores[a] == scores[b] && a < b);
  });
  idx.resize(k);
  std::sort(idx.begin(), idx.end());
  return idx;
}

void append_range(std::vector<int32_t>& out, int64_t lo, int64_t hi) {
  for (int64_t t = lo; t < hi; ++t) out.push_back(int32_t(t));
}

int64_t tokens_served(const Selection& sel, int kv_head, int kv_heads, int group, int64_t all) {
  if (int(sel.size()) == kv_heads) return sel[kv_head].empty() ? all : int64_t(sel[kv_head].size());
  std::vector<int32_t> u;
  for (int h = kv_head * group; h < (kv_head + 1) * group; ++h) {
    if (sel[h].empty()) return all;
    u.insert(u.end(), sel[h].begin(), sel[h].end());
  }
  std::sort(u.begin(), u.end());
  return int64_t(std::unique(u.begin(), u.end()) - u.begin());
}

std::vector<float> Policy::take_margins(int layer, size_t lists) {
  std::vector<float> out(lists, INFINITY);
  auto& noted = margins_[layer];
  std::copy_n(noted.begin(), std::min(lists, noted.size()), out.begin());
  noted.clear();
  return out;
}

void Policy::note_cut(int layer, size_t list, const std::vector<float>& scores, const std::vector<int32_t>& taken, bool signed_scores) {
  if (!recording()) return;
  double least = INFINITY, best_left = -INFINITY, largest = 0;
  size_t j = 0;
  for (size_t i = 0; i < scores.size(); ++i) {
    if (j < taken.size() && size_t(taken[j]) == i) {
      least = std::min(least, double(scores[i]));
      ++j;
    } else {
      best_left = std::max(best_left, double(scores[i]));
    }
    largest = std::max(largest, std::fabs(double(scores[i])));
  }
  double margin = INFINITY;  // nothing taken or nothing left out: no choice was made
  if (!taken.empty() && best_left > -INFINITY) {
    const double gap = least - best_left, scale = signed_scores ? largest : std::fabs(least);
    margin = scale > 0 ? gap / scale : (gap > 0 ? INFINITY : 0);
  }
  auto& noted = margins_[layer];
  if (noted.size() <= list) noted.resize(list + 1, INFINITY);
  noted[list] = float(margin);
}

namespace {

class DensePolicy final : public Policy {
 public:
  void select(int, int64_t, const float*, int, const PagedKvCache&, Selection& sel) override {
    for (auto& s : sel) s.clear();
  }
};

}  // namespace

void validate_policy(const PolicyOptions& o) {
  static const char* known[] = {"dense", "quest", "streaming", "h2o", "tova", "snapkv", "oracle-topk"};
  if (std::find(std::begin(known), std::end(known), o.name) == std::end(known))
    throw std::runtime_error("unknown policy '" + o.name + "'");
  if (o.page_size <= 0 || (o.page_size & (o.page_size - 1)) != 0) throw std::runtime_error("page size must be a power of two");
  if (o.dense_layers < 0) throw std::runtime_error("dense layers must be >= 0");
  if (o.name == "dense") return;
  if (o.budget <= 0) throw std::runtime_error("budget must be a positive integer");
  if (o.budget < o.page_size) throw std::runtime_error("budget " + std::to_string(o.budget) + " is smaller than a page (" + std::to_string(o.page_size) + ")");
  if (o.name == "streaming" && o.budget <= o.streaming_sinks)
    throw std::runtime_error("streaming needs a budget above its " + std::to_string(o.streaming_sinks) + " sink tokens");
  if (o.name == "snapkv" && o.budget <= o.snapkv_window)
    throw std::runtime_error("snapkv needs a budget above its " + std::to_string(o.snapkv_window) + "-token window");
  if (o.name == "h2o" && (o.h2o_heavy_fraction < 0 || o.h2o_heavy_fraction > 1))
    throw std::runtime_error("h2o heavy fraction must be in [0, 1]");
}

std::unique_ptr<Policy> make_policy(const PolicyOptions& o, int layers, int kv_heads) {
  validate_policy(o);
  if (o.name == "dense") return std::make_unique<DensePolicy>();
  if (o.name == "quest") return make_quest(o, kv_heads);
  if (o.name == "streaming") return make_streaming(o);
  if (o.name == "h2o") return make_h2o(o, layers, kv_heads);
  if (o.name == "tova") return make_tova(o, layers, kv_heads);
  if (o.name == "snapkv") return make_snapkv(o, layers, kv_heads);
  return make_oracle(o, kv_heads);
}

}  // namespace quest
