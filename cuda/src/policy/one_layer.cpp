#include "policy/one_layer.h"

#include <stdexcept>

namespace quest {

OneLayerRun run_one_layer(const OneLayerInput& in) {
  const int d = in.head_dim, kvd = in.kv_heads * d, qd = in.heads * d;
  const int64_t total = in.prompt_len + in.steps;
  if (in.heads <= 0 || in.kv_heads <= 0 || d <= 0 || in.heads % in.kv_heads != 0 || in.prompt_len <= 0 || in.steps < 0)
    throw std::runtime_error("one-layer run: bad shape");
  if (int64_t(in.keys.size()) != total * kvd || int64_t(in.values.size()) != total * kvd || int64_t(in.queries.size()) != total * qd)
    throw std::runtime_error("one-layer run: keys, values or queries have the wrong length");
  PolicyOptions opts = in.opts;
  opts.dense_layers = 0;
  auto policy = make_policy(opts, 1, in.kv_heads);
  policy->record_margins(1);
  PagedKvCache cache(1, in.kv_heads, d, opts.page_size);
  Backend& be = cpu_backend();
  OneLayerRun out;

  cache.reserve(in.prompt_len);
  std::vector<int64_t> pos(in.prompt_len);
  for (int64_t t = 0; t < in.prompt_len; ++t) {
    pos[t] = t;
    cache.write(0, t, &in.keys[t * kvd], &in.values[t * kvd]);
  }
  cache.commit(in.prompt_len);
  std::vector<float> att(size_t(in.prompt_len) * qd);
  policy->request_prefill(in.prompt_len, out.prefill);
  be.attend(cache, 0, in.queries.data(), int(in.prompt_len), in.heads, pos.data(), nullptr, att.data(),
            out.prefill.wanted() ? &out.prefill : nullptr);
  if (out.prefill.wanted()) policy->observe_prefill(0, out.prefill);

  std::vector<float> o(qd);
  for (int64_t s = 0; s < in.steps; ++s) {
    const int64_t p = in.prompt_len + s;
    cache.reserve(p + 1);
    cache.write(0, p, &in.keys[p * kvd], &in.values[p * kvd]);
    cache.commit(p + 1);
    OneLayerStep step;
    step.sel.assign(in.kv_heads, {});
    const float* q = &in.queries[p * qd];
    policy->select(0, p, q, in.heads, cache, step.sel);
    step.meta_bytes = policy->meta_bytes();
    step.margins = policy->take_margins(0, step.sel.size());
    AttentionScores scores;
    policy->request_decode(scores);
    scores.want_sums = true;  // the run always reports the step's attention
    be.attend(cache, 0, q, 1, in.heads, &p, &step.sel, o.data(), &scores);
    if (opts.diagnostics) attention_diagnostics(cache, 0, q, in.heads, p, step.sel, o.data(), {}, step.l2, step.recall);
    policy->observe_decode(0, scores);
    step.probs = scores.sums;
    out.steps.push_back(std::move(step));
  }
  for (int64_t pg = 0; pg < cache.pages(); ++pg)
    for (int g = 0; g < in.kv_heads; ++g) {
      out.page_min.insert(out.page_min.end(), cache.page_min(0, g, pg), cache.page_min(0, g, pg) + d);
      out.page_max.insert(out.page_max.end(), cache.page_max(0, g, pg), cache.page_max(0, g, pg) + d);
    }
  return out;
}

}  // namespace quest
