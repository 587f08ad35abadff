// The model's weights on the GPU (gpu_model.cu), read by the sequences that run its forward
// pass (gpu_sequence.cu).
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "engine/model.h"
#include "gpu/int4.cuh"
#include "kernels/cuda_util.cuh"
#include "kernels/gemm_lt.cuh"
#include "kernels/linear.cuh"

namespace quest {

// The RMSNorm weights are folded into the columns of the projections that read the norm's
// output (qkv, gate_up, the LM head), which then scale by 1 / rms as they load their input;
// a 4-bit layer, whose packed integers cannot hold them, scales its input instead (in_scale).
struct GpuLayer {
  DeviceLinear qkv, o, gate_up, down;
  Int4Linear qkv4, o4, gate_up4, down4;  // a 4-bit layer's weights (then its DeviceLinear holds only the bias)
  const float* q_norm = nullptr;  // Qwen3's and Gemma 3's per-head norms of q and k (fp32), or null
  const float* k_norm = nullptr;
  const float* post_attn_norm = nullptr;  // Gemma: the attention's and the MLP's output norms (fp32), or null
  const float* post_ff_norm = nullptr;
};

class GpuModel {
 public:
  // Copies what the GPU needs; the host model may be freed afterwards.
  GpuModel(const Model& model, int device);
  const ModelSpec& spec() const { return spec_; }
  int device() const { return device_; }
  WeightType type() const { return type_; }
  const GpuLayer& layer(int l) const { return layers_[l]; }
  const void* embedding() const { return embed_; }
  const DeviceLinear& lm_head() const { return lm_head_; }
  const float* inv_freq() const { return inv_freq_; }
  const float* inv_freq_local() const { return inv_freq_local_; }  // Gemma 3's sliding layers' table, or null
  // Gemma's embedding scale, sqrt(hidden) rounded to the weight type as transformers forms it
  // in the model's dtype (0: none).
  float embed_scale() const { return embed_scale_; }
  // Weight bytes one decode step reads.
  size_t weight_bytes() const { return weight_bytes_; }
  // cuBLASLt for the prefill's GEMMs, or null where the own GEMM runs (gemm_choice says why).
  LtGemm* lt() const { return lt_.get(); }
  bool int4() const { return !spec_.quant.method.empty(); }
  // Elements of the largest 4-bit layer: a prefill's dequantization scratch.
  size_t int4_scratch() const { return int4_scratch_; }

 private:
  // Freed with the model, or as soon as its constructor throws.
  struct Allocations {
    std::vector<void*> ptrs;
    ~Allocations() {
      for (void* p : ptrs) cudaFree(p);
    }
  };
  void* alloc(size_t bytes) {
    void* p = nullptr;
    check(cudaMalloc(&p, std::max<size_t>(bytes, 1)), "cudaMalloc (weights)");
    allocations_.ptrs.push_back(p);
    return p;
  }
  // A host fp32 tensor, as uploaded (no copy of it is made).
  struct Host {
    const float* data;
    size_t size;
    Host(const std::vector<float>& v) : data(v.data()), size(v.size()) {}
    Host(const float* d, size_t n) : data(d), size(n) {}
  };
  // Rows of fp32 host tensors stacked into one device matrix of the weight type, each
  // column scaled by `columns` when given; `what` names the tensors for the non-finite check.
  const void* upload_weights(const std::string& what, std::initializer_list<Host> parts, const float* columns = nullptr, size_t cols = 1);
  // fp32 vectors stacked as they are (norms, biases); null when all are empty.
  const float* upload_floats(std::initializer_list<const std::vector<float>*> parts, std::initializer_list<size_t> sizes);

  ModelSpec spec_;
  int device_ = 0;
  WeightType type_ = WeightType::F16;
  Allocations allocations_;
  std::vector<GpuLayer> layers_;
  const void* embed_ = nullptr;
  const float* inv_freq_ = nullptr;
  const float* inv_freq_local_ = nullptr;
  float embed_scale_ = 0;
  DeviceLinear lm_head_;
  size_t weight_bytes_ = 0, int4_scratch_ = 0;
  // One flag per upload_weights call, set by the conversion kernel, read once after loading.
  DeviceBuffer<int> nonfinite_;
  std::vector<std::string> uploaded_;
  std::unique_ptr<LtGemm> lt_;
};

}  // namespace quest
