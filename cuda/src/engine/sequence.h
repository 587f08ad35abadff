// One sequence being decoded: its KV cache, its policy, and what it has read so far.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "engine/kv_cache.h"
#include "engine/model.h"
#include "policy/policy.h"

namespace quest {

struct SequenceStats {
  int64_t prefill_tokens = 0, decode_steps = 0;
  double prefill_ms = 0, decode_ms = 0, select_ms = 0;
  // Summed over decode steps and the layers the policy governs; divide by policy_samples
  // (steps x governed layers x KV heads) for the mean tokens read per KV head.
  double tokens_read = 0;
  int64_t policy_samples = 0;
  double kv_bytes_read = 0, meta_bytes_read = 0;  // summed over decode steps, all layers
};

class Sequence {
 public:
  Sequence(std::shared_ptr<const Model> model, const PolicyOptions& opts, Backend& backend);
  // The dense prefill of `n` tokens; returns the logits of the last one, or of all when asked.
  std::vector<float> prefill(const int32_t* tokens, int64_t n, bool all_logits);
  // Feeds tokens one decode step at a time under the policy; returns the last one's logits.
  std::vector<float> feed(const int32_t* tokens, int64_t n);
  // For each token: its negative log-likelihood under the current logits, then one decode
  // step that feeds it (a perplexity evaluation under the policy).
  std::vector<double> nll(const int32_t* tokens, int64_t n);
  // Greedy decoding from the current logits until a stop token or `max_new` tokens.
  std::vector<int32_t> generate(int max_new, const std::vector<int32_t>& stop);
  int64_t length() const { return cache_.length(); }
  const SequenceStats& stats() const { return stats_; }

 private:
  // Runs `n` tokens through the model; `decode` means one token under the policy.
  void forward(const int32_t* tokens, int64_t n, bool decode, bool all_logits, std::vector<float>& logits);
  void check_room(int64_t n) const;

  std::shared_ptr<const Model> model_;
  PolicyOptions opts_;
  Backend& be_;
  PagedKvCache cache_;
  std::unique_ptr<Policy> policy_;
  std::vector<float> last_logits_;
  int64_t prompt_end_ = 0;  // one past the last prefilled position
  SequenceStats stats_;
};

}  // namespace quest
