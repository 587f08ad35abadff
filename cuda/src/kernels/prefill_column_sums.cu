// The column sums of a prefill chunk's attention probabilities (H2O's prefill scores), from its
// queries, the cache's keys and each row's log-sum-exp: exp(s * scale - lse) over the rows that
// see a key, added to its KV head's sums. Key-stationary, as FlashAttention's backward forms dK:
// a block of 4 warps holds 128 keys of one query head (head_dim 256: 64) as mma.sync A
// fragments in registers, 32 a warp, and streams the query rows that see them through two
// shared-memory stages (cp.async) as B operands: S^T = K Q^T, whose rows are the keys, so that
// each key's sum is a row sum kept in the registers of the four lanes that hold it. On sm_90a
// (head_dim 64 and 128) the same scheme on wgmma runs instead (prefill_column_sums_sm90.cu).
#include <cmath>
#include <stdexcept>
#include <string>

#include "kernels/cuda_util.cuh"
#include "kernels/gpu_shapes.h"
#include "kernels/launch.cuh"
#include "kernels/mma.cuh"
#include "kernels/prefill_attention.cuh"
#include "kernels/reduce.cuh"
#include "kernels/softcap.cuh"
#include "kernels/tile_copy.cuh"

namespace quest {
namespace {

constexpr int kWarps = 4;
constexpr int kQueries = 64;  // query rows a stage
constexpr int kChunk = 16;    // query rows a warp's scores hold at once (32 spill at head_dim 128)

template <int D>
struct KeyTile {
  // The A fragments of 32 keys take 64 registers at head_dim 128; at 256, 16 keys do.
  static constexpr int warp_keys = D > 128 ? 16 : 32, keys = warp_keys * kWarps;
};

// Two stages of query rows, D + 8 values apart (each 8-row ldmatrix touches every bank once);
// the keys' tile passes through the same memory first.
template <int D>
constexpr size_t column_sums_smem() {
  static_assert(KeyTile<D>::keys <= 2 * kQueries, "the key tile fits in the stages");
  return size_t(2 * kQueries) * (D + 8) * 2;
}

// Scores in log2 units, as the attention's: s * scale_log2, or with CAP soft-capped at cap_log2.
template <int D, typename E, bool CAP>
__global__ void __launch_bounds__(kWarps * 32, 4)
    column_sums_kernel(const E* __restrict__ q, PagedKv kv, int heads, int rows, int64_t start, int row_from, float scale_log2,
                       float cap_log2, const float* __restrict__ lse, float* __restrict__ acc, int acc_stride) {
  constexpr int S = D + 8, KK = D / 16, NT = kChunk / 8, MT = KeyTile<D>::warp_keys / 16, KB = KeyTile<D>::keys;
  extern __shared__ __align__(16) unsigned char smem[];
  E* stages = reinterpret_cast<E*>(smem);  // stage i at stages + i kQueries S
  const int h = blockIdx.x, kvh = h / (heads / kv.kv_heads);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, gr = lane / 4, t = lane % 4;
  const int64_t key0 = int64_t(blockIdx.y) * KB, total = start + rows, wkey0 = key0 + warp * MT * 16;
  const float cap_in = CAP ? scale_log2 / cap_log2 : 0.0f;
  wait_for_previous();

  copy_cache_rows<D, KB, kWarps * 32>(kv, kvh, key0, total, {static_cast<const E*>(kv.k)}, {stages});
  cp_async_commit();
  cp_async_wait<0>();
  __syncthreads();
  uint32_t a[MT][KK][4];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int kk = 0; kk < KK; ++kk)
      ldmatrix_x4<false>(a[mt][kk], stages + (warp * MT * 16 + mt * 16 + lane % 8 + (lane / 8 % 2) * 8) * S + kk * 16 + lane / 16 * 8);
  __syncthreads();  // the stages' copies overwrite the keys

  // Rows before key0 - start see none of these keys; the tiles from the one holding the first
  // that does (some row does: key0 < start + rows and row_from < rows).
  const int first = int(max(int64_t(row_from), key0 - start)), q_start = first / kQueries * kQueries;
  const int tiles = (rows - q_start + kQueries - 1) / kQueries;
  copy_query_rows<D, kQueries, kWarps * 32>(q, q_start, rows, heads, h, stages);
  cp_async_commit();

