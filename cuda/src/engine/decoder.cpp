#include "engine/decoder.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace quest {

void Decoder::check_room(int64_t n) const {
  int64_t max = spec_.max_positions;
  if (max > 0 && length() + n > max)
    throw std::runtime_error("context of " + std::to_string(length() + n) + " tokens exceeds the model's " +
                             std::to_string(max) + " positions");
}

void Decoder::check_tokens(const int32_t* tokens, int64_t n) const {
  for (int64_t i = 0; i < n; ++i)
    if (tokens[i] < 0 || tokens[i] >= spec_.vocab)
      throw std::runtime_error("token id " + std::to_string(tokens[i]) + " is outside the vocabulary (" +
                               std::to_string(spec_.vocab) + ")");
}

const std::vector<StepSelection>& Decoder::selections() const {
  if (!record_) throw std::runtime_error("the sequence does not record its selections (create it with recordSelections: true)");
  return selections_;
}

void Decoder::record_layer(Selection read, std::vector<float> margins, int64_t pos) {
  for (auto& list : read)
    if (list.empty())
      for (int32_t t = 0; t <= pos; ++t) list.push_back(t);
  if (margins.empty()) margins.assign(read.size(), std::nanf(""));
  selections_.back().lists.push_back(std::move(read));
  selections_.back().margins.push_back(std::move(margins));
}

void Decoder::forward_batch(const std::vector<Decoder*>& seqs, const int32_t* tokens, const std::vector<std::vector<float>*>& logits) {
  for (size_t i = 0; i < seqs.size(); ++i) seqs[i]->forward(&tokens[i], 1, true, false, *logits[i]);
}

void Decoder::decode_batch(const std::vector<Decoder*>& seqs, const int32_t* tokens) {
  std::vector<std::vector<float>*> logits;
  for (Decoder* d : seqs) {
    d->check_room(1);
    if (d->record_) d->selections_.emplace_back();
    logits.push_back(&d->last_logits_);
  }
  double diag_ms = 0;  // the step's diagnostics, every lane's, are not decode time
  for (Decoder* d : seqs) diag_ms -= d->stats_.diag_ms;
  const Stopwatch t;
  seqs[0]->forward_batch(seqs, tokens, logits);
  const double ms = t.ms();
  for (Decoder* d : seqs) diag_ms += d->stats_.diag_ms;
  for (Decoder* d : seqs) {
    d->stats_.decode_ms += ms - diag_ms;
    d->stats_.decode_steps += 1;
  }
}

void Decoder::adopt_prefill(const Decoder& from) {
  prompt_end_ = from.prompt_end_;
  last_logits_ = from.last_logits_;
  stats_.prefill_ms = from.stats_.prefill_ms;
  stats_.prefill_tokens = from.stats_.prefill_tokens;
}

std::vector<float> Decoder::prefill(const int32_t* tokens, int64_t n, bool all_logits) {
  if (n <= 0) throw std::runtime_error("prefill needs at least one token");
  if (stats_.decode_steps > 0) throw std::runtime_error("prefill after decode steps: a sequence is prefilled once, then fed");
  check_room(n);
  check_tokens(tokens, n);
  reserve(n);
  prompt_end_ = length() + n;
  const Stopwatch t;
  std::vector<float> all;
  for (int64_t i = 0; i < n; i += prefill_chunk()) {
    int64_t m = std::min(prefill_chunk(), n - i);
    forward(tokens + i, m, false, all_logits, last_logits_);
    if (all_logits) all.insert(all.end(), last_logits_.begin(), last_logits_.end());
  }
  if (all_logits) last_logits_.assign(all.end() - spec_.vocab, all.end());
  stats_.prefill_ms += t.ms();
  stats_.prefill_tokens += n;
  return all_logits ? all : last_logits_;
}

std::vector<float> Decoder::feed(const int32_t* tokens, int64_t n) {
  feed_batch({this}, tokens, n);
  return last_logits_;
}

std::vector<double> Decoder::nll(const int32_t* tokens, int64_t n) { return nll_batch({this}, tokens, n)[0]; }

std::vector<int32_t> Decoder::generate(int max_new, const std::vector<int32_t>& stop) { return generate_batch({this}, max_new, stop)[0]; }

void Decoder::feed_batch(const std::vector<Decoder*>& seqs, const int32_t* tokens, int64_t n) {
  if (n <= 0) throw std::runtime_error("feed needs at least one token");
  for (const Decoder* d : seqs) {
    if (d->length() == 0) throw std::runtime_error("feed before prefill: the first tokens must be prefilled");
    d->check_room(n);
    d->check_tokens(tokens, n);
  }
  for (int64_t i = 0; i < n; ++i) decode_batch(seqs, std::vector<int32_t>(seqs.size(), tokens[i]).data());
}

std::vector<std::vector<double>> Decoder::nll_batch(const std::vector<Decoder*>& seqs, const int32_t* tokens, int64_t n) {
  for (const Decoder* d : seqs) {
    if (d->last_logits_.empty()) throw std::runtime_error("nll before prefill");
    d->check_room(n);
    d->check_tokens(tokens, n);
  }
  std::vector<std::vector<double>> out(seqs.size(), std::vector<double>(n));
  for (int64_t i = 0; i < n; ++i) {
    for (size_t b = 0; b < seqs.size(); ++b) {
      const std::vector<float>& lg = seqs[b]->last_logits_;
      double mx = *std::max_element(lg.begin(), lg.end()), z = 0;
      for (float v : lg) z += std::exp(double(v) - mx);
      out[b][i] = mx + std::log(z) - double(lg[tokens[i]]);
    }
    decode_batch(seqs, std::vector<int32_t>(seqs.size(), tokens[i]).data());
  }
  return out;
}

std::vector<std::vector<int32_t>> Decoder::generate_batch(const std::vector<Decoder*>& seqs, int max_new, const std::vector<int32_t>& stop) {
  for (const Decoder* d : seqs)
    if (d->last_logits_.empty()) throw std::runtime_error("generate before prefill");
  std::vector<std::vector<int32_t>> out(seqs.size());
  std::vector<size_t> live(seqs.size());
  for (size_t b = 0; b < live.size(); ++b) live[b] = b;
  for (int i = 0; i < max_new && !live.empty(); ++i) {
    std::vector<size_t> next;
    std::vector<Decoder*> batch;
    std::vector<int32_t> fed;
    for (size_t b : live) {
      const std::vector<float>& lg = seqs[b]->last_logits_;
      int32_t tok = int32_t(std::max_element(lg.begin(), lg.end()) - lg.begin());
      if (std::find(stop.begin(), stop.end(), tok) != stop.end()) continue;
      out[b].push_back(tok);
      if (i + 1 == max_new) continue;
      next.push_back(b);
      batch.push_back(seqs[b]);
      fed.push_back(tok);
    }
    if (!batch.empty()) decode_batch(batch, fed.data());
    live.swap(next);
  }
  return out;
}

}  // namespace quest
