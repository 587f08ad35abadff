// SnapKV (Li et al., 2024): at the end of the prefill, the attention that the last `window`
// prompt tokens pay to each earlier token (summed over the window and over the query heads
// of a KV head), max-pooled with `kernel`, picks B - window earlier tokens; those plus the
// window are kept. No later eviction: tokens decoded afterwards are all read.
#include <algorithm>

#include "policy/snapkv.h"

#include "policy/policies.h"
#include "policy/rules.h"

namespace quest {
namespace {

// SnapKV (Li et al., 2024): a 32-token observation window, max pooling with kernel 7; its
// code's constructor defaults differ (kernel 5, average pooling), so both are settings.
const PolicyParam kWindow{"snapkvWindow", PolicyParam::Int, 32, 1, kUnbounded, {}, "", "SnapKV: observation window (last prompt tokens)", true};
const PolicyParam kKernel{"snapkvKernel", PolicyParam::Int, 7, 1, kUnbounded, {}, "", "SnapKV: max-pooling kernel"};

}  // namespace

int snapkv_window(const PolicyOptions& o) { return int(o.value(kWindow)); }
int snapkv_kernel(const PolicyOptions& o) { return int(o.value(kKernel)); }

namespace {

class SnapKvPolicy final : public Policy {
 public:
  SnapKvPolicy(const PolicyOptions& o, int layers, int kv_heads)
      : o_(o), window_len_(snapkv_window(o)), kernel_(snapkv_kernel(o)), window_(layers, std::vector<std::vector<float>>(kv_heads)),
        kept_(layers, std::vector<std::vector<int32_t>>(kv_heads)),
        started_(layers, false) {}

  void request_prefill(int64_t prompt_end, AttentionScores& s) override {
    prompt_end_ = prompt_end;
    s.window_from = std::max<int64_t>(0, prompt_end - window_len_);
  }

  void observe_prefill(int layer, const AttentionScores& s) override {
    for (size_t g = 0; g < s.window.size(); ++g) {
      auto& dst = window_[layer][g];
      if (dst.size() < s.window[g].size()) dst.resize(s.window[g].size(), 0.0f);
      for (size_t j = 0; j < s.window[g].size(); ++j) dst[j] += s.window[g][j];
    }
  }

  void select(int layer, int64_t pos, const float*, int, const PagedKvCache&, Selection& sel) override {
    if (!started_[layer]) {
      started_[layer] = true;
      compress(layer);
    }
    if (compressed_.empty() || !compressed_[layer]) {
      for (auto& s : sel) s.clear();
      return;
    }
    for (size_t g = 0; g < sel.size(); ++g) {
      sel[g] = kept_[layer][g];
      append_range(sel[g], prompt_end_, pos + 1);
    }
  }

 private:
  void compress(int layer) {
    if (compressed_.empty()) compressed_.assign(window_.size(), false);
    if (!rules::snapkv_compresses(o_.budget, prompt_end_)) return;  // the prompt fits: nothing to drop
    const int64_t prefix = prompt_end_ - window_len_, half = kernel_ / 2;
    for (size_t g = 0; g < kept_[layer].size(); ++g) {
      const auto& w = window_[layer][g];
      std::vector<float> pooled(prefix, 0.0f);
      for (int64_t j = 0; j < prefix; ++j) {
        float m = -1.0f;
        for (int64_t t = std::max<int64_t>(0, j - half); t <= std::min(prefix - 1, j + half); ++t)
          m = std::max(m, size_t(t) < w.size() ? w[t] : 0.0f);
        pooled[j] = m;
      }
      auto& kept = kept_[layer][g];
      kept = top_k_sorted(pooled, rules::snapkv_chosen(o_.budget, window_len_));
      note_cut(layer, g, pooled, kept);
      append_range(kept, prefix, prompt_end_);
    }
    compressed_[layer] = true;
  }

  PolicyOptions o_;
  int window_len_, kernel_;
  int64_t prompt_end_ = 0;
  std::vector<std::vector<std::vector<float>>> window_;  // [layer][kv head][position]
  std::vector<std::vector<std::vector<int32_t>>> kept_;  // the prompt tokens kept
  std::vector<bool> started_, compressed_;
};

const bool registered = register_policy({
    "snapkv", 5, "keeps the prompt tokens its last window attends to most (Li et al., 2024)",
    {kWindow, kKernel},
    "the column sums of the window rows' attention", "token lists on the device",
    [](const PolicyOptions& o, int layers, int kv_heads) -> std::unique_ptr<Policy> { return std::make_unique<SnapKvPolicy>(o, layers, kv_heads); },
});

}  // namespace

}  // namespace quest
