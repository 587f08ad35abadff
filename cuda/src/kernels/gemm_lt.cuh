// The prefill's linear layers through cuBLASLt (issue #19), where the build found it
// (QUEST_HAVE_CUBLASLT): inputs and weights in the weight type, fp32 accumulation and output,
// the bias and the residual add in its epilogue. Without it, or with QUEST_GEMM=own, the
// engine's own tensor-core GEMM (linear.cu) runs.
#pragma once
#include <cuda_runtime.h>

#include <memory>
#include <string>

#include "kernels/linear.cuh"

namespace quest {

// Which GEMM a prefill's linear layers run on, and why: the line `quest env` prints.
struct GemmChoice {
  bool lt = false;
  std::string why;
};
GemmChoice gemm_choice();

class LtGemm {
 public:
  // The workspace each stream running these GEMMs owns.
  static constexpr size_t kWorkspaceBytes = size_t(32) << 20;
  // Throws naming the cuBLASLt call that failed.
  LtGemm();
  ~LtGemm();
  // y[rows][out] (+)= a[rows][in] W^T + b, a in the weight type; false when cuBLASLt offers
  // no algorithm for the shape (the caller then runs its own GEMM). Safe from several threads.
  bool run(const void* a, int rows, const DeviceLinear& w, WeightType t, float* y, bool accumulate, void* workspace, cudaStream_t s);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace quest
