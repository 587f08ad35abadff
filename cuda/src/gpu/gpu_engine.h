// The model's forward pass on a GPU (gpu/), seen from the binding in plain C++ so it builds
// the same with or without nvcc (gpu/cuda_none.cpp then refuses with the reason).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "engine/decoder.h"
#include "engine/model.h"
#include "policy/policy.h"

namespace quest {

class GpuModel;

// Copies the model's weights to GPU `device` in its 16-bit type (the host model can be freed
// then); throws, naming what, when the model or the device cannot be served.
std::shared_ptr<GpuModel> upload_model(const Model& model, int device);
// Throws when the policy has no GPU implementation.
std::unique_ptr<Decoder> make_gpu_sequence(std::shared_ptr<GpuModel> model, const PolicyOptions& opts);
// One dense prefill of `n` tokens for every cell (fresh GPU sequences of one model, page size,
// KV type and dense layers; each cell's policy observes it as it would alone), the others'
// caches sharing the first's pages (copy-on-write), as CpuSequence::prefill_shared.
void gpu_prefill_shared(const std::vector<Decoder*>& cells, const int32_t* tokens, int64_t n);
size_t gpu_weight_bytes(const GpuModel& model);
// Device-to-device copy bandwidth of `device` (GB/s, bytes read plus written), timed now.
double gpu_copy_gbps(int device);
// How a decode batch's attention launches (QUEST_DECODE_LANES); throws on a bad value, naming it.
std::string decode_batch_path();

}  // namespace quest
