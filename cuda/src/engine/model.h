// A loaded model: its spec, fp32 weights and RoPE frequencies, shared by its sequences.
#pragma once
#include <memory>
#include <vector>

#include "engine/backend.h"
#include "engine/int4.h"
#include "engine/model_spec.h"

namespace quest {

struct LayerWeights {
  std::vector<float> in_norm, post_norm;
  std::vector<float> q_norm, k_norm;  // Qwen3, Gemma 3: RMSNorm over each head's dimensions, before RoPE
  std::vector<float> pre_ff_norm, post_ff_norm;  // Gemma: post_norm then normalises the attention's output
  std::vector<float> wq, wk, wv, wo, bq, bk, bv, bo;
  std::vector<float> w_gate, w_up, w_down, b_gate, b_up, b_down;
  Linear q, k, v, o, gate, up, down;
  // 4-bit layers as packed, kept for the GPU (whose model is built without the fp32 copies above).
  PackedLinear pq, pk, pv, po, p_gate, p_up, p_down;
};

class Model {
 public:
  // host_linears false (the GPU's source): 4-bit layers stay packed, without fp32 copies.
  explicit Model(ModelSpec spec, bool host_linears = true);
  const ModelSpec& spec() const { return spec_; }
  const LayerWeights& layer(int i) const { return *layers_[i]; }
  const float* embedding() const { return embed_.data(); }
  const float* final_norm() const { return norm_.data(); }
  const Linear& lm_head() const { return lm_head_; }
  // The table at load: what a forward pass uses unless the rope type depends on the length.
  const std::vector<float>& inv_freq() const { return inv_freq_; }
  // The table for a forward call whose positions end at seq_len - 1 (longrope switches
  // factors past the original length, dynamic NTK rescales past it; others: inv_freq()).
  std::vector<float> inv_freq_at(int64_t seq_len) const;
  // Gemma 3's sliding layers rotate with their own table (and attention factor).
  const std::vector<float>& inv_freq_local() const { return inv_freq_local_; }
  float attention_factor_local() const { return float(spec_.rope_local.attention_factor); }
  // yarn, longrope: the factor cos and sin are multiplied by (1 otherwise).
  float attention_factor() const { return float(spec_.rope.attention_factor); }
  size_t weight_bytes() const { return weight_bytes_; }

 private:
  ModelSpec spec_;
  std::vector<std::shared_ptr<LayerWeights>> layers_;
  std::vector<float> embed_, norm_, lm_head_w_;
  Linear lm_head_;
  std::vector<float> inv_freq_, inv_freq_local_;
  size_t weight_bytes_ = 0;
};

// RoPE inverse frequencies for head_dim, with the config's scaling applied.
// seq_len picks longrope's factors and dynamic NTK's base (as transformers' dynamic_rope_update).
std::vector<float> rope_inv_freq(const RopeSpec& rope, int head_dim, int64_t seq_len = 0);

}  // namespace quest
