// 4-bit weights on the GPU (issue #23): AWQ and GPTQ layers unpacked at upload into one layout,
// a W4A16 GEMV for decode steps and, for a prefill, a dequantization into a scratch matrix of
// the weight type that the existing GEMM path (cuBLASLt or the own GEMM) then multiplies.
#pragma once
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <functional>
#include <initializer_list>
#include <vector>

#include "engine/int4.h"
#include "kernels/gpu_shapes.h"
#include "kernels/linear.cuh"

namespace quest {

// One linear layer [out][in]: qweight [out][in/8], word j of a row holding inputs 8j..8j+7
// (input 8j+n at nibble (n % 2) * 4 + n / 2, the order the fp16 GEMV unpacks in pairs); sz [out][in/group] each group's (scale, zero) in fp16, as both formats store
// scales; in_scale [in] the RMSNorm weight the input is multiplied by (the fp16 path folds it
// into the weights' columns, which packed integers cannot hold), or null. Empty: not 4-bit.
struct Int4Linear {
  const uint32_t* qweight = nullptr;
  const __half2* sz = nullptr;
  const float* in_scale = nullptr;
  int in = 0, out = 0, group = 0;
  // The GEMV on tensor cores (int4_mma_kernel) rather than in half2, for fp16 models (bf16 ones
  // take the fp32 kernel whatever it says): layers of at least twice as many inputs as outputs
  // (the down projection), whose group is a power of two of 32 inputs. There the long rows keep
  // more loads in flight on tensor cores; elsewhere half2 was faster at batch 1
  // (docs/int4-decode.md). Each layer keeps one kernel at every batch size, so a row's sums in
  // a batch are those of the row alone.
  bool mma = false;
  size_t bytes() const;
};

// Int4Linear::mma's rule for a layer of this shape and group.
bool int4_gemv_on_tensor_cores(int in, int out, int group);

// parts stacked along the output (q, k, v; gate, up), each unpacked by its format's rules
// (engine/int4.h) on the host, uploaded into memory from alloc (which the caller owns).
Int4Linear upload_int4(const QuantSpec& q, std::initializer_list<const PackedLinear*> parts, const std::vector<float>& in_scale,
                       const std::function<void*(size_t)>& alloc);

// y[rows][out] (+)= x W^T + b for rows <= kInt4GemvRows; x [rows][in] in the weight type,
// already times in_scale (stage_input's output with in_scale as its col_scale), weights
// dequantized in registers from 16-byte loads.
void int4_gemv(const void* x, int rows, const Int4Linear& w, const float* b, WeightType t, float* y, bool accumulate, cudaStream_t s);

// dst [out][in] = W * in_scale (by column) in the weight type: the matrix a DeviceLinear reads.
void int4_dequantize(const Int4Linear& w, WeightType t, void* dst, cudaStream_t s);

}  // namespace quest
