// The KV-cache policies on the GPU: the same rules as policy/ (the CPU reference), composed
// of device steps (kernels/quest_*.cuh, kernels/selection.cuh) so that selection never
// waits on the host. Every list a step reads has a length the host knows in advance, so the
// statistics need no copy back either.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <memory>
#include <string>

#include "kernels/decode_attention.cuh"
#include "kernels/decode_plan.cuh"
#include "kernels/paged_kv.cuh"
#include "kernels/quest_step.cuh"
#include "policy/policy.h"

namespace quest {

// What a governed layer's decode step reads.
struct StepRead {
  // Quest: the sequence runs `quest` (Quest's whole step, its selection included), which writes
  // the layer's attention output to the call's `out`.
  enum Kind { Dense, Pages, Tokens, Quest } kind = Dense;
  PageLists pages;  // Pages: `listed` pages a list; Quest: the storage pages its step reads
  int listed = 0;
  QuestStep quest;
  TokenLists tokens;
  LogitsReport report;      // Tokens: what the attention must report back (may be empty)
  int64_t tokens_read = 0;  // per KV head (Dense: the whole cache); 0 where counted on the device
  double meta_bytes = 0;
};

// The arguments of one layer's attention and the sequence's decode plan, for policies that
// attend to choose (oracle top-k, Quest's fused step). `out` (the layer's attention output) is
// scratch to the policy until it attends.
struct AttentionCall : DecodeArgs {
  const DecodePlan* plan = nullptr;
};

class GpuPolicy {
 public:
  virtual ~GpuPolicy() = default;
  // The cache now holds `capacity` tokens (it held `old` before): per-position state grows,
  // its contents kept.
  virtual void grow(int64_t old, int64_t capacity, cudaStream_t stream) {}
  // Device bytes of that per-position state at `capacity` tokens (what a cache's fit counts).
  virtual size_t state_bytes(int64_t capacity) const { return 0; }
  // Whether its steps read the cache's key bounds (only a cache that some policy reads keeps them).
  virtual bool reads_bounds() const { return false; }
  // Whether the prefill of governed layers must report its rows' log-sum-exp to observe_prefill.
  virtual bool wants_prefill_lse() const { return false; }
  // A governed layer's prefill chunk of `rows` queries at positions start.. (the prompt ends
  // at prompt_end), after its attention.
  virtual void observe_prefill(int layer, const AttentionCall& a, int rows, int64_t start, int64_t prompt_end, const float* lse,
                               cudaStream_t stream) {}
  // What observe_prefill gathers: policies of one kind with equal keys gather the same values,
  // so a shared prefill gathers them in one and copies them to the others.
  virtual std::string prefill_statistics() const { return ""; }
  // Takes the statistics `from` (of an equal key, grown to the same capacity) gathered.
  virtual void copy_prefill_statistics(const GpuPolicy& from, cudaStream_t stream) {}
  // A governed layer's decode step for the query at `pos` (already cached).
  virtual StepRead select(int layer, int64_t pos, int64_t prompt_end, const AttentionCall& a, cudaStream_t stream) = 0;
  // Whether select launches nothing, only saying what the step reads (Dense, Pages or Quest): a
  // decode batch then runs the step with its other sequences' in one launch a kind.
  virtual bool plans_only() const { return false; }
  // After the step's attention has filled the report that select asked for.
  virtual void observe_decode(int layer, cudaStream_t stream) {}
  // Tokens read that depend on what was selected (summed over KV heads), counted on the device
  // since the last call, for a forward pass that has finished on `stream`.
  virtual double drain_counted_tokens(cudaStream_t stream) { return 0; }
};

// Throws std::runtime_error naming what the GPU does not implement.
std::unique_ptr<GpuPolicy> make_gpu_policy(const PolicyOptions& opts, int layers, int heads, int kv_heads, int head_dim);

// The positions a governed layer's step read, per list, ascending, copied back from the device
// (for recording only: it waits for the stream); empty lists where it read all `length` tokens.
Selection download_read(const StepRead& read, int heads, int kv_heads, int64_t length, cudaStream_t stream);

}  // namespace quest
