#include "cpu/cpu_sequence.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <utility>

namespace quest {

namespace {
// The options with the model's way of forming scores, which a policy forming its own reads.
PolicyOptions scored(PolicyOptions o, const ModelSpec& s) {
  o.attend.scale = s.attention_scale();
  o.attend.softcap = float(s.attn_softcap);
  return o;
}
}  // namespace

CpuSequence::CpuSequence(std::shared_ptr<const Model> model, const PolicyOptions& opts, Backend& backend)
    : Decoder(model->spec(), opts.record_selections), model_(std::move(model)), opts_(scored(opts, model_->spec())), be_(backend),
      cache_(model_->spec().layers, model_->spec().kv_heads, model_->spec().head_dim, opts.page_size, opts.kv_dtype),
      policy_(make_policy(opts_, model_->spec().layers, model_->spec().kv_heads)), observers_{policy_.get()} {
  if (record_) policy_->record_margins(model_->spec().layers);
}

CacheStats CpuSequence::cache_stats() const {
  return {true, cache_.pages(), cache_.own_pages(), cache_.live_pages(), cache_.page_bytes()};
}

void CpuSequence::prefill_shared(const std::vector<CpuSequence*>& cells, const int32_t* tokens, int64_t n) {
  if (cells.empty()) throw std::runtime_error("a shared prefill needs at least one sequence");
  CpuSequence& first = *cells[0];
  for (CpuSequence* c : cells) {
    if (c->length() > 0) throw std::runtime_error("a shared prefill needs fresh sequences (one has tokens already)");
    if (c->model_ != first.model_ || &c->be_ != &first.be_) throw std::runtime_error("a shared prefill needs sequences of one model");
    if (c->opts_.page_size != first.opts_.page_size || c->opts_.kv_dtype != first.opts_.kv_dtype ||
        c->opts_.dense_layers != first.opts_.dense_layers)
      throw std::runtime_error("a shared prefill needs sequences of one page size, KV type and number of dense layers");
  }
  first.observers_.clear();
  for (CpuSequence* c : cells) first.observers_.push_back(c->policy_.get());
  try {
    first.prefill(tokens, n, false);
  } catch (...) {
    first.observers_ = {first.policy_.get()};
    throw;
  }
  first.observers_ = {first.policy_.get()};
  for (size_t i = 1; i < cells.size(); ++i) {
    cells[i]->cache_ = first.cache_.fork();
    cells[i]->adopt_prefill(first);
  }
}

void CpuSequence::forward(const int32_t* tokens, int64_t n, bool decode, bool all_logits, std::vector<float>& logits) {
  run({this}, tokens, int(n), decode, all_logits, {&logits});
}

void CpuSequence::forward_batch(const std::vector<Decoder*>& seqs, const int32_t* tokens, const std::vector<std::vector<float>*>& logits) {
  std::vector<CpuSequence*> lanes;
  for (Decoder* d : seqs) {
    auto* c = dynamic_cast<CpuSequence*>(d);
    if (!c || c->model_ != model_) throw std::runtime_error("a decode batch needs sequences of one model on one backend");
    lanes.push_back(c);
  }
  run(lanes, tokens, 1, true, false, logits);
}

namespace {

// The prefill statistics every observer asks for, gathered once; `asked` gets those that asked.
AttentionScores prefill_requests(const std::vector<Policy*>& observers, int64_t prompt_end, std::vector<Policy*>& asked) {
  AttentionScores all;
  for (Policy* p : observers) {
    AttentionScores mine;
    p->request_prefill(prompt_end, mine);
    if (!mine.wanted()) continue;
    asked.push_back(p);
    all.want_sums = all.want_sums || mine.want_sums;
    all.want_last = all.want_last || mine.want_last;
    if (mine.window_from < 0) continue;
    if (all.window_from >= 0 && all.window_from != mine.window_from)
      throw std::runtime_error("the cells of a shared prefill ask for different observation windows (SnapKV's window); run them apart");
    all.window_from = mine.window_from;
  }
  return all;
}

}  // namespace

void CpuSequence::run(const std::vector<CpuSequence*>& lanes, const int32_t* tokens, int n, bool decode, bool all_logits,
                      const std::vector<std::vector<float>*>& logits) {
  const CpuSequence& lead = *lanes[0];
  const ModelSpec& s = lead.model_->spec();
  const Model& m = *lead.model_;
  Backend& be = lead.be_;
  const int B = int(lanes.size()), rows = B * n, H = s.hidden, qd = s.heads * s.head_dim, kvd = s.kv_heads * s.head_dim;
  std::vector<int64_t> pos(rows);
  for (int b = 0; b < B; ++b) {
    PagedKvCache& c = lanes[b]->cache_;
    const int64_t start = c.length();
    c.reserve(start + n);
    for (int i = 0; i < n; ++i) pos[b * n + i] = start + i;
  }

  std::vector<float> x(size_t(rows) * H), h(size_t(rows) * H), q(size_t(rows) * qd), k(size_t(rows) * kvd), v(size_t(rows) * kvd),
      att(size_t(rows) * qd), g(size_t(rows) * s.intermediate), u(size_t(rows) * s.intermediate);
  be.embed(m.embedding(), H, tokens, rows, x.data());
  // Gemma scales the embedding by sqrt(hidden), a buffer in the weights' dtype (fp32 here).
  if (s.gemma()) be.scale(x.data(), int64_t(rows) * H, static_cast<float>(std::sqrt(double(H))));

  // Each lane's statistics request: its own policy's at a decode step, every observer's in a prefill.
  std::vector<AttentionScores> scores(B);
  std::vector<std::vector<Policy*>> asked(B);
  for (int b = 0; b < B; ++b) {
    CpuSequence& c = *lanes[b];
    if (decode) {
      c.policy_->request_decode(scores[b]);
      if (scores[b].wanted()) asked[b] = {c.policy_.get()};
    } else {
      scores[b] = prefill_requests(c.observers_, c.prompt_end_, asked[b]);
    }
  }
  // A prefill's positions all rotate with the table of its whole length, as transformers'
  // single call does; a decode step's with its own (they differ under dynamic NTK, and under
  // LongRoPE once the length passes the original one).
  std::vector<std::vector<float>> inv_freq(B);
  for (int b = 0; b < B; ++b) inv_freq[b] = m.inv_freq_at(decode ? pos[b * n] + 1 : lanes[b]->prompt_end_);
  AttendOptions how = lanes[0]->opts_.attend;  // the model's, as every lane's
  Selection sel(s.kv_heads);
  for (int l = 0; l < s.layers; ++l) {
    const LayerWeights& L = m.layer(l);
    be.rmsnorm(x.data(), rows, H, L.in_norm.data(), float(s.rms_eps), h.data());
    be.matmul(h.data(), rows, L.q, q.data());
    be.matmul(h.data(), rows, L.k, k.data());
    be.matmul(h.data(), rows, L.v, v.data());
    if (!L.q_norm.empty()) {  // Qwen3, Gemma 3: per-head RMSNorm of q and k before RoPE
      be.rmsnorm(q.data(), rows * s.heads, s.head_dim, L.q_norm.data(), float(s.rms_eps), q.data());
      be.rmsnorm(k.data(), rows * s.kv_heads, s.head_dim, L.k_norm.data(), float(s.rms_eps), k.data());
    }
    const bool local_rope = s.has_local_rope && s.sliding(l);
    const float factor = local_rope ? m.attention_factor_local() : m.attention_factor();
    for (int b = 0; b < B; ++b) {
      const float* freq = local_rope ? m.inv_freq_local().data() : inv_freq[b].data();
      be.rope(q.data() + size_t(b * n) * qd, n, s.heads, s.head_dim, pos.data() + b * n, freq, factor);
      be.rope(k.data() + size_t(b * n) * kvd, n, s.kv_heads, s.head_dim, pos.data() + b * n, freq, factor);
    }
    // A policy governs full-attention layers; a sliding-window layer reads its window, counted
    // in the bytes but not in the budget.
    const int64_t window = how.window = s.sliding(l) ? s.sliding_window : 0;

    for (int b = 0; b < B; ++b) {
      CpuSequence& c = *lanes[b];
      const int r0 = b * n;
      for (int i = r0; i < r0 + n; ++i) c.cache_.write(l, pos[i], k.data() + size_t(i) * kvd, v.data() + size_t(i) * kvd);
      const size_t elem = c.cache_.element_bytes();
      const bool governed = l >= c.opts_.dense_layers && !window;
      const float* qb = q.data() + size_t(r0) * qd;
      if (decode && governed) {
        const Stopwatch t;
        sel.assign(s.kv_heads, {});
        c.policy_->select(l, pos[r0], qb, s.heads, c.cache_, sel);
        c.stats_.select_ms += t.ms();
        c.stats_.meta_bytes_read += c.policy_->meta_bytes();
        for (int kh = 0; kh < s.kv_heads; ++kh) {
          int64_t read = tokens_served(sel, kh, s.kv_heads, s.heads / s.kv_heads, pos[r0] + 1);
          c.stats_.tokens_read += double(read);
          c.stats_.kv_bytes_read += double(read) * s.head_dim * 2 * elem;
        }
        c.stats_.policy_samples += s.kv_heads;
        if (c.record_) c.record_layer(sel, c.policy_->take_margins(l, sel.size()), pos[r0]);
      } else if (decode) {
        const int64_t seen = window ? std::min<int64_t>(window, pos[r0] + 1) : pos[r0] + 1;
        c.stats_.kv_bytes_read += double(seen) * kvd * 2 * elem;
      }
      const bool observe = governed && scores[b].wanted();
      be.attend(c.cache_, l, qb, n, s.heads, pos.data() + r0, decode && governed ? &sel : nullptr, att.data() + size_t(r0) * qd,
                observe ? &scores[b] : nullptr, how);
      if (decode && governed && c.opts_.diagnostics) {
        const Stopwatch t;
        attention_diagnostics(c.cache_, l, qb, s.heads, pos[r0], sel, att.data() + size_t(r0) * qd, how, c.stats_.diag_l2, c.stats_.diag_recall);
        c.stats_.diag_ms += t.ms();
      }
      if (observe)
        for (Policy* p : asked[b]) {
          if (decode)
            p->observe_decode(l, scores[b]);
          else
            p->observe_prefill(l, scores[b]);
        }
    }
    be.matmul(att.data(), rows, L.o, h.data());
    // Gemma normalises each block's output before the residual add, and the MLP's input with
    // its own pre-norm; the others' post-attention norm is the MLP's input norm.
    const bool gemma = s.gemma();
    if (gemma) be.rmsnorm(h.data(), rows, H, L.post_norm.data(), float(s.rms_eps), h.data());
    be.add(x.data(), h.data(), int64_t(rows) * H);

    be.rmsnorm(x.data(), rows, H, gemma ? L.pre_ff_norm.data() : L.post_norm.data(), float(s.rms_eps), h.data());
    be.matmul(h.data(), rows, L.gate, g.data());
    be.matmul(h.data(), rows, L.up, u.data());
    if (gemma)
      be.geglu(g.data(), u.data(), int64_t(rows) * s.intermediate, g.data());
    else
      be.swiglu(g.data(), u.data(), int64_t(rows) * s.intermediate, g.data());
    be.matmul(g.data(), rows, L.down, h.data());
    if (gemma) be.rmsnorm(h.data(), rows, H, L.post_ff_norm.data(), float(s.rms_eps), h.data());
    be.add(x.data(), h.data(), int64_t(rows) * H);
  }
  for (int b = 0; b < B; ++b) lanes[b]->cache_.commit(pos[b * n] + n);

  // Only the rows whose logits are wanted (each lane's last, or all) go through the final norm
  // and the LM head, in one GEMM.
  const int out_rows = all_logits ? n : 1;
  std::vector<float> last(size_t(B) * out_rows * H), y(size_t(B) * out_rows * H);
  for (int b = 0; b < B; ++b)
    std::copy(x.begin() + size_t(b * n + n - out_rows) * H, x.begin() + size_t(b * n + n) * H, last.begin() + size_t(b) * out_rows * H);
  be.rmsnorm(last.data(), B * out_rows, H, m.final_norm(), float(s.rms_eps), y.data());
  std::vector<float> all(size_t(B) * out_rows * s.vocab);
  be.matmul(y.data(), B * out_rows, m.lm_head(), all.data());
  if (s.final_softcap > 0) be.softcap(all.data(), int64_t(all.size()), float(s.final_softcap));
  for (int b = 0; b < B; ++b)
    logits[b]->assign(all.begin() + size_t(b) * out_rows * s.vocab, all.begin() + size_t(b + 1) * out_rows * s.vocab);
}

}  // namespace quest
