#include "engine/sequence.h"

#include <algorithm>
#include <cmath>
#include <chrono>
#include <stdexcept>
#include <string>

namespace quest {
namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

// Prefill runs in chunks so activations stay bounded at any context length.
constexpr int64_t kPrefillChunk = 256;

// Tokens a KV head serves at one step: its own list, or the union of its query heads' lists.
int64_t tokens_read(const Selection& sel, int kv_head, int kv_heads, int group, int64_t all) {
  if (int(sel.size()) == kv_heads) return sel[kv_head].empty() ? all : int64_t(sel[kv_head].size());
  std::vector<int32_t> u;
  for (int h = kv_head * group; h < (kv_head + 1) * group; ++h) {
    if (sel[h].empty()) return all;
    u.insert(u.end(), sel[h].begin(), sel[h].end());
  }
  std::sort(u.begin(), u.end());
  return int64_t(std::unique(u.begin(), u.end()) - u.begin());
}

}  // namespace

Sequence::Sequence(std::shared_ptr<const Model> model, const PolicyOptions& opts, Backend& backend)
    : model_(std::move(model)), opts_(opts), be_(backend),
      cache_(model_->spec().layers, model_->spec().kv_heads, model_->spec().head_dim, opts.page_size),
      policy_(make_policy(opts, model_->spec().layers, model_->spec().kv_heads)) {}

void Sequence::check_room(int64_t n) const {
  int64_t max = model_->spec().max_positions;
  if (max > 0 && length() + n > max)
    throw std::runtime_error("context of " + std::to_string(length() + n) + " tokens exceeds the model's " +
                             std::to_string(max) + " positions");
}

std::vector<float> Sequence::prefill(const int32_t* tokens, int64_t n, bool all_logits) {
  if (n <= 0) throw std::runtime_error("prefill needs at least one token");
  if (stats_.decode_steps > 0) throw std::runtime_error("prefill after decode steps: a sequence is prefilled once, then fed");
  check_room(n);
  prompt_end_ = length() + n;
  auto t0 = Clock::now();
  std::vector<float> all;
  for (int64_t i = 0; i < n; i += kPrefillChunk) {
    int64_t m = std::min(kPrefillChunk, n - i);
    forward(tokens + i, m, false, all_logits, last_logits_);
    if (all_logits) all.insert(all.end(), last_logits_.begin(), last_logits_.end());
  }
  if (all_logits) last_logits_.assign(all.end() - model_->spec().vocab, all.end());
  stats_.prefill_ms += ms_since(t0);
  stats_.prefill_tokens += n;
  return all_logits ? all : last_logits_;
}

std::vector<float> Sequence::feed(const int32_t* tokens, int64_t n) {
  if (n <= 0) throw std::runtime_error("feed needs at least one token");
  if (length() == 0) throw std::runtime_error("feed before prefill: the first tokens must be prefilled");
  check_room(n);
  for (int64_t i = 0; i < n; ++i) forward(tokens + i, 1, true, false, last_logits_);
  return last_logits_;
}

std::vector<double> Sequence::nll(const int32_t* tokens, int64_t n) {
  if (last_logits_.empty()) throw std::runtime_error("nll before prefill");
  check_room(n);
  std::vector<double> out(n);
  for (int64_t i = 0; i < n; ++i) {
    if (tokens[i] < 0 || tokens[i] >= model_->spec().vocab)
      throw std::runtime_error("token id " + std::to_string(tokens[i]) + " is outside the vocabulary");
    double mx = *std::max_element(last_logits_.begin(), last_logits_.end()), z = 0;
    for (float v : last_logits_) z += std::exp(double(v) - mx);
    out[i] = mx + std::log(z) - double(last_logits_[tokens[i]]);
    forward(tokens + i, 1, true, false, last_logits_);
  }
  return out;
}

std::vector<int32_t> Sequence::generate(int max_new, const std::vector<int32_t>& stop) {
  if (last_logits_.empty()) throw std::runtime_error("generate before prefill");
  std::vector<int32_t> out;
  for (int i = 0; i < max_new; ++i) {
    int32_t tok = int32_t(std::max_element(last_logits_.begin(), last_logits_.end()) - last_logits_.begin());
    if (std::find(stop.begin(), stop.end(), tok) != stop.end()) break;
    out.push_back(tok);
    if (i + 1 == max_new) break;
    check_room(1);
    forward(&tok, 1, true, false, last_logits_);
  }
  return out;
}

void Sequence::forward(const int32_t* tokens, int64_t n64, bool decode, bool all_logits, std::vector<float>& logits) {
  const ModelSpec& s = model_->spec();
  const int n = int(n64), H = s.hidden, qd = s.heads * s.head_dim, kvd = s.kv_heads * s.head_dim;
  for (int i = 0; i < n; ++i)
    if (tokens[i] < 0 || tokens[i] >= s.vocab)
      throw std::runtime_error("token id " + std::to_string(tokens[i]) + " is outside the vocabulary (" +
                               std::to_string(s.vocab) + ")");
  auto t0 = Clock::now();
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
  const size_t elem = sizeof(float);  // the CPU cache holds fp32
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
      auto ts = Clock::now();
      sel.assign(s.kv_heads, {});
      policy_->select(l, pos[0], q.data(), s.heads, cache_, sel);
      stats_.select_ms += ms_since(ts);
      stats_.meta_bytes_read += policy_->meta_bytes();
      for (int kh = 0; kh < s.kv_heads; ++kh) {
        int64_t read = tokens_read(sel, kh, s.kv_heads, s.heads / s.kv_heads, pos[0] + 1);
        stats_.tokens_read += double(read);
        stats_.kv_bytes_read += double(read) * s.head_dim * 2 * elem;
      }
      stats_.policy_samples += s.kv_heads;
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
  if (decode) {
    stats_.decode_ms += ms_since(t0);
    stats_.decode_steps += 1;
  }
}

}  // namespace quest
