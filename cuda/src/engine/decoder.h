// What every backend's sequence offers: a dense prefill, decode steps under a policy,
// per-token NLL and greedy generation, with the same checks and statistics. A backend
// supplies the forward pass.
#pragma once
#include <chrono>
#include <cstdint>
#include <vector>

#include "engine/backend.h"
#include "engine/model_spec.h"

namespace quest {

struct SequenceStats {
  int64_t prefill_tokens = 0, decode_steps = 0;
  double prefill_ms = 0, decode_ms = 0, select_ms = 0;
  // Summed over decode steps and the layers the policy governs; divide by policy_samples
  // (steps x governed layers x KV heads) for the mean tokens read per KV head.
  double tokens_read = 0;
  int64_t policy_samples = 0;
  double kv_bytes_read = 0, meta_bytes_read = 0;  // summed over decode steps, all layers
  // GPU: the host's time from each decode step's start to its last launch, summed, any wait on
  // the way included (a cache's growth, recorded selections): a step whose issue takes about its
  // whole time kept the GPU waiting on the host; 0 elsewhere.
  double issue_ms = 0;
  // With diagnostics on (CPU): per decode step x governed layer x KV head, in that order, the
  // relative L2 error of the policy's attention output against dense attention and the dense
  // probability mass it read (attention_diagnostics); the dense passes' time, kept out of decode_ms.
  std::vector<float> diag_l2, diag_recall;
  double diag_ms = 0;
};

// What one decode step read in each layer the policy governs (layers dense_layers..), kept
// when the sequence records it: per list (KV head, or query head under per-query-head Quest)
// the positions read, ascending, and the CPU policy's margin at the cut that decided the list
// (Policy::take_margins; NaN on the GPU, whose margins are not computed).
struct StepSelection {
  std::vector<Selection> lists;             // [governed layer][list]
  std::vector<std::vector<float>> margins;  // [governed layer][list]
};

// The KV pages a sequence holds: those its cache reaches, those no other cell shares, and
// those alive in its family (the prefill it started from and every cell forked from it), and
// the bytes of key bounds it keeps apart from its pages (the GPU's, one copy per cell; the
// CPU keeps them in its pages); `known` is false where the backend does not report them.
struct CacheStats {
  bool known = false;
  int64_t pages = 0, own_pages = 0, family_pages = 0, page_bytes = 0, bound_bytes = 0;
};

// Milliseconds since it was started: the statistics' clock.
class Stopwatch {
 public:
  double ms() const { return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0_).count(); }

 private:
  std::chrono::steady_clock::time_point t0_ = std::chrono::steady_clock::now();
};

class Decoder {
 public:
  Decoder(const ModelSpec& spec, bool record) : spec_(spec), record_(record) {}
  virtual ~Decoder() = default;
  // The dense prefill of `n` tokens; returns the logits of the last one, or of all when asked.
  std::vector<float> prefill(const int32_t* tokens, int64_t n, bool all_logits);
  // Feeds tokens one decode step at a time under the policy; returns the last one's logits.
  std::vector<float> feed(const int32_t* tokens, int64_t n);
  // For each token: its negative log-likelihood under the current logits, then one decode
  // step that feeds it (a perplexity evaluation under the policy).
  std::vector<double> nll(const int32_t* tokens, int64_t n);
  // Greedy decoding from the current logits until a stop token or `max_new` tokens.
  std::vector<int32_t> generate(int max_new, const std::vector<int32_t>& stop);
  virtual int64_t length() const = 0;
  const SequenceStats& stats() const { return stats_; }
  virtual CacheStats cache_stats() const { return {}; }

  // The batched forms: one decode step at a time for every sequence of `seqs` (one backend
  // and model), as one forward over the batch where the backend can (the CPU and GPU do), each
  // sequence attending under its own policy. Each sequence ends as the single form leaves it;
  // a sequence that stops generating leaves the batch. Decode time is each step's, whole.
  static void feed_batch(const std::vector<Decoder*>& seqs, const int32_t* tokens, int64_t n);
  static std::vector<std::vector<double>> nll_batch(const std::vector<Decoder*>& seqs, const int32_t* tokens, int64_t n);
  static std::vector<std::vector<int32_t>> generate_batch(const std::vector<Decoder*>& seqs, int max_new, const std::vector<int32_t>& stop);
  // Every decode step's selections so far; throws unless the sequence records them.
  const std::vector<StepSelection>& selections() const;

 protected:
  // Makes room for `n` more tokens before a prefill writes them.
  virtual void reserve(int64_t n) {}
  // Prefill runs in chunks of this many tokens, so activations stay bounded at any length.
  virtual int64_t prefill_chunk() const { return 256; }
  // Runs `n` tokens (token ids already checked) through the model; `decode` means one
  // token under the policy. Fills the logits of the last row, or of every row.
  virtual void forward(const int32_t* tokens, int64_t n, bool decode, bool all_logits, std::vector<float>& logits) = 0;
  // One decode token for each of `seqs` (this one first), logits into `logits[i]`; by default
  // one sequence after another.
  virtual void forward_batch(const std::vector<Decoder*>& seqs, const int32_t* tokens, const std::vector<std::vector<float>*>& logits);
  // Starts from the prefill `from` ran (its logits, prompt end and prefill statistics): a cell
  // of a shared prefill, whose backend has already given it `from`'s cache.
  void adopt_prefill(const Decoder& from);

  // Records what a governed layer of the current decode step read: `read` as the policy gave it
  // (an empty list reads positions 0..pos), with the margins (none: NaN).
  void record_layer(Selection read, std::vector<float> margins, int64_t pos);

  const ModelSpec& spec_;
  const bool record_;       // keep each decode step's selections
  int64_t prompt_end_ = 0;  // one past the last prefilled position
  SequenceStats stats_;

 private:
  void check_room(int64_t n) const;
  void check_tokens(const int32_t* tokens, int64_t n) const;
  static void decode_batch(const std::vector<Decoder*>& seqs, const int32_t* tokens);
  std::vector<float> last_logits_;
  std::vector<StepSelection> selections_;
};

}  // namespace quest
