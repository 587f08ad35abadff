// The token embedding and rotary position embedding (RoPE) on the GPU; rope_store also writes
// the keys and values into the paged cache. Each call queues work on `stream` and throws on a
// launch error.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/linear.cuh"
#include "kernels/paged_kv.cuh"

namespace quest {

void embed(const void* table, WeightType t, int dim, const int32_t* tokens, int rows, float* y, cudaStream_t stream);

// The RoPE angles of `rows` tokens at positions start..: trig = [rows][cos (half) | sin (half)],
// the angle formed in fp32 as transformers does, its sine and cosine in double. Once a
// forward pass; every layer's rope_store reads them.
void rope_angles(int rows, int64_t start, const float* inv_freq, int half, float* trig, cudaStream_t stream);

// Rotates q and k of `rows` tokens at positions start.. (rotate-half RoPE) from qkv =
// [rows][q | k | v]; writes q to q_out [rows][heads][head_dim] and k, v into the paged cache,
// both in the cache's type. One row (a decode step) also folds its key into its Quest page's
// min/max, where the cache keeps them (kv.kmin not null); a prefill recomputes them after (page_minmax).
void rope_store(const float* qkv, int rows, int heads, int64_t start, const float* trig, void* q_out, const PagedKv& kv, cudaStream_t stream);

// A decode batch's rows: row r is a token of its own sequence, at position pos[r] of its own
// cache kv[r] (all of one type and shape).
struct RopeLanes {
  int rows = 0;  // at most kLanes
  PagedKv kv[kLanes];
  int64_t pos[kLanes] = {};
};

// rope_store of each row as a one-row call on its own sequence (qkv, trig and q_out a row each, in
// order): the same values, one launch.
void rope_store_lanes(const float* qkv, int heads, const RopeLanes& lanes, const float* trig, void* q_out, cudaStream_t stream);

}  // namespace quest