  // Key wkey0 + mt 16 + gr + 8 j: this thread's part of its sum (query columns 2t, 2t + 1 of each n-tile).
  float sum[MT][2] = {};
  for (int i = 0; i < tiles; ++i) {
    const int q0 = q_start + i * kQueries;
    const E* Qt = stages + (i % 2) * kQueries * S;
    if (i + 1 < tiles) copy_query_rows<D, kQueries, kWarps * 32>(q, q0 + kQueries, rows, heads, h, stages + ((i + 1) % 2) * kQueries * S);
    cp_async_commit();
    cp_async_wait<1>();  // this tile has landed
    __syncthreads();
#pragma unroll
    for (int c = 0; c < kQueries / kChunk; ++c) {
      const int r0 = q0 + c * kChunk;
      const int64_t pos0 = start + r0;  // the position of the chunk's first row
      // Skip a chunk whose rows all come before the warp's keys, or none of which counts.
      if (wkey0 > pos0 + kChunk - 1 || r0 >= rows || r0 + kChunk - 1 < row_from) continue;
      // Each column's log-sum-exp in log2 units; rows outside [row_from, rows) add nothing.
      float l2[NT][2];
#pragma unroll
      for (int n = 0; n < NT; ++n)
#pragma unroll
        for (int j = 0; j < 2; ++j) {
          const int r = r0 + n * 8 + 2 * t + j;
          l2[n][j] = r >= row_from && r < rows ? __ldg(lse + size_t(r) * heads + h) * kLog2e : INFINITY;
        }
      float s[MT][NT][4] = {};
#pragma unroll
      for (int kk = 0; kk < KK; ++kk)
#pragma unroll
        for (int np = 0; np < NT / 2; ++np) {
          uint32_t b[4];
          ldmatrix_x4<false>(b, Qt + (c * kChunk + np * 16 + lane % 8 + lane / 16 * 8) * S + kk * 16 + (lane / 8 % 2) * 8);
#pragma unroll
          for (int mt = 0; mt < MT; ++mt) {
            mma16816<E>(s[mt][2 * np], a[mt][kk], b[0], b[1]);
            mma16816<E>(s[mt][2 * np + 1], a[mt][kk], b[2], b[3]);
          }
        }
      // Key k is seen by the row at position p when k <= p; only the chunks on the diagonal compare.
      const bool diagonal = wkey0 + MT * 16 - 1 > pos0;
      const int seen = int(pos0 - wkey0) + 2 * t - gr;  // query offset minus key offset, at n = mt = e = 0
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int n = 0; n < NT; ++n)
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const bool masked = diagonal && seen + n * 8 + (e & 1) - mt * 16 - (e >> 1) * 8 < 0;
            const float l = l2[n][e & 1];
            const float x = CAP ? soft_cap<CAP>(s[mt][n][e], cap_in, cap_log2) - l : fmaf(s[mt][n][e], scale_log2, -l);
            sum[mt][e >> 1] += masked ? 0.0f : exp2f(x);
          }
    }
    __syncthreads();  // the next tile's copies overwrite this stage
  }

  // A key's four parts (lanes t = 0..3 of its row), added into its KV head's sums.
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      const float v = quad_sum(sum[mt][j]);
      const int64_t key = wkey0 + mt * 16 + gr + 8 * j;
      if (t == 0 && key < total) atomicAdd(&acc[size_t(kvh) * acc_stride + key], v);
    }
}

template <int D, typename E>
void launch_column_sums(const ColumnSums& c, cudaStream_t s) {
  with_cap(c.softcap, [&](auto capped) {
    constexpr auto kernel = column_sums_kernel<D, E, decltype(capped)::value>;
    check(allow_shared_memory<kernel, column_sums_smem<D>()>(), "column sums shared memory");
    // Heads first: a key tile's blocks, the longest (key 0's) first, start together.
    const dim3 grid(c.heads, unsigned((c.start + c.rows + KeyTile<D>::keys - 1) / KeyTile<D>::keys));
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
  if (prefill_column_sums_sm90(c, s)) return;
  with_type_and_dim(c.kv.type, c.kv.head_dim, [&](auto t, auto d) {
    launch_column_sums<decltype(d)::value, decltype(t)>(c, s);
    return 0;
  });
}

}  // namespace quest
