// A sequence decoded by a host backend (the CPU reference): its fp32 paged KV cache, its
// policy, and the forward pass written against the Backend ops. Several sequences can run
// one forward as a batch (their GEMMs over all their rows, attention per sequence), and
// several can start from one shared prefill.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "engine/decoder.h"
#include "engine/kv_cache.h"
#include "engine/model.h"
#include "policy/policy.h"

namespace quest {

class CpuSequence final : public Decoder {
 public:
  CpuSequence(std::shared_ptr<const Model> model, const PolicyOptions& opts, Backend& backend);
  int64_t length() const override { return cache_.length(); }
  CacheStats cache_stats() const override;

  // One dense prefill of `n` tokens for every cell (fresh sequences of one model, page size,
  // KV type and dense layers): the first runs it while every cell's policy observes it (the
  // statistics they ask for gathered once), the others start from forks of its cache.
  static void prefill_shared(const std::vector<CpuSequence*>& cells, const int32_t* tokens, int64_t n);

 protected:
  void forward(const int32_t* tokens, int64_t n, bool decode, bool all_logits, std::vector<float>& logits) override;
  void forward_batch(const std::vector<Decoder*>& seqs, const int32_t* tokens, const std::vector<std::vector<float>*>& logits) override;

 private:
  // `n` tokens of each lane through the model, lanes' rows together in the GEMMs.
  static void run(const std::vector<CpuSequence*>& lanes, const int32_t* tokens, int n, bool decode, bool all_logits,
                  const std::vector<std::vector<float>*>& logits);

  std::shared_ptr<const Model> model_;
  PolicyOptions opts_;
  Backend& be_;
  PagedKvCache cache_;
  std::unique_ptr<Policy> policy_;
  std::vector<Policy*> observers_;  // policies that see this sequence's prefill: its own, or every cell's of a shared one
};

}  // namespace quest
