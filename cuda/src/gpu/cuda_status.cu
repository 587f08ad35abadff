// Asks the CUDA runtime for a device. On a machine without a driver the runtime returns
// an error rather than crashing, and the engine falls back to the CPU backend.
#include <cuda_runtime.h>

#include "engine/devices.h"
#include "gpu/gpu_engine.h"
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
  // Each switch's line; a bad QUEST_GEMM or QUEST_PREFILL_ATTENTION is shown here instead, and
  // refused when a model loads (GpuModel), a bad QUEST_DECODE_LANES when a sequence is made.
  auto line = [](auto choose) -> std::string {
    try {
      return choose();
    } catch (const std::exception& e) {
      return e.what();
    }
  };
  s.prefill_attention = line([] { return prefill_attention_path(); });
  s.gemm = line([] { return gemm_choice().why; });
  s.decode_batch = line([] { return decode_batch_path(); });
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
    s.compute_capability = std::to_string(prop.major) + "." + std::to_string(prop.minor);
  }
  return s;
}

}  // namespace quest
