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

void Decoder::decode_step(int32_t token) {
  check_room(1);
  if (record_) selections_.emplace_back();
  const Stopwatch t;
  forward(&token, 1, true, false, last_logits_);
  stats_.decode_ms += t.ms();
  stats_.decode_steps += 1;
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
  if (n <= 0) throw std::runtime_error("feed needs at least one token");
  if (length() == 0) throw std::runtime_error("feed before prefill: the first tokens must be prefilled");
  check_room(n);
  check_tokens(tokens, n);
  for (int64_t i = 0; i < n; ++i) decode_step(tokens[i]);
  return last_logits_;
}

std::vector<double> Decoder::nll(const int32_t* tokens, int64_t n) {
  if (last_logits_.empty()) throw std::runtime_error("nll before prefill");
  check_room(n);
  check_tokens(tokens, n);
  std::vector<double> out(n);
  for (int64_t i = 0; i < n; ++i) {
    double mx = *std::max_element(last_logits_.begin(), last_logits_.end()), z = 0;
    for (float v : last_logits_) z += std::exp(double(v) - mx);
    out[i] = mx + std::log(z) - double(last_logits_[tokens[i]]);
    decode_step(tokens[i]);
  }
  return out;
}

std::vector<int32_t> Decoder::generate(int max_new, const std::vector<int32_t>& stop) {
  if (last_logits_.empty()) throw std::runtime_error("generate before prefill");
  std::vector<int32_t> out;
  for (int i = 0; i < max_new; ++i) {
    int32_t tok = int32_t(std::max_element(last_logits_.begin(), last_logits_.end()) - last_logits_.begin());
    if (std::find(stop.begin(), stop.end(), tok) != stop.end()) break;
    out.push_back(tok);
    if (i + 1 == max_new) break;
    decode_step(tok);
  }
  return out;
}

}  // namespace quest
