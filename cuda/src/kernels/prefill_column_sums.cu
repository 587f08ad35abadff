// The column sums of a prefill chunk's attention probabilities (H2O's prefill scores), from its
// queries, the cache's keys and each row's log-sum-exp: exp(s * scale - lse) over the rows that
// see a key, added to its KV head's sums. A block of 4 warps takes 64 keys of one query head and
// runs down the query tiles that see them, 128 rows a tile (32 a warp, two m16 tiles sharing each
// key fragment; head_dim 256: 16, within 99 KiB of shared memory): S on mma.sync m16n8k16
// with operands from ldmatrix, as the attention forms it, without P V; the query tiles stream
// through two shared-memory stages (cp.async), and each column's sum stays in registers until
// the block ends.
#include <cmath>
#include <stdexcept>
#include <string>

#include "kernels/cuda_util.cuh"
#include "kernels/gpu_shapes.h"
#include "kernels/launch.cuh"
#include "kernels/mma.cuh"
#include "kernels/prefill_attention.cuh"
#include "kernels/softcap.cuh"
#include "kernels/tile_copy.cuh"

namespace quest {
namespace {

constexpr int kWarps = 4, kKeys = 64;

template <int D>
struct RowTile {
  static constexpr int warp_rows = D > 128 ? 16 : 32, rows = warp_rows * kWarps;
};

// The keys' tile and two stages of query tiles, rows D + 8 values long (each 8-row ldmatrix
// touches every bank once).
template <int D>
constexpr size_t column_sums_smem() {
  return size_t(kKeys + 2 * RowTile<D>::rows) * (D + 8) * 2;
}

// Scores in log2 units, as the attention's: s * scale_log2, or with CAP soft-capped at cap_log2.
template <int D, typename E, bool CAP>
__global__ void __launch_bounds__(kWarps * 32)
    column_sums_kernel(const E* __restrict__ q, PagedKv kv, int heads, int rows, int64_t start, int row_from, float scale_log2,
                       float cap_log2, const float* __restrict__ lse, float* __restrict__ acc, int acc_stride) {
  constexpr int S = D + 8, NT = kKeys / 8, kRows = RowTile<D>::rows, kWarpRows = RowTile<D>::warp_rows, MT = kWarpRows / 16;
  extern __shared__ __align__(16) unsigned char smem[];
  E* Ks = reinterpret_cast<E*>(smem);
  E* Qs = Ks + kKeys * S;  // stage i at Qs + i kRows S
  const int h = blockIdx.x, g = h / (heads / kv.kv_heads);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, gr = lane / 4, t = lane % 4;
  const int64_t key0 = int64_t(blockIdx.y) * kKeys, total = start + rows;
  const float cap_in = CAP ? scale_log2 / cap_log2 : 0.0f;
  // Rows before key0 - start see none of these keys; the tiles from the one holding the first
  // that does (some row does: key0 < start + rows and row_from < rows).
  const int first = int(max(int64_t(row_from), key0 - start)), q_start = first / kRows * kRows;
  const int tiles = (rows - q_start + kRows - 1) / kRows;
  wait_for_previous();

  copy_cache_rows<D, kKeys, kWarps * 32>(kv, g, key0, total, {static_cast<const E*>(kv.k)}, {Ks});
  copy_query_rows<D, kRows, kWarps * 32>(q, q_start, rows, heads, h, Qs);
  cp_async_commit();

  // Column n * 8 + 2 t + j of the tile: this thread's part of its sum (rows gr and gr + 8 of each of its warp's m-tiles).
  float col[NT][2];
#pragma unroll
  for (int n = 0; n < NT; ++n) col[n][0] = col[n][1] = 0.0f;
  for (int i = 0; i < tiles; ++i) {
    const int q0 = q_start + i * kRows;
    const E* Qt = Qs + (i % 2) * kRows * S;
    if (i + 1 < tiles) copy_query_rows<D, kRows, kWarps * 32>(q, q0 + kRows, rows, heads, h, Qs + ((i + 1) % 2) * kRows * S);
    cp_async_commit();
    cp_async_wait<1>();  // this tile (and the keys) have landed
    __syncthreads();
    const int r0 = q0 + warp * kWarpRows;
    const int64_t pos = start + r0;  // the position of the warp's first row
    // Else the warp's rows see none of the keys, or none of them counts.
    if (key0 <= pos + kWarpRows - 1 && r0 < rows && r0 + kWarpRows - 1 >= row_from) {
      // Each row's log-sum-exp in log2 units; rows outside [row_from, rows) add nothing.
      float lse2[MT][2];
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int j = 0; j < 2; ++j) {
          const int r = r0 + mt * 16 + gr + 8 * j;
          lse2[mt][j] = r >= row_from && r < rows ? lse[size_t(r) * heads + h] * kLog2e : INFINITY;
        }
      float s[MT][NT][4];
      qk_scores<D, MT, kKeys>(s, Qt, warp * kWarpRows, Ks, S, lane);
      // Row r of the warp sees keys up to offset pos + r - key0 of the tile.
      const bool diagonal = key0 + kKeys - 1 > pos;
      const int seen = int(pos - key0) + gr;
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int n = 0; n < NT; ++n)
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const bool masked = diagonal && n * 8 + 2 * t + (e & 1) > seen + mt * 16 + (e >> 1) * 8;
            const float l2 = lse2[mt][e >> 1];
            const float x = CAP ? soft_cap<CAP>(s[mt][n][e], cap_in, cap_log2) - l2 : fmaf(s[mt][n][e], scale_log2, -l2);
            col[n][e & 1] += masked ? 0.0f : exp2f(x);
          }
    }
    __syncthreads();  // the next tile's copies overwrite this stage
  }

  // Each column's parts: the warp's 8 row pairs (lanes of one t), then the 4 warps, through
  // the stages' memory (the loop's last barrier is behind every read of it; only empty copy
  // groups are left in flight).
  auto warp_sums = reinterpret_cast<float(*)[kKeys]>(smem);
