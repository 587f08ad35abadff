// Built when nvcc is absent: the addon then has the CPU backend only.
#include "engine/devices.h"

namespace quest {

CudaStatus cuda_status() {
  CudaStatus s;
  s.error = "the addon was built without CUDA (no nvcc found at install time)";
  return s;
}

}  // namespace quest
