#include "engine/cpu_sequence.h"

#include <algorithm>
#include <cmath>
#include <utility>

namespace quest {

CpuSequence::CpuSequence(std::shared_ptr<const Model> model, const PolicyOptions& opts, Backend& backend)
    : Decoder(model->spec(), opts.record_selections), model_(std::move(model)), opts_(opts), be_(backend),
      cache_(model_->spec().layers, model_->spec().kv_heads, model_->spec().head_dim, opts.page_size, opts.kv_dtype),
      policy_(make_policy(opts, model_->spec().layers, model_->spec().kv_heads)) {
  if (record_) policy_->record_margins(model_->spec().layers);
}

void CpuSequence::forward(const int32_t* tokens, int64_t n64, bool decode, bool all_logits, std::vector<float>& logits) {
  const ModelSpec& s = model_->spec();
  const int n = int(n64), H = s.hidden, qd = s.heads * s.head_dim, kvd = s.kv_heads * s.head_dim;
  const int64_t start = cache_.length();
  cache_.reserve(start + n);
  std::vector<int64_t> pos(n);
  for (int i = 0; i < n; ++i) pos[i] = start + i;

  std::vector<float> x(size_t(n) * H), h(size_t(n) * H), q(size_t(n) * qd), k(size_t(n) * kvd), v(size_t(n) * kvd),
      att(size_t(n) * qd), g(size_t(n) * s.intermediate), u(size_t(n) * s.intermediate);
  be_.embed(model_->embedding(), H, tokens, n, x.data());
  // Gemma scales the embedding by sqrt(hidden), a buffer in the weights' dtype (fp32 here).
  if (s.gemma()) be_.scale(x.data(), int64_t(n) * H, static_cast<float>(std::sqrt(double(H))));

  Selection sel(s.kv_heads);
  AttentionScores scores;
  if (decode)
    policy_->request_decode(scores);
  else
    policy_->request_prefill(prompt_end_, scores);
  const size_t elem = cache_.element_bytes();
  // A prefill's positions all rotate with the table of its whole length, as transformers'
  // single call does; a decode step's with its own.
  const std::vector<float> inv_freq = model_->inv_freq_at(decode ? pos[0] + 1 : prompt_end_);
  AttendOptions how;
  if (s.query_pre_attn_scalar > 0) how.scale = static_cast<float>(std::pow(s.query_pre_attn_scalar, -0.5));
  how.softcap = float(s.attn_softcap);
  for (int l = 0; l < s.layers; ++l) {
    const LayerWeights& L = model_->layer(l);
    be_.rmsnorm(x.data(), n, H, L.in_norm.data(), float(s.rms_eps), h.data());
    be_.matmul(h.data(), n, L.q, q.data());
    be_.matmul(h.data(), n, L.k, k.data());
    be_.matmul(h.data(), n, L.v, v.data());
    if (!L.q_norm.empty()) {  // Qwen3: per-head RMSNorm of q and k before RoPE
      be_.rmsnorm(q.data(), n * s.heads, s.head_dim, L.q_norm.data(), float(s.rms_eps), q.data());
      be_.rmsnorm(k.data(), n * s.kv_heads, s.head_dim, L.k_norm.data(), float(s.rms_eps), k.data());
    }
    const bool local_rope = s.has_local_rope && s.sliding(l);
    const float* freq = local_rope ? model_->inv_freq_local().data() : inv_freq.data();
    const float factor = local_rope ? model_->attention_factor_local() : model_->attention_factor();
    be_.rope(q.data(), n, s.heads, s.head_dim, pos.data(), freq, factor);
    be_.rope(k.data(), n, s.kv_heads, s.head_dim, pos.data(), freq, factor);
    for (int i = 0; i < n; ++i) cache_.write(l, pos[i], k.data() + size_t(i) * kvd, v.data() + size_t(i) * kvd);

    // A policy governs full-attention layers; a sliding-window layer reads its window, counted
    // in the bytes but not in the budget.
    const int64_t window = how.window = s.sliding(l) ? s.sliding_window : 0;
    const bool governed = l >= opts_.dense_layers && !window;
    if (decode && governed) {
      const Stopwatch t;
      sel.assign(s.kv_heads, {});
      policy_->select(l, pos[0], q.data(), s.heads, cache_, sel);
      stats_.select_ms += t.ms();
      stats_.meta_bytes_read += policy_->meta_bytes();
      for (int kh = 0; kh < s.kv_heads; ++kh) {
        int64_t read = tokens_served(sel, kh, s.kv_heads, s.heads / s.kv_heads, pos[0] + 1);
        stats_.tokens_read += double(read);
        stats_.kv_bytes_read += double(read) * s.head_dim * 2 * elem;
      }
      stats_.policy_samples += s.kv_heads;
      if (record_) record_layer(sel, policy_->take_margins(l, sel.size()), pos[0]);
    } else if (decode) {
      const int64_t seen = window ? std::min<int64_t>(window, pos[0] + 1) : pos[0] + 1;
      stats_.kv_bytes_read += double(seen) * kvd * 2 * elem;
    }
    const bool observe = governed && scores.wanted();
    be_.attend(cache_, l, q.data(), n, s.heads, pos.data(), decode && governed ? &sel : nullptr, att.data(),
               observe ? &scores : nullptr, how);
    if (observe) {
      if (decode)
        policy_->observe_decode(l, scores);
      else
        policy_->observe_prefill(l, scores);
    }
    be_.matmul(att.data(), n, L.o, h.data());
    // Gemma normalises each block's output before the residual add, and the MLP's input with
    // its own pre-norm; the others' post-attention norm is the MLP's input norm.
    const bool gemma = s.gemma();
    if (gemma) be_.rmsnorm(h.data(), n, H, L.post_norm.data(), float(s.rms_eps), h.data());
    be_.add(x.data(), h.data(), int64_t(n) * H);

    be_.rmsnorm(x.data(), n, H, gemma ? L.pre_ff_norm.data() : L.post_norm.data(), float(s.rms_eps), h.data());
    be_.matmul(h.data(), n, L.gate, g.data());
    be_.matmul(h.data(), n, L.up, u.data());
    if (gemma)
      be_.geglu(g.data(), u.data(), int64_t(n) * s.intermediate, g.data());
    else
      be_.swiglu(g.data(), u.data(), int64_t(n) * s.intermediate, g.data());
    be_.matmul(g.data(), n, L.down, h.data());
    if (gemma) be_.rmsnorm(h.data(), n, H, L.post_ff_norm.data(), float(s.rms_eps), h.data());
    be_.add(x.data(), h.data(), int64_t(n) * H);
  }
  cache_.commit(start + n);

  // Only the rows whose logits are wanted go through the final norm and the LM head.
  const int rows = all_logits ? n : 1;
  const float* last = x.data() + size_t(n - rows) * H;
  be_.rmsnorm(last, rows, H, model_->final_norm(), float(s.rms_eps), h.data());
  logits.resize(size_t(rows) * s.vocab);
  be_.matmul(h.data(), rows, model_->lm_head(), logits.data());
  if (s.final_softcap > 0) be_.softcap(logits.data(), int64_t(rows) * s.vocab, float(s.final_softcap));
}

}  // namespace quest
