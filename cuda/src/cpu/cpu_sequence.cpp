#include "cpu/cpu_sequence.h"

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

  Selection sel(s.kv_heads);
  AttentionScores scores;
  if (decode)
    policy_->request_decode(scores);
  else
    policy_->request_prefill(prompt_end_, scores);
  const size_t elem = cache_.element_bytes();
  for (int l = 0; l < s.layers; ++l) {
    const LayerWeights& L = model_->layer(l);
    be_.rmsnorm(x.data(), n, H, L.in_norm.data(), float(s.rms_eps), h.data());
    be_.matmul(h.data(), n, L.q, q.data());
    be_.matmul(h.data(), n, L.k, k.data());
    be_.matmul(h.data(), n, L.v, v.data());
    be_.rope(q.data(), n, s.heads, s.head_dim, pos.data(), model_->inv_freq().data());
    be_.rope(k.data(), n, s.kv_heads, s.head_dim, pos.data(), model_->inv_freq().data());
    for (int i = 0; i < n; ++i) cache_.write(l, pos[i], k.data() + size_t(i) * kvd, v.data() + size_t(i) * kvd);

    const bool governed = l >= opts_.dense_layers;
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
      stats_.kv_bytes_read += double(pos[0] + 1) * kvd * 2 * elem;
    }
    const bool observe = governed && scores.wanted();
    be_.attend(cache_, l, q.data(), n, s.heads, pos.data(), decode && governed ? &sel : nullptr, att.data(),
               observe ? &scores : nullptr);
    if (observe) {
      if (decode)
        policy_->observe_decode(l, scores);
      else
        policy_->observe_prefill(l, scores);
    }
    be_.matmul(att.data(), n, L.o, h.data());
    be_.add(x.data(), h.data(), int64_t(n) * H);

    be_.rmsnorm(x.data(), n, H, L.post_norm.data(), float(s.rms_eps), h.data());
    be_.matmul(h.data(), n, L.gate, g.data());
    be_.matmul(h.data(), n, L.up, u.data());
    be_.swiglu(g.data(), u.data(), int64_t(n) * s.intermediate, g.data());
    be_.matmul(g.data(), n, L.down, h.data());
    be_.add(x.data(), h.data(), int64_t(n) * H);
  }
  cache_.commit(start + n);

  // Only the rows whose logits are wanted go through the final norm and the LM head.
  const int rows = all_logits ? n : 1;
  const float* last = x.data() + size_t(n - rows) * H;
  be_.rmsnorm(last, rows, H, model_->final_norm(), float(s.rms_eps), h.data());
  logits.resize(size_t(rows) * s.vocab);
  be_.matmul(h.data(), rows, model_->lm_head(), logits.data());
}

}  // namespace quest
