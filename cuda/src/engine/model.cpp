#include "engine/model.h"

#include <cmath>
#include <stdexcept>
#include <string>

#include "engine/weights.h"

namespace quest {

std::vector<float> rope_inv_freq(const RopeSpec& rope, int head_dim) {
  const double pi = 3.14159265358979323846;
  std::vector<float> f(head_dim / 2);
  for (int i = 0; i < head_dim / 2; ++i) {
    // transformers: 1 / base ** (arange(0, dim, 2).float() / dim), all in fp32
    float expo = static_cast<float>(2 * i) / static_cast<float>(head_dim);
    f[i] = 1.0f / std::pow(static_cast<float>(rope.theta), expo);
  }
  if (rope.type == "default") return f;
  if (rope.type == "linear") {
    for (auto& x : f) x = static_cast<float>(x / rope.factor);
    return f;
  }
  if (rope.type == "llama3") {
    // transformers' _compute_llama3_parameters (modeling_rope_utils.py)
    double low_wavelen = rope.original_max_position / rope.low_freq_factor;
    double high_wavelen = rope.original_max_position / rope.high_freq_factor;
    for (auto& x : f) {
      double wavelen = 2 * pi / x;
      if (wavelen > low_wavelen) {
        x = static_cast<float>(x / rope.factor);
      } else if (wavelen >= high_wavelen) {
        double smooth = (rope.original_max_position / wavelen - rope.low_freq_factor) /
                        (rope.high_freq_factor - rope.low_freq_factor);
        x = static_cast<float>((1 - smooth) * x / rope.factor + smooth * x);
      }
    }
    return f;
  }
  throw std::runtime_error("unsupported rope_type '" + rope.type + "'");
}

static void bind(Linear& lin, const std::vector<float>& w, const std::vector<float>& b, int in, int out) {
  lin.w = w.data();
  lin.b = b.empty() ? nullptr : b.data();
  lin.in = in;
  lin.out = out;
}

Model::Model(ModelSpec spec) : spec_(std::move(spec)) {
  const ModelSpec& s = spec_;
  if (s.hidden <= 0 || s.layers <= 0 || s.heads <= 0 || s.kv_heads <= 0 || s.head_dim <= 0 || s.vocab <= 0 ||
      s.intermediate <= 0)
    throw std::runtime_error("model dimensions must be positive");
  if (s.heads % s.kv_heads != 0) throw std::runtime_error("num_attention_heads must be a multiple of num_key_value_heads");
  if (s.head_dim % 2 != 0) throw std::runtime_error("head_dim must be even for RoPE");
  WeightReader rd(s);
  const int64_t H = s.hidden, qd = int64_t(s.heads) * s.head_dim, kvd = int64_t(s.kv_heads) * s.head_dim,
                I = s.intermediate;
  embed_ = rd.read("model.embed_tokens.weight", {s.vocab, H});
  norm_ = rd.read("model.norm.weight", {H});
  if (!s.tie_embeddings) lm_head_w_ = rd.read("lm_head.weight", {s.vocab, H});
  bind(lm_head_, s.tie_embeddings ? embed_ : lm_head_w_, {}, int(H), s.vocab);
  weight_bytes_ = (embed_.size() + norm_.size() + lm_head_w_.size()) * sizeof(float);

  size_t layer_bytes = 0;
  for (int l = 0; l < s.layers; ++l) {
    // Random-weight presets share one layer's tensors across all layers: a 7B-shaped model
    // then fits in host memory, and each layer still streams its full weights per token.
    if (s.random_weights && l > 0) {
      layers_.push_back(layers_[0]);
      weight_bytes_ += layer_bytes;
      continue;
    }
    auto L = std::make_shared<LayerWeights>();
    std::string p = "model.layers." + std::to_string(l) + ".";
    L->in_norm = rd.read(p + "input_layernorm.weight", {H});
    L->post_norm = rd.read(p + "post_attention_layernorm.weight", {H});
    L->wq = rd.read(p + "self_attn.q_proj.weight", {qd, H});
    L->wk = rd.read(p + "self_attn.k_proj.weight", {kvd, H});
    L->wv = rd.read(p + "self_attn.v_proj.weight", {kvd, H});
    L->wo = rd.read(p + "self_attn.o_proj.weight", {H, qd});
    if (s.attention_bias) {
      L->bq = rd.read(p + "self_attn.q_proj.bias", {qd});
      L->bk = rd.read(p + "self_attn.k_proj.bias", {kvd});
      L->bv = rd.read(p + "self_attn.v_proj.bias", {kvd});
    }
    if (s.o_bias) L->bo = rd.read(p + "self_attn.o_proj.bias", {H});
    L->w_gate = rd.read(p + "mlp.gate_proj.weight", {I, H});
    L->w_up = rd.read(p + "mlp.up_proj.weight", {I, H});
    L->w_down = rd.read(p + "mlp.down_proj.weight", {H, I});
    if (s.mlp_bias) {
      L->b_gate = rd.read(p + "mlp.gate_proj.bias", {I});
      L->b_up = rd.read(p + "mlp.up_proj.bias", {I});
      L->b_down = rd.read(p + "mlp.down_proj.bias", {H});
    }
    bind(L->q, L->wq, L->bq, int(H), int(qd));
    bind(L->k, L->wk, L->bk, int(H), int(kvd));
    bind(L->v, L->wv, L->bv, int(H), int(kvd));
    bind(L->o, L->wo, L->bo, int(qd), int(H));
    bind(L->gate, L->w_gate, L->b_gate, int(H), int(I));
    bind(L->up, L->w_up, L->b_up, int(H), int(I));
    bind(L->down, L->w_down, L->b_down, int(I), int(H));
    size_t n = 0;
    for (auto* v : {&L->in_norm, &L->post_norm, &L->wq, &L->wk, &L->wv, &L->wo, &L->bq, &L->bk, &L->bv, &L->bo,
                    &L->w_gate, &L->w_up, &L->w_down, &L->b_gate, &L->b_up, &L->b_down})
      n += v->size();
    layer_bytes = n * sizeof(float);
    weight_bytes_ += layer_bytes;
    layers_.push_back(std::move(L));
  }
  // After the weights: their shapes have then confirmed head_dim, which sizes this table.
  inv_freq_ = rope_inv_freq(s.rope, s.head_dim);
}

}  // namespace quest
