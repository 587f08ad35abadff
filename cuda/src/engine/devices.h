// What the build and the machine offer: whether the CUDA backend was compiled in, and
// whether a usable GPU is present now.
#pragma once
#include <string>

namespace quest {

struct CudaStatus {
  bool compiled = false;
  std::string architectures;  // as compiled, e.g. "80;90"
  int devices = 0;
  std::string device_name;
  double memory_gib = 0;
  std::string compute_capability;  // of the first device, e.g. "9.0"
  std::string error;  // why no device can be used, when none can
  std::string gemm;               // which GEMM runs a prefill's linear layers, and why
  std::string prefill_attention;  // which kernel runs a prefill's attention
  std::string decode_batch;       // how a decode batch's attention launches
};

CudaStatus cuda_status();

}  // namespace quest
