// The model's forward pass on a GPU (gpu/), seen from the binding in plain C++ so it builds
// the same with or without nvcc (gpu/cuda_none.cpp then refuses with the reason).
#pragma once
#include <memory>
#include <string>

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
size_t gpu_weight_bytes(const GpuModel& model);
// Device-to-device copy bandwidth of `device` (GB/s, bytes read plus written), timed now.
double gpu_copy_gbps(int device);

}  // namespace quest
