// Asks the CUDA runtime for a device. On a machine without a driver the runtime returns
// an error rather than crashing, and the engine falls back to the CPU backend.
#include <cuda_runtime.h>

#include "engine/devices.h"
#include "kernels/gemm_lt.cuh"
#include "kernels/prefill_attention.cuh"

#ifndef QUEST_CUDA_ARCHS
#define QUEST_CUDA_ARCHS "unknown"
#endif

namespace quest {

CudaStatus cuda_status() {
  CudaStatus s;
  s.compiled = true;
  s.architectures = QUEST_CUDA_ARCHS;
  // A bad QUEST_GEMM or QUEST_PREFILL_ATTENTION is shown here, and refused when a model loads (GpuModel).
  try {
    s.prefill_attention = prefill_attention_path();
  } catch (const std::exception& e) {
    s.prefill_attention = e.what();
  }
  try {
    s.gemm = gemm_choice().why;
  } catch (const std::exception& e) {
    s.gemm = e.what();
  }
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    s.error = cudaGetErrorString(err);
    cudaGetLastError();
    return s;
  }
  s.devices = count;
  if (count == 0) {
    s.error = "no CUDA device";
    return s;
  }
  cudaDeviceProp prop;
  if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess) {
    s.device_name = prop.name;
    s.memory_gib = double(prop.totalGlobalMem) / (1024.0 * 1024.0 * 1024.0);
  }
  return s;
}

}  // namespace quest
