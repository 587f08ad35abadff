// Runs one policy over one attention layer on given keys, values and queries, with the CPU
// backend's real attention: a dense causal prefill, then decode steps under the policy. Tests
// compare what it selected with brute-force references, free of a model's other layers.
#pragma once
#include <vector>

#include "engine/backend.h"
#include "policy/policy.h"

namespace quest {

struct OneLayerInput {
  PolicyOptions opts;
  int heads = 0, kv_heads = 0, head_dim = 0;
  int64_t prompt_len = 0, steps = 0;
  // [prompt_len + steps][kv_heads][head_dim] and [prompt_len + steps][heads][head_dim]
  std::vector<float> keys, values, queries;
};

struct OneLayerStep {
  Selection sel;                             // empty lists mean "all"
  std::vector<std::vector<float>> probs;     // [kv head][position]: the step's attention, summed over the group
  double meta_bytes = 0;
  std::vector<float> margins;                // per list: the margin at the cut that decided it (Policy::take_margins)
  std::vector<float> l2, recall;             // per KV head, with opts.diagnostics: attention_diagnostics of the step
};

struct OneLayerRun {
  AttentionScores prefill;  // what the prefill reported to the policy
  std::vector<OneLayerStep> steps;
  std::vector<float> page_min, page_max;  // [page][kv head][dim] after the last step
};

OneLayerRun run_one_layer(const OneLayerInput& in);

}  // namespace quest
