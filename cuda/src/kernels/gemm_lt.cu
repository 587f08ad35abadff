#include "kernels/gemm_lt.cuh"

#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <stdexcept>
#include <tuple>

#ifdef QUEST_HAVE_CUBLASLT
#include <cublasLt.h>
#endif

namespace quest {

GemmChoice gemm_choice() {
#ifndef QUEST_HAVE_CUBLASLT
  return {false, "own tensor-core GEMM (the addon was built without cuBLASLt: the CUDA toolkit at build time had none)"};
#else
  const char* env = std::getenv("QUEST_GEMM");
  if (env && std::strcmp(env, "own") == 0) return {false, "own tensor-core GEMM (QUEST_GEMM=own)"};
  if (env && *env && std::strcmp(env, "cublaslt") != 0)
    throw std::runtime_error(std::string("QUEST_GEMM=") + env + ": expected own or cublaslt");
  const size_t v = cublasLtGetVersion();
  return {true, "cuBLASLt " + std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) +
                    " (16-bit inputs, fp32 accumulation; QUEST_GEMM=own picks the engine's own)"};
#endif
}

#ifndef QUEST_HAVE_CUBLASLT

struct LtGemm::Impl {};
LtGemm::LtGemm() { throw std::runtime_error("cuBLASLt: the addon was built without it"); }
LtGemm::~LtGemm() = default;
bool LtGemm::run(const void*, int, const DeviceLinear&, WeightType, float*, bool, void*, cudaStream_t) { return false; }

#else

namespace {

void lt_check(cublasStatus_t st, const char* what) {
  if (st != CUBLAS_STATUS_SUCCESS) throw std::runtime_error(std::string("cuBLASLt ") + what + ": status " + std::to_string(int(st)));
}

// One GEMM shape's descriptors and the algorithm the heuristic chose for it.
struct Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
  bool found = false;
};

}  // namespace

struct LtGemm::Impl {
  cublasLtHandle_t handle = nullptr;
  std::mutex mu;
  // (rows, in, out, bias, bf16) -> plan; accumulate changes only beta.
  std::map<std::tuple<int, int, int, bool, bool>, Plan> plans;

  ~Impl() {
    for (auto& [key, p] : plans) {
      if (p.desc) cublasLtMatmulDescDestroy(p.desc);
      for (auto l : {p.a, p.b, p.c})
        if (l) cublasLtMatrixLayoutDestroy(l);
    }
    if (handle) cublasLtDestroy(handle);
  }

  // Row-major y[rows][out] = x[rows][in] W[out][in]^T is, column-major, y^T (out x rows) =
  // op(W) (W^T stored as in x out, transposed) times x^T (in x rows): the TN form. Under mu.
  const Plan& plan(int rows, int in, int out, bool bias, bool bf16) {
    Plan& p = plans[{rows, in, out, bias, bf16}];
    if (p.desc) return p;
    const cudaDataType_t t = bf16 ? CUDA_R_16BF : CUDA_R_16F;
    lt_check(cublasLtMatmulDescCreate(&p.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), "matmul descriptor");
    const cublasOperation_t tr = CUBLAS_OP_T, nt = CUBLAS_OP_N;
    lt_check(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, &tr, sizeof(tr)), "transpose A");
    lt_check(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, &nt, sizeof(nt)), "transpose B");
    const cublasLtEpilogue_t epi = bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
    lt_check(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)), "epilogue");
    lt_check(cublasLtMatrixLayoutCreate(&p.a, t, in, out, in), "layout of W");
    lt_check(cublasLtMatrixLayoutCreate(&p.b, t, in, rows, in), "layout of x");
    lt_check(cublasLtMatrixLayoutCreate(&p.c, CUDA_R_32F, out, rows, out), "layout of y");
    cublasLtMatmulPreference_t pref;
    lt_check(cublasLtMatmulPreferenceCreate(&pref), "preference");
    const size_t ws = kWorkspaceBytes;
    lt_check(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)), "workspace");
    cublasLtMatmulHeuristicResult_t result{};
    int found = 0;
    // The same algorithm serves beta 0 and 1 (the heuristic does not look at beta).
    const cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(handle, p.desc, p.a, p.b, p.c, p.c, pref, 1, &result, &found);
    cublasLtMatmulPreferenceDestroy(pref);
    p.found = st == CUBLAS_STATUS_SUCCESS && found > 0;
    if (p.found) p.algo = result.algo;
    return p;
  }
};

LtGemm::LtGemm() : impl_(std::make_unique<Impl>()) { lt_check(cublasLtCreate(&impl_->handle), "handle"); }
LtGemm::~LtGemm() = default;

bool LtGemm::run(const void* a, int rows, const DeviceLinear& w, WeightType t, float* y, bool accumulate, void* workspace, cudaStream_t s) {
  // Under the lock until enqueued: the plan (and its bias pointer) is shared by every caller.
  std::lock_guard<std::mutex> lock(impl_->mu);
  const Plan& p = impl_->plan(rows, w.in, w.out, w.b != nullptr, t == WeightType::BF16);
  if (!p.found) return false;
  if (w.b) lt_check(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &w.b, sizeof(w.b)), "bias");
  const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
  // y is C and D at once (the residual add in place: same layout, as cuBLASLt requires).
  lt_check(cublasLtMatmul(impl_->handle, p.desc, &alpha, w.w, p.a, a, p.b, &beta, y, p.c, y, p.c, &p.algo, workspace, kWorkspaceBytes, s),
           "matmul");
  return true;
}

#endif

}  // namespace quest
