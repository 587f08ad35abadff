// SnapKV (Li et al., 2024): at the end of the prefill, the attention that the last `window`
// prompt tokens pay to each earlier token (summed over the window and over the query heads
// of a KV head), max-pooled with `kernel`, picks B - window earlier tokens; those plus the
// window are kept. Tokens decoded afterwards are all read, unless `interval` is set: then
// every `interval` decode tokens the same rule re-selects over what is read, from the
// attention the last `window` decode queries paid to the tokens they read (R-KV's baseline
// recompresses every 128), and what it drops never returns.
#include <algorithm>
#include <deque>

#include "policy/snapkv.h"

#include "policy/policies.h"
#include "policy/rules.h"

namespace quest {
namespace {

// SnapKV (Li et al., 2024): a 32-token observation window, max pooling with kernel 7; its
// code's constructor defaults differ (kernel 5, average pooling), so both are settings.
const PolicyParam kWindow{"snapkvWindow", PolicyParam::Int, 32, 1, kUnbounded, {}, "", "SnapKV: observation window (last prompt tokens)", true};
const PolicyParam kKernel{"snapkvKernel", PolicyParam::Int, 7, 1, kUnbounded, {}, "", "SnapKV: max-pooling kernel"};
PolicyParam interval_param() {
  PolicyParam p{"snapkvInterval", PolicyParam::Int, 0, 0, kUnbounded, {}, "", "SnapKV: re-select every n decode tokens from the last window's attention (0: keep the prefill's choice)"};
  p.gpu_refuses_other = "SnapKV's re-selection during decode runs on the CPU backend only";
  return p;
}
const PolicyParam kInterval = interval_param();

}  // namespace

int snapkv_window(const PolicyOptions& o) { return int(o.value(kWindow)); }
int snapkv_kernel(const PolicyOptions& o) { return int(o.value(kKernel)); }

namespace {

class SnapKvPolicy final : public Policy {
 public:
  SnapKvPolicy(const PolicyOptions& o, int layers, int kv_heads)
      : o_(o), window_len_(snapkv_window(o)), kernel_(snapkv_kernel(o)), interval_(int64_t(o.value(kInterval))),
        window_(layers, std::vector<std::vector<float>>(kv_heads)), kept_(layers, std::vector<std::vector<int32_t>>(kv_heads)),
        history_(layers, std::vector<std::deque<StepSums>>(kv_heads)), tail_(layers, 0), since_(layers, 0), started_(layers, false) {}

  void request_decode(AttentionScores& s) override { s.want_sums = interval_ > 0; }

  // With an interval: the last `window` steps' attention, each over the positions it read.
  void observe_decode(int layer, const AttentionScores& s) override {
    if (interval_ == 0) return;
    for (size_t g = 0; g < s.sums.size(); ++g) {
      auto& h = history_[layer][g];
      StepSums step;
      for (size_t j = 0; j < s.sums[g].size(); ++j)
        if (s.sums[g][j] != 0.0f) {
          step.at.push_back(int32_t(j));
          step.value.push_back(s.sums[g][j]);
        }
      h.push_back(std::move(step));
      if (int64_t(h.size()) > window_len_) h.pop_front();
    }
    since_[layer]++;
  }

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
      tail_[layer] = prompt_end_;
      compress(layer);
    }
    if (interval_ > 0 && since_[layer] == interval_) reselect(layer, pos);
    if (compressed_.empty() || !compressed_[layer]) {
      for (auto& s : sel) s.clear();
      return;
    }
    for (size_t g = 0; g < sel.size(); ++g) {
      sel[g] = kept_[layer][g];
      append_range(sel[g], tail_[layer], pos + 1);
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

  // The step at `pos` comes after `interval` decode steps: the tokens the previous steps read
  // (but the last window's own, kept) are ranked by the window's attention, max-pooled over
  // neighbours in cache order; B - window stay.
  void reselect(int layer, int64_t pos) {
    since_[layer] = 0;
    const int64_t from = std::max<int64_t>(0, pos - window_len_);
    for (size_t g = 0; g < kept_[layer].size(); ++g) {
      std::vector<int32_t> read = compressed_[layer] ? kept_[layer][g] : std::vector<int32_t>{};
      append_range(read, compressed_[layer] ? tail_[layer] : 0, pos);
      std::vector<int32_t> cand, recent;  // the window's own tokens (those still cached) stay
      for (int32_t t : read) (t < from ? cand : recent).push_back(t);
      const int64_t keep = rules::snapkv_chosen(o_.budget, window_len_);
      if (int64_t(cand.size()) <= keep) return;  // everything still fits: nothing to drop
      // Each position's attention over the window's steps, added in step order.
      std::vector<float> by_position(pos, 0.0f);
      for (const StepSums& step : history_[layer][g])
        for (size_t k = 0; k < step.at.size(); ++k)
          if (step.at[k] < pos) by_position[step.at[k]] += step.value[k];
      std::vector<float> score(cand.size()), pooled(cand.size());
      for (size_t i = 0; i < cand.size(); ++i) score[i] = by_position[cand[i]];
      const int64_t n = int64_t(cand.size()), half = kernel_ / 2;
      for (int64_t j = 0; j < n; ++j) {
        float m = -1.0f;
        for (int64_t t = std::max<int64_t>(0, j - half); t <= std::min(n - 1, j + half); ++t) m = std::max(m, score[t]);
        pooled[j] = m;
      }
      const std::vector<int32_t> top = top_k_sorted(pooled, keep);
      note_cut(layer, g, pooled, top);
      auto& kept = kept_[layer][g];
      kept.clear();
      for (int32_t i : top) kept.push_back(cand[i]);
      kept.insert(kept.end(), recent.begin(), recent.end());
    }
    compressed_[layer] = true;
    tail_[layer] = pos;
  }

  PolicyOptions o_;
  int window_len_, kernel_;
  int64_t interval_;
  int64_t prompt_end_ = 0;
  std::vector<std::vector<std::vector<float>>> window_;  // [layer][kv head][position]
  std::vector<std::vector<std::vector<int32_t>>> kept_;  // the tokens kept before the tail
  // A decode step's attention summed over a KV head's query heads, where it is not zero: a
  // step reads B + t positions of the cache, so dense copies would hold window x cache floats.
  struct StepSums {
    std::vector<int32_t> at;
    std::vector<float> value;
  };
  std::vector<std::vector<std::deque<StepSums>>> history_;  // [layer][kv head]: the last window decode steps' attention
  std::vector<int64_t> tail_;   // [layer]: from here every token is read
  std::vector<int64_t> since_;  // [layer]: decode steps since the last selection
  std::vector<bool> started_, compressed_;
};

const bool registered = register_policy({
    "snapkv", 5, "keeps the prompt tokens its last window attends to most (Li et al., 2024)",
    {kWindow, kKernel, kInterval},
    "the column sums of the window rows' attention", "token lists on the device",
    [](const PolicyOptions& o, int layers, int kv_heads) -> std::unique_ptr<Policy> { return std::make_unique<SnapKvPolicy>(o, layers, kv_heads); },
});

}  // namespace

}  // namespace quest
