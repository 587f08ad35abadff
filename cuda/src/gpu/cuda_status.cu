// Asks the CUDA runtime for a device. On a machine without a driver the runtime returns
// an error rather than crashing, and the engine falls back to the CPU backend.
#include <cuda_runtime.h>

#include "engine/devices.h"
#include "gpu/gpu_model.cuh"
#include "gpu/int4.cuh"
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
  // A bad QUEST_GEMM, QUEST_PREFILL_ATTENTION, QUEST_INT4_GEMV or QUEST_BATCH_STREAMS is shown
  // here, and refused when a model loads (GpuModel).
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
  try {
    s.int4_gemv = int4_gemv_choice().why;
  } catch (const std::exception& e) {
    s.int4_gemv = e.what();
  }
  try {
    s.batch_streams = batch_streams_choice().why;
  } catch (const std::exception& e) {
    s.batch_streams = e.what();
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