#pragma unroll
  for (int n = 0; n < NT; ++n)
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      float v = col[n][j];
      v += __shfl_xor_sync(0xffffffffu, v, 4);
      v += __shfl_xor_sync(0xffffffffu, v, 8);
      v += __shfl_xor_sync(0xffffffffu, v, 16);
      if (gr == 0) warp_sums[warp][n * 8 + 2 * t + j] = v;
    }
  __syncthreads();
  const int c = threadIdx.x;
  if (c < kKeys && key0 + c < total) {
    float v = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) v += warp_sums[w][c];
    atomicAdd(&acc[size_t(g) * acc_stride + key0 + c], v);
  }
}

template <int D, typename E>
void launch_column_sums(const ColumnSums& c, cudaStream_t s) {
  with_cap(c.softcap, [&](auto capped) {
    constexpr auto kernel = column_sums_kernel<D, E, decltype(capped)::value>;
    check(allow_shared_memory<kernel, column_sums_smem<D>()>(), "column sums shared memory");
    // Heads first: a key tile's blocks, the longest (key 0's) first, start together.
    const dim3 grid(c.heads, unsigned((c.start + c.rows + kKeys - 1) / kKeys));
    check(launch(kernel, grid, kWarps * 32, column_sums_smem<D>(), s, static_cast<const E*>(c.q), c.kv, c.heads, c.rows, c.start, c.row_from,
                 c.scale * kLog2e, c.softcap * kLog2e, c.lse, c.acc, c.acc_stride),
          "prefill column sums");
  });
}

}  // namespace

void prefill_column_sums(const ColumnSums& c, cudaStream_t s) {
  if (c.row_from >= c.rows) return;
  if (c.kv.page_size != kGpuPage) throw std::runtime_error("prefill column sums: the cache's pages must hold " + std::to_string(kGpuPage) + " tokens");
  if (!gpu_head_dim(c.kv.head_dim)) throw std::runtime_error("prefill column sums: head_dim must be " + or_list(kGpuHeadDims));
  with_type_and_dim(c.kv.type, c.kv.head_dim, [&](auto t, auto d) {
    launch_column_sums<decltype(d)::value, decltype(t)>(c, s);
    return 0;
  });
}

}  // namespace quest
