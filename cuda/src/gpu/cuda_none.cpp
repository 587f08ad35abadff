// Built when nvcc is absent: the addon then has the CPU backend only, and says so.
#include <stdexcept>

#include "engine/devices.h"
#include "gpu/gpu_engine.h"
#include "bench/attention_bench.h"
#include "bench/linear_bench.h"

namespace quest {

static const char* kNoCuda = "the addon was built without CUDA (no nvcc found at install time)";

CudaStatus cuda_status() {
  CudaStatus s;
  s.error = kNoCuda;
  return s;
}

AttentionBenchResult bench_attention(const AttentionBenchOptions&) { throw std::runtime_error(kNoCuda); }
AttentionParityResult parity_attention(const AttentionParityOptions&) { throw std::runtime_error(kNoCuda); }
LinearBenchResult bench_linear(const LinearBenchOptions&) { throw std::runtime_error(kNoCuda); }

class GpuModel {};
std::shared_ptr<GpuModel> upload_model(const Model&, int) { throw std::runtime_error(kNoCuda); }
std::unique_ptr<Decoder> make_gpu_sequence(std::shared_ptr<GpuModel>, const PolicyOptions&) { throw std::runtime_error(kNoCuda); }
void gpu_prefill_shared(const std::vector<Decoder*>&, const int32_t*, int64_t) { throw std::runtime_error(kNoCuda); }
size_t gpu_weight_bytes(const GpuModel&) { return 0; }
double gpu_copy_gbps(int) { throw std::runtime_error(kNoCuda); }

}  // namespace quest
