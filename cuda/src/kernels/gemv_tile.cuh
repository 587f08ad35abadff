// What the tensor-core GEMVs (kernels/linear.cu's 16-bit one, gpu/int4.cu's 4-bit one) share: a
// warp owns 16 output rows (mma.sync's A) over its slice of the inputs, a block 8 warps, and
// the slices' partial sums are merged in shared memory by the tile's first warp.
#pragma once
#include <cuda_runtime.h>

#include "kernels/cuda_util.cuh"

namespace quest {

constexpr int kTileWarps = 8, kTileThreads = kTileWarps * 32;
constexpr int kTileRows = 16;  // output rows a warp: an m16n8k16's A is 16 weight rows

// Warps a tile's inputs are split over: the fewest (1, 2, 4 or 8) that give the layer 16
// warps an SM, so the weight stream has enough loads in flight. A function of the shape only:
// a row's sums do not depend on the batch it is in.
inline int gemv_split(int out) {
  static const int sms = [] {
    int dev = 0, n = 1;
    check(cudaGetDevice(&dev), "cudaGetDevice");
    check(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev), "device attributes");
    return n;
  }();
  const int tiles = (out + kTileRows - 1) / kTileRows;
  int ks = 1;
  while (ks < kTileWarps && tiles * ks < 16 * sms) ks *= 2;
  return ks;
}

// Blocks of a layer of `out` rows whose tiles are split over ks warps.
inline int gemv_blocks(int out, int ks) {
  const int per_block = kTileWarps / ks, tiles = (out + kTileRows - 1) / kTileRows;
  return (tiles + per_block - 1) / per_block;
}

// The first output row of this warp's tile, and which slice of its inputs the warp takes.
struct TileSlice {
  int row0, slice;
  __device__ TileSlice(int ks) : row0((blockIdx.x * (kTileWarps / ks) + threadIdx.x / 32 / ks) * kTileRows), slice(threadIdx.x / 32 % ks) {}
};

// The warp's accumulators (m16n8 tiles, NT of them along the batch; C's (g, 2t..2t+1) and
// (g + 8, 2t..2t+1), weight rows by batch rows) merged over the tile's ks slices in the order
// of the slices, plus the bias, written (or added) to y[rows][out]. Every thread of the block
// calls it.
template <int NT>
__device__ inline void store_tile(float (&slices)[kTileWarps][kTileRows][8 * NT], const float (&acc)[NT][4], int ks, int row0, int rows,
                                  int out, const float* __restrict__ bias, float* __restrict__ y, bool accumulate) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
#pragma unroll
  for (int nt = 0; nt < NT; ++nt)
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      slices[warp][g][nt * 8 + 2 * t + j] = acc[nt][j];
      slices[warp][g + 8][nt * 8 + 2 * t + j] = acc[nt][2 + j];
    }
  __syncthreads();
  if (warp % ks != 0) return;
  for (int i = lane; i < kTileRows * rows; i += 32) {
    const int r = i % kTileRows, n = i / kTileRows, o = row0 + r;
    if (o >= out) continue;
    float a = 0.0f;
    for (int k = 0; k < ks; ++k) a += slices[warp + k][r][n];
    const float v = a + (bias ? bias[o] : 0.0f);
    float* yr = y + size_t(n) * out + o;
    *yr = accumulate ? *yr + v : v;
  }
}

}  // namespace quest
