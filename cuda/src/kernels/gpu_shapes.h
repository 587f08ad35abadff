// The attention shapes the GPU kernels are instantiated for, stated once (plain C++, so the
// binding reads them too): the kernels' dispatch (half_types.cuh, decode_common.cuh) asserts
// against them, and the model upload (gpu/gpu_model.cu), the prefill column sums and the CLI
// (through the addon's backendInfo) check them. The cache's element type is the other GPU rule:
// fp16 or bf16, never fp32, refused once for every caller by kvDtype's gpu_refuses
// (policy/registry.cpp).
#pragma once
#include <cstddef>
#include <string>

namespace quest {

constexpr int kGpuHeadDims[] = {64, 96, 128, 256};
constexpr int kGpuGroups[] = {1, 2, 4, 8};  // query heads per KV head
// Input rows the 4-bit GEMV takes (a decode step, gpu/int4.cuh); a prefill dequantizes and runs the GEMM.
constexpr int kInt4GemvRows = 8;

constexpr bool gpu_head_dim(int head_dim) {
  for (int d : kGpuHeadDims)
    if (d == head_dim) return true;
  return false;
}

constexpr bool gpu_group(int group) {
  for (int g : kGpuGroups)
    if (g == group) return true;
  return false;
}

// The values as a sentence lists them: "1, 2, 4 or 8".
template <size_t N>
std::string or_list(const int (&values)[N]) {
  std::string s;
  for (size_t i = 0; i < N; ++i) s += (i == 0 ? "" : i + 1 == N ? " or " : ", ") + std::to_string(values[i]);
  return s;
}

// Why the GPU kernels cannot serve `heads` query heads over `kv_heads` KV heads of `head_dim`,
// or "" when they can.
inline std::string gpu_shape_refusal(int heads, int kv_heads, int head_dim) {
  if (!gpu_head_dim(head_dim)) return "head_dim must be " + or_list(kGpuHeadDims);
  if (kv_heads < 1 || heads % kv_heads != 0 || !gpu_group(heads / kv_heads)) return "query heads per KV head must be " + or_list(kGpuGroups);
  return "";
}

}  // namespace quest
