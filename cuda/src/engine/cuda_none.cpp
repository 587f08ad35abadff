// Built when nvcc is absent: the addon then has the CPU backend only, and says so.
#include <stdexcept>

#include "engine/devices.h"
#include "kernels/attention_bench.h"

namespace quest {

static const char* kNoCuda = "the addon was built without CUDA (no nvcc found at install time)";

CudaStatus cuda_status() {
  CudaStatus s;
  s.error = kNoCuda;
  return s;
}

AttentionBenchResult bench_attention(const AttentionBenchOptions&) { throw std::runtime_error(kNoCuda); }
AttentionParityResult parity_attention(const AttentionParityOptions&) { throw std::runtime_error(kNoCuda); }

}  // namespace quest
