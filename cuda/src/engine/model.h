// A loaded model: its spec, fp32 weights and RoPE frequencies, shared by its sequences.
#pragma once
#include <memory>
#include <vector>

#include "engine/backend.h"
#include "engine/model_spec.h"

namespace quest {

struct LayerWeights {
  std::vector<float> in_norm, post_norm;
  std::vector<float> wq, wk, wv, wo, bq, bk, bv, bo;
  std::vector<float> w_gate, w_up, w_down, b_gate, b_up, b_down;
  Linear q, k, v, o, gate, up, down;
};

class Model {
 public:
  explicit Model(ModelSpec spec);
  const ModelSpec& spec() const { return spec_; }
  const LayerWeights& layer(int i) const { return *layers_[i]; }
  const float* embedding() const { return embed_.data(); }
  const float* final_norm() const { return norm_.data(); }
  const Linear& lm_head() const { return lm_head_; }
  const std::vector<float>& inv_freq() const { return inv_freq_; }
  size_t weight_bytes() const { return weight_bytes_; }

 private:
  ModelSpec spec_;
  std::vector<std::shared_ptr<LayerWeights>> layers_;
  std::vector<float> embed_, norm_, lm_head_w_;
  Linear lm_head_;
  std::vector<float> inv_freq_;
  size_t weight_bytes_ = 0;
};

// RoPE inverse frequencies for head_dim, with the config's scaling applied.
std::vector<float> rope_inv_freq(const RopeSpec& rope, int head_dim);

}  // namespace quest
