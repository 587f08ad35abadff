// TOVA (Oren et al., 2024): after each step, evict the cached token the current query
// attended to least (averaged over the query heads of its KV head), permanently. A step
// reads the B - 1 kept tokens plus the new one: B in all. After the prefill the kept set is
// chosen by the last prompt token's attention, as TOVA does for a prompt over the limit.
#include "policy/policies.h"
#include "policy/rules.h"

namespace quest {
namespace {

class TovaPolicy final : public Policy {
 public:
  TovaPolicy(const PolicyOptions& o, int layers, int kv_heads)
      : o_(o), last_(layers, std::vector<std::vector<float>>(kv_heads)), kept_(layers, std::vector<std::vector<int32_t>>(kv_heads)),
        read_(kept_), started_(layers, false) {}

  void request_prefill(int64_t, AttentionScores& s) override { s.want_last = true; }
  void request_decode(AttentionScores& s) override { s.want_sums = true; }

  // Chunked prefills report each chunk's last row; the final chunk's is the prompt's last.
  void observe_prefill(int layer, const AttentionScores& s) override {
    for (size_t g = 0; g < s.last.size(); ++g) last_[layer][g] = s.last[g];
  }

  void select(int layer, int64_t pos, const float*, int, const PagedKvCache&, Selection& sel) override {
    const int64_t keep = rules::tova_kept(o_.budget);
    bool all = true;
    for (size_t g = 0; g < kept_[layer].size(); ++g) {
      auto& kept = kept_[layer][g];
      if (!started_[layer]) {
        if (pos <= keep) {
          append_range(kept, 0, pos);
        } else {
          std::vector<float> s(pos, 0.0f);
          for (int64_t t = 0; t < pos && size_t(t) < last_[layer][g].size(); ++t) s[t] = last_[layer][g][t];
          kept = top_k_sorted(s, keep);
          note_cut(layer, g, s, kept);
        }
      }
      auto& read = read_[layer][g];
      read = kept;
      read.push_back(int32_t(pos));
      all = all && int64_t(read.size()) == pos + 1;
      sel[g] = read;
    }
    started_[layer] = true;
    if (all)
      for (auto& s : sel) s.clear();
  }

  void observe_decode(int layer, const AttentionScores& s) override {
    const int64_t keep = rules::tova_kept(o_.budget);
    for (size_t g = 0; g < kept_[layer].size(); ++g) {
      auto& read = read_[layer][g];
      auto& kept = kept_[layer][g];
      kept = read;
      if (int64_t(kept.size()) <= keep) continue;
      // Evict the least attended (the older one on a tie).
      size_t worst = 0;
      for (size_t i = 1; i < read.size(); ++i)
        if (s.sums[g][read[i]] < s.sums[g][read[worst]]) worst = i;
      kept.erase(kept.begin() + worst);
      if (recording()) {
        std::vector<float> score(read.size());
        std::vector<int32_t> stays;
        for (size_t i = 0; i < read.size(); ++i) {
          score[i] = s.sums[g][read[i]];
          if (i != worst) stays.push_back(int32_t(i));
        }
        note_cut(layer, g, score, stays);
      }
    }
  }

 private:
  PolicyOptions o_;
  std::vector<std::vector<std::vector<float>>> last_;    // [layer][kv head][position]
  std::vector<std::vector<std::vector<int32_t>>> kept_;  // kept after the last step
  std::vector<std::vector<std::vector<int32_t>>> read_;  // read by the current step
  std::vector<bool> started_;
};

const bool registered = register_policy({
    "tova", 4, "evicts the token the current query attends to least (Oren et al., 2024)", {},
    "the last prompt row's attention", "token lists on the device",
    [](const PolicyOptions& o, int layers, int kv_heads) -> std::unique_ptr<Policy> { return std::make_unique<TovaPolicy>(o, layers, kv_heads); },
});

}  // namespace

}  // namespace quest
