// A sequence decoded by a host backend (the CPU reference): its fp32 paged KV cache, its
// policy, and the forward pass written against the Backend ops.
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

 protected:
  void forward(const int32_t* tokens, int64_t n, bool decode, bool all_logits, std::vector<float>& logits) override;

 private:
  std::shared_ptr<const Model> model_;
  PolicyOptions opts_;
  Backend& be_;
  PagedKvCache cache_;
  std::unique_ptr<Policy> policy_;
};

}  // namespace quest
