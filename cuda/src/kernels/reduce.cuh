// Warp and block reductions shared by the kernels.
#pragma once
#include <cfloat>

namespace quest {

__device__ inline float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ inline float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// The sum (or max) over the block, returned to every thread; `partial` holds 32 floats.
template <bool MAX>
__device__ inline float block_reduce(float v, float* partial) {
  v = MAX ? warp_max(v) : warp_sum(v);
  if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = v;
  __syncthreads();
  const float none = MAX ? -FLT_MAX : 0.0f;
  v = threadIdx.x % 32 < blockDim.x / 32 ? partial[threadIdx.x % 32] : none;  // every warp reduces the partials
  v = MAX ? warp_max(v) : warp_sum(v);
  __syncthreads();
  return v;
}

__device__ inline float block_sum(float v, float* partial) { return block_reduce<false>(v, partial); }
__device__ inline float block_max(float v, float* partial) { return block_reduce<true>(v, partial); }

}  // namespace quest
