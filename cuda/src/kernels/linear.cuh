// The linear layers on the GPU: the engine's own GEMV (a decode step's one row) and
// tensor-core GEMM (a prefill's rows), their input row built as it is loaded (RMS norm or
// SwiGLU folded in), and the weights' conversion to their 16-bit type. Activations are fp32 on
// the device; weights are fp16 or bf16 (the checkpoint's 16-bit type; fp16 for fp32
// checkpoints) and every product accumulates in fp32. The GEMV runs on tensor cores with its
// input row as two 16-bit parts (hi + lo: about fp32's precision, where the GEMM rounds its
// input to the weight type). Each call queues work on `stream` and throws on a launch error.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>

#include "kernels/half_types.cuh"

namespace quest {

using WeightType = HalfType;

// What a linear layer reads as its input row, built as it is loaded (no kernel of its own):
//   Plain    x as it is, [rows][in];
//   RmsNorm  x scaled by 1 / rms(x): the norm's weight is folded into W's columns at upload;
//   SwiGlu   silu(gate) * up from x = [rows][gate (in) | up (in)].
struct LinearInput {
  enum Kind { Plain, RmsNorm, SwiGlu };
  const float* x = nullptr;
  Kind kind = Plain;
  float eps = 0;
  float* row_scale = nullptr;  // RmsNorm over several rows: scratch of one float a row
};

// y[rows][out] = input W^T + b, W [out][in] as nn.Linear stores it; with `accumulate`,
// y += instead (the residual add). One row is a GEMV; more rows use a tensor-core GEMM
// whose inputs are rounded to the weight type. `in` must be a multiple of 32.
struct DeviceLinear {
  const void* w = nullptr;
  const float* b = nullptr;
  int in = 0, out = 0;
};
void linear(const LinearInput& x, int rows, const DeviceLinear& w, WeightType t, float* y, bool accumulate, cudaStream_t stream);

// The same as `rows` calls of linear() on one row each, bit for bit, the weights read once for
// every 16 rows: a decode batch's rows (issue #20). `staged` is scratch of 2 x rows x w.in
// values of the weight type, where the rows are built once (norm, SwiGLU).
void linear_rows(const LinearInput& x, int rows, const DeviceLinear& w, WeightType t, float* y, bool accumulate, void* staged,
                 cudaStream_t stream);

// Writes x's rows as the linear layer reads them (norm or SwiGLU applied), times col_scale by
// column where given, in the weight type, [rows][in]: the input of a cuBLASLt GEMM
// (gemm_lt.cuh) and of the 4-bit GEMV (gpu/int4.cuh, col_scale its in_scale).
void stage_input(const LinearInput& x, int rows, int in, WeightType t, void* dst, cudaStream_t stream, const float* col_scale = nullptr);

// Converts n fp32 values to the weight type (weights are uploaded as fp32, converted on the
// device); sets the device int *nonfinite to 1 when a converted value is NaN or Inf.
void to_weight_type(const float* src, void* dst, WeightType t, size_t n, int* nonfinite, cudaStream_t stream);

}  // namespace quest
