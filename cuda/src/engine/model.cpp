#include "engine/model.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "engine/weights.h"

namespace quest {

// base ** (arange(0, dim, 2).float() / dim) in fp32, as transformers forms it.
static std::vector<float> rope_powers(double base, int head_dim) {
  std::vector<float> p(head_dim / 2);
  for (int i = 0; i < head_dim / 2; ++i)
    p[i] = std::pow(static_cast<float>(base), static_cast<float>(2 * i) / static_cast<float>(head_dim));
  return p;
}

// transformers' _compute_yarn_parameters (modeling_rope_utils.py, 5.x), in its fp32 steps.
static std::vector<float> yarn_inv_freq(const RopeSpec& rope, int dim) {
  const double pi = 3.14159265358979323846;
  auto correction_dim = [&](double rotations) {
    return dim * std::log(rope.original_max_position / (rotations * 2 * pi)) / (2 * std::log(rope.theta));
  };
  double low = correction_dim(rope.beta_fast), high = correction_dim(rope.beta_slow);
  if (rope.truncate) {
    low = std::floor(low);
    high = std::ceil(high);
  }
  low = std::max(low, 0.0);
  high = std::min(high, double(dim - 1));
  if (low == high) high += 0.001;  // transformers: prevents a division by zero
  const std::vector<float> p = rope_powers(rope.theta, dim);
  std::vector<float> f(dim / 2);
  for (int i = 0; i < dim / 2; ++i) {
    float ramp = std::clamp((static_cast<float>(i) - static_cast<float>(low)) / static_cast<float>(high - low), 0.0f, 1.0f);
    float extrapolation = 1.0f - ramp;
    float interpolated = 1.0f / (static_cast<float>(rope.factor) * p[i]);
    f[i] = interpolated * (1.0f - extrapolation) + (1.0f / p[i]) * extrapolation;
  }
  return f;
}

std::vector<float> rope_inv_freq(const RopeSpec& rope, int head_dim, int64_t seq_len) {
  const double pi = 3.14159265358979323846;
  if (rope.type == "yarn") return yarn_inv_freq(rope, head_dim);
  if (rope.type == "longrope") {
    // transformers' longrope_frequency_update: the long factors once positions pass the original length.
    const auto& ext = seq_len > int64_t(rope.original_max_position) ? rope.long_factor : rope.short_factor;
    std::vector<float> f = rope_powers(rope.theta, head_dim);
    for (int i = 0; i < head_dim / 2; ++i) f[i] = 1.0f / (static_cast<float>(ext[i]) * f[i]);
    return f;
  }
  double base = rope.theta;
  if (rope.type == "dynamic") {
    // transformers' _compute_dynamic_ntk_parameters, with seq_len at least max_position_embeddings.
    double len = std::max(double(seq_len), rope.original_max_position);
    base *= std::pow(rope.factor * len / rope.original_max_position - (rope.factor - 1), double(head_dim) / (head_dim - 2));
  }
  std::vector<float> f = rope_powers(base, head_dim);
  for (auto& x : f) x = 1.0f / x;
  if (rope.type == "default" || rope.type == "dynamic") return f;
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

std::vector<float> Model::inv_freq_at(int64_t seq_len) const {
  if (spec_.rope.type != "longrope" && spec_.rope.type != "dynamic") return inv_freq_;
  return rope_inv_freq(spec_.rope, spec_.head_dim, seq_len);
}

// Rows [from, from + count) of a [rows][cols] matrix: a part of a fused projection.
static std::vector<float> rows_of(const std::vector<float>& m, int64_t from, int64_t count, int64_t cols) {
  return std::vector<float>(m.begin() + from * cols, m.begin() + (from + count) * cols);
}

static void bind(Linear& lin, const std::vector<float>& w, const std::vector<float>& b, int in, int out) {
  lin.w = w.data();
  lin.b = b.empty() ? nullptr : b.data();
  lin.in = in;
  lin.out = out;
}

Model::Model(ModelSpec spec, bool host_linears) : spec_(std::move(spec)) {
  const ModelSpec& s = spec_;
  if (s.hidden <= 0 || s.layers <= 0 || s.heads <= 0 || s.kv_heads <= 0 || s.head_dim <= 0 || s.vocab <= 0 ||
      s.intermediate <= 0)
    throw std::runtime_error("model dimensions must be positive");
  if (s.heads % s.kv_heads != 0) throw std::runtime_error("num_attention_heads must be a multiple of num_key_value_heads");
  if (s.head_dim % 2 != 0) throw std::runtime_error("head_dim must be even for RoPE");
  if (std::string why = unserved(s, "cpu"); !why.empty()) throw std::runtime_error("the CPU backend does not serve this model: " + why);
  if (s.rope.type == "longrope" &&
      (int(s.rope.short_factor.size()) != s.head_dim / 2 || int(s.rope.long_factor.size()) != s.head_dim / 2))
    throw std::runtime_error("longrope needs head_dim/2 short and long factors");
  if (!s.sliding_layers.empty() && int(s.sliding_layers.size()) != s.layers)
    throw std::runtime_error("sliding_layers must list every layer");
  WeightReader rd(s);
  const int64_t H = s.hidden, qd = int64_t(s.heads) * s.head_dim, kvd = int64_t(s.kv_heads) * s.head_dim,
                I = s.intermediate;
  // Gemma's RMSNorm multiplies by (1 + w): folded into the weight once, in fp32 as transformers adds.
  auto norm = [&](const std::string& name, int64_t dim) {
    std::vector<float> w = rd.read(name, {dim});
    if (s.gemma())
      for (auto& x : w) x = 1.0f + x;
    return w;
  };
  // A linear layer's weight [out][in]: as stored, or packed 4-bit (kept packed for the GPU,
  // dequantized exactly for the CPU).
  auto linear = [&](const std::string& name, int64_t out, int64_t in, PackedLinear& packed) {
    PackedLinear p = rd.read_packed(name, out, in);
    if (p.qweight.empty()) return rd.read(name + ".weight", {out, in});
    std::vector<float> w = host_linears ? dequantize(s.quant, p) : std::vector<float>();
    if (!host_linears) packed = std::move(p);
    return w;
  };
  PackedLinear fused;  // Phi-3's packed fused projections are served on the CPU only (served.cpp)
  embed_ = rd.read("model.embed_tokens.weight", {s.vocab, H});
  norm_ = norm("model.norm.weight", H);
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
    L->in_norm = norm(p + "input_layernorm.weight", H);
    L->post_norm = norm(p + "post_attention_layernorm.weight", H);
    if (s.gemma()) {
      L->pre_ff_norm = norm(p + "pre_feedforward_layernorm.weight", H);
      L->post_ff_norm = norm(p + "post_feedforward_layernorm.weight", H);
    }
    if (s.arch == "phi3") {  // Phi-3 fuses q, k, v (in that order) and gate, up
      std::vector<float> qkv = linear(p + "self_attn.qkv_proj", qd + 2 * kvd, H, fused);
      L->wq = rows_of(qkv, 0, qd, H);
      L->wk = rows_of(qkv, qd, kvd, H);
      L->wv = rows_of(qkv, qd + kvd, kvd, H);
    } else {
      L->wq = linear(p + "self_attn.q_proj", qd, H, L->pq);
      L->wk = linear(p + "self_attn.k_proj", kvd, H, L->pk);
      L->wv = linear(p + "self_attn.v_proj", kvd, H, L->pv);
    }
    if (s.arch == "qwen3" || s.arch == "gemma3") {
      L->q_norm = norm(p + "self_attn.q_norm.weight", s.head_dim);
      L->k_norm = norm(p + "self_attn.k_norm.weight", s.head_dim);
    }
    L->wo = linear(p + "self_attn.o_proj", H, qd, L->po);
    if (s.attention_bias) {
      L->bq = rd.read(p + "self_attn.q_proj.bias", {qd});
      L->bk = rd.read(p + "self_attn.k_proj.bias", {kvd});
      L->bv = rd.read(p + "self_attn.v_proj.bias", {kvd});
    }
    if (s.o_bias) L->bo = rd.read(p + "self_attn.o_proj.bias", {H});
    if (s.arch == "phi3") {
      std::vector<float> gate_up = linear(p + "mlp.gate_up_proj", 2 * I, H, fused);
      L->w_gate = rows_of(gate_up, 0, I, H);
      L->w_up = rows_of(gate_up, I, I, H);
    } else {
      L->w_gate = linear(p + "mlp.gate_proj", I, H, L->p_gate);
      L->w_up = linear(p + "mlp.up_proj", I, H, L->p_up);
    }
    L->w_down = linear(p + "mlp.down_proj", H, I, L->p_down);
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
    for (auto* v : {&L->in_norm, &L->post_norm, &L->q_norm, &L->k_norm, &L->pre_ff_norm, &L->post_ff_norm, &L->wq, &L->wk, &L->wv, &L->wo, &L->bq, &L->bk, &L->bv, &L->bo,
                    &L->w_gate, &L->w_up, &L->w_down, &L->b_gate, &L->b_up, &L->b_down})
      n += v->size();
    layer_bytes = n * sizeof(float);
    weight_bytes_ += layer_bytes;
    layers_.push_back(std::move(L));
  }
  // After the weights: their shapes have then confirmed head_dim, which sizes this table.
  inv_freq_ = rope_inv_freq(s.rope, s.head_dim);
  if (s.has_local_rope) inv_freq_local_ = rope_inv_freq(s.rope_local, s.head_dim);
}

}  // namespace quest
