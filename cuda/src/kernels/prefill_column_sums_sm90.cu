// The prefill's column sums (prefill_column_sums.cu says what they are) on Hopper's wgmma
// (sm_90a, head_dim 64 or 128), key-stationary as there: a block's two warpgroups hold 64 keys
// each of a 128-key tile as the A operand of S^T = K Q^T, the query rows that see them stream
// through two shared-memory stages as its B operand (128 rows a stage, cp.async into the
// 128-byte swizzle), and each key's sum is a row sum of the accumulators. The exponentials, one
// per score as in the attention itself, bound it; the products are half the attention's.
#include <cmath>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "kernels/cuda_util.cuh"
#include "kernels/launch.cuh"
#include "kernels/mma.cuh"
#include "kernels/paged_kv.cuh"
#include "kernels/prefill_attention.cuh"
#include "kernels/reduce.cuh"
#include "kernels/softcap.cuh"
#include "kernels/wgmma.cuh"

namespace quest {
namespace {

constexpr int kKeys = 128, kQueries = 128, kThreads = 256;

// The key tile, two stages of query rows, each 1 KiB aligned for the swizzle, and each
// stage's log-sum-exps in log2 units.
template <int D>
constexpr size_t smem_bytes() {
  return size_t(kKeys + 2 * kQueries) * D * 2 + 2 * kQueries * sizeof(float) + 1024;
}

template <int D, typename E, bool CAP>
__global__ void __launch_bounds__(kThreads, 2)
    column_sums_sm90_kernel(const E* __restrict__ q, PagedKv kv, int heads, int rows, int64_t start, int row_from, float scale_log2,
                            float cap_log2, const float* __restrict__ lse, float* __restrict__ acc, int acc_stride) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  constexpr uint32_t kBlock = 128 * 128;  // bytes between the 64-column blocks of a 128-row tile
  extern __shared__ __align__(128) unsigned char smem_raw[];
  E* Ks = reinterpret_cast<E*>((reinterpret_cast<uintptr_t>(smem_raw) + 1023) & ~uintptr_t(1023));
  E* Qs = Ks + kKeys * D;  // stage i at Qs + i kQueries D
  float* l2s = reinterpret_cast<float*>(Qs + 2 * kQueries * D);  // stage i at l2s + i kQueries
  const int h = blockIdx.x, kvh = h / (heads / kv.kv_heads);
  // Read through a shuffle so that the compiler knows each warp agrees on it (a wgmma on a path
  // it thinks divergent is serialised).
  const int group = __shfl_sync(0xffffffffu, threadIdx.x / 128, 0);
  const int warp = threadIdx.x / 32 % 4, lane = threadIdx.x % 32, gr = lane / 4, t = lane % 4;
  const int64_t key0 = int64_t(blockIdx.y) * kKeys, total = start + rows;
  const int64_t wkey0 = key0 + group * 64 + warp * 16;  // the warp's first key
  const float cap_in = CAP ? scale_log2 / cap_log2 : 0.0f;
  // Rows before key0 - start see none of these keys; the tiles from the one holding the first
  // that does (some row does: key0 < start + rows and row_from < rows).
  const int first = int(max(int64_t(row_from), key0 - start)), q_start = first / kQueries * kQueries;
  const int tiles = (rows - q_start + kQueries - 1) / kQueries;
  wait_for_previous();

  const E* kcache = static_cast<const E*>(kv.k);
  copy_tile<D, kKeys, kThreads>(Ks, [&](int r) -> const E* {
    const int64_t p = key0 + r;
    return p < total ? kcache + kv.row_at(p, kvh, D) : nullptr;
  });
  auto load_queries = [&](int q0, int st) {
    copy_tile<D, kQueries, kThreads>(Qs + st * kQueries * D, [&](int r) -> const E* { return q0 + r < rows ? q + (size_t(q0 + r) * heads + h) * D : nullptr; });
  };
  // Row q0 + threadIdx.x's log-sum-exp in log2 units (threads of the first warpgroup); rows
  // outside [row_from, rows) add nothing: exp2(s - inf) = 0.
  auto row_lse = [&](int q0) {
    const int row = q0 + threadIdx.x;
    return threadIdx.x < kQueries && row >= row_from && row < rows ? lse[size_t(row) * heads + h] * kLog2e : INFINITY;
  };
  load_queries(q_start, 0);
  cp_async_commit();
  if (threadIdx.x < kQueries) l2s[threadIdx.x] = row_lse(q_start);

