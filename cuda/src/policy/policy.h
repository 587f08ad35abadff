// A KV-cache policy decides, at each decode step, layer and KV head, which cached
// positions attention reads. The dense prefill and layers below `dense_layers` always read
// everything; a policy only sees the layers it governs.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/kv_cache.h"

namespace quest {

struct PolicyOptions {
  std::string name = "dense";
  int64_t budget = 0;  // tokens read per KV head per layer per step, everything included
  int page_size = 16;
  int dense_layers = 2;
};

class Policy {
 public:
  virtual ~Policy() = default;
  // True when the policy needs attention probabilities (prefill column sums and decode).
  virtual bool wants_scores() const { return false; }
  // The prefill's column sums of attention probabilities for `layer` ([kv_head][position]).
  virtual void observe_prefill(int /*layer*/, const AttentionScores& /*scores*/) {}
  // Fills `sel` (one sorted list per KV head) for the query at `pos` ([heads][head_dim], after
  // RoPE); the token at `pos` is already in the cache. Leaves a list empty to read everything.
  virtual void select(int layer, int64_t pos, const float* q, int heads, const PagedKvCache& cache, Selection& sel) = 0;
  // The attention probabilities the step produced over what it read.
  virtual void observe_decode(int /*layer*/, const Selection& /*sel*/, const AttentionScores& /*scores*/) {}
};

std::unique_ptr<Policy> make_policy(const PolicyOptions& opts, int layers, int kv_heads);

}  // namespace quest