  const uint64_t kdesc = smem_desc_sw128(Ks + group * 64 * 64, 16, 1024);
  float d[kQueries / 2];
  float sum[2] = {0.0f, 0.0f};  // keys wkey0 + gr and + 8: this thread's part of each
  for (int i = 0; i < tiles; ++i) {
    const int q0 = q_start + i * kQueries, st = i % 2;
    if (i + 1 < tiles) load_queries(q0 + kQueries, 1 - st);
    cp_async_commit();
    // Stored after this tile's products are issued, so that its load's latency hides behind them.
    const float next_l2 = i + 1 < tiles ? row_lse(q0 + kQueries) : 0.0f;
    cp_async_wait<1>();  // this tile (and the keys) have landed
    fence_proxy_async();  // for wgmma's reads
    __syncthreads();
    const uint64_t qdesc = smem_desc_sw128(Qs + st * kQueries * D, 16, 1024);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) wgmma_ss<kQueries, E>(d, kdesc + kstep(kk, kBlock), qdesc + kstep(kk, kBlock), kk > 0);
    wgmma_commit();
    if (i + 1 < tiles && threadIdx.x < kQueries) l2s[(1 - st) * kQueries + threadIdx.x] = next_l2;
    wgmma_wait<0>();
    fence_regs(d);
    // d[4j + e]: key wkey0 + gr + 8 (e / 2), query row q0 + 8j + 2t + e % 2, seen when the key
    // is at or before the row's position.
    const int64_t pos0 = start + q0;
    const float* l2 = l2s + st * kQueries;
    // Only tiles on the diagonal (the warp's last key past the tile's first row) compare; the
    // others take a copy of the loop without them.
    auto add_up = [&](auto masking) {
      const int seen = int(decltype(masking)::value ? pos0 - wkey0 : 0) + 2 * t - gr;  // query offset minus key offset at j = e = 0
#pragma unroll
      for (int j = 0; j < kQueries / 8; ++j) {
        const float2 l = *reinterpret_cast<const float2*>(l2 + 8 * j + 2 * t);
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const bool masked = decltype(masking)::value && seen + 8 * j + (e & 1) - (e >> 1) * 8 < 0;
          const float le = e & 1 ? l.y : l.x;
          const float x = CAP ? soft_cap<CAP>(d[4 * j + e], cap_in, cap_log2) - le : fmaf(d[4 * j + e], scale_log2, -le);
          sum[e >> 1] += masked ? 0.0f : exp2f(x);
        }
      }
    };
    if (wkey0 + 15 > pos0)
      add_up(std::true_type{});
    else
      add_up(std::false_type{});
    __syncthreads();  // the next tile's copies overwrite this stage
  }

  // A key's four parts (lanes t = 0..3 of its row), added into its KV head's sums.
#pragma unroll
  for (int j = 0; j < 2; ++j) {
    const float v = quad_sum(sum[j]);
    const int64_t key = wkey0 + gr + 8 * j;
    if (t == 0 && key < total) atomicAdd(&acc[size_t(kvh) * acc_stride + key], v);
  }
#endif
}

template <int D, typename E>
void launch_sums(const ColumnSums& c, cudaStream_t s) {
  with_cap(c.softcap, [&](auto capped) {
    constexpr auto kernel = column_sums_sm90_kernel<D, E, decltype(capped)::value>;
    check(allow_shared_memory<kernel, smem_bytes<D>()>(), "column sums (sm_90a) shared memory");
    // Heads first: a key tile's blocks, the longest (key 0's) first, start together.
    const dim3 grid(c.heads, unsigned((c.start + c.rows + kKeys - 1) / kKeys));
    check(launch(kernel, grid, kThreads, smem_bytes<D>(), s, static_cast<const E*>(c.q), c.kv, c.heads, c.rows, c.start, c.row_from,
                        c.scale * kLog2e, c.softcap * kLog2e, c.lse, c.acc, c.acc_stride),
          "prefill column sums (sm_90a)");
  });
}

}  // namespace

bool prefill_column_sums_sm90(const ColumnSums& c, cudaStream_t s) {
  if (!prefill_attention_sm90_serves() || !wgmma_head_dim(c.kv.head_dim)) return false;
  with_type_and_dim(c.kv.type, c.kv.head_dim, [&](auto t, auto d) {
    if constexpr (wgmma_head_dim(decltype(d)::value)) launch_sums<decltype(d)::value, decltype(t)>(c, s);
    return 0;
  });
  return true;
}

}  // namespace quest
