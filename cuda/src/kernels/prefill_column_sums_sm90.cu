// The prefill's column sums (prefill_column_sums.cu says what they are) on Hopper's wgmma
// (sm_90a, head_dim 64 or 128), key-stationary as there: a block's two warpgroups hold 64 keys
// each of a 128-key tile as the A operand of S^T = K Q^T, the query rows that see them stream
// through four shared-memory stages as its B operand (64 rows a stage, cp.async into the
// 128-byte swizzle, three tiles ahead), and each key's sum is a row sum of the accumulators.
// The exponentials, one per score as in the attention itself, are as costly as the products:
// a warpgroup issues the next tile's products before it takes this tile's exponentials, into
// the other of two accumulator sets, so that the tensor cores and the exponentials' unit
// work at once.
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

constexpr int kKeys = 128, kQueries = 64, kStages = 4, kThreads = 256;

// The key tile, the stages of query rows, each 1 KiB aligned for the swizzle, and each
// stage's log-sum-exps in log2 units.
template <int D>
constexpr size_t smem_bytes() {
  return size_t(kKeys + kStages * kQueries) * D * 2 + kStages * kQueries * sizeof(float) + 1024;
}

template <int D, typename E, bool CAP>
__global__ void __launch_bounds__(kThreads, 2)
    column_sums_sm90_kernel(const E* __restrict__ q, PagedKv kv, int heads, int rows, int64_t start, int row_from, float scale_log2,
                            float cap_log2, const float* __restrict__ lse, float* __restrict__ acc, int acc_stride) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  // Bytes between the 64-column blocks of the key tile and of a stage.
  constexpr uint32_t kKeyBlock = kKeys * 128, kQueryBlock = kQueries * 128;
  extern __shared__ __align__(128) unsigned char smem_raw[];
  E* Ks = reinterpret_cast<E*>((reinterpret_cast<uintptr_t>(smem_raw) + 1023) & ~uintptr_t(1023));
  E* Qs = Ks + kKeys * D;  // stage s at Qs + s kQueries D
  float* l2s = reinterpret_cast<float*>(Qs + kStages * kQueries * D);  // stage s at l2s + s kQueries
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
  // An even count (at least two), so that the tiles pair up; a tile past the rows adds nothing.
  const int tiles = ((rows - q_start + kQueries - 1) / kQueries + 1) / 2 * 2;
  wait_for_previous();

  const E* kcache = static_cast<const E*>(kv.k);
  copy_tile<D, kKeys, kThreads>(Ks, [&](int r) -> const E* {
    const int64_t p = key0 + r;
    return p < total ? kcache + kv.row_at(p, kvh, D) : nullptr;
  });
  // Tile i's rows into stage i % kStages, one cp.async group whether or not there is a tile i,
  // so that the count of groups after a tile's is the same at every wait.
  auto load_queries = [&](int i) {
    const int q0 = q_start + i * kQueries;
    if (i < tiles)
      copy_tile<D, kQueries, kThreads>(Qs + i % kStages * kQueries * D,
                                       [&](int r) -> const E* { return q0 + r < rows ? q + (size_t(q0 + r) * heads + h) * D : nullptr; });
    cp_async_commit();
  };
  // Tile i's row threadIdx.x's log-sum-exp in log2 units (threads of the first warpgroup); rows
  // outside [row_from, rows) add nothing: exp2(s - inf) = 0.
  auto row_lse = [&](int i) {
    const int row = q_start + i * kQueries + threadIdx.x;
    return threadIdx.x < kQueries && row >= row_from && row < rows ? lse[size_t(row) * heads + h] * kLog2e : INFINITY;
  };
  for (int i = 0; i < kStages - 1; ++i) {
    load_queries(i);  // the keys go with tile 0's group
    if (threadIdx.x < kQueries) l2s[i * kQueries + threadIdx.x] = row_lse(i);
  }

  const uint64_t kdesc = smem_desc_sw128(Ks + group * 64 * 64, 16, 1024);
  auto products = [&](float (&d)[kQueries / 2], int i) {
    const uint64_t qdesc = smem_desc_sw128(Qs + i % kStages * kQueries * D, 16, 1024);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) wgmma_ss<kQueries, E>(d, kdesc + kstep(kk, kKeyBlock), qdesc + kstep(kk, kQueryBlock), kk > 0);
    wgmma_commit();
  };
  float sum[2] = {0.0f, 0.0f};  // keys wkey0 + gr and + 8: this thread's part of each
  // d[4j + e]: key wkey0 + gr + 8 (e / 2), query row q0 + 8j + 2t + e % 2, seen when the key is
  // at or before the row's position.
  auto add_up = [&](const float (&d)[kQueries / 2], int i, auto masking) {
    const int64_t pos0 = start + q_start + i * kQueries;
    const float* l2 = l2s + i % kStages * kQueries;
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
  // Only tiles on the diagonal (the warp's last key past the tile's first row) compare; the
  // others take a copy of the loop without them.
  auto exponentials = [&](const float (&d)[kQueries / 2], int i) {
    if (wkey0 + 15 > start + q_start + i * kQueries)
      add_up(d, i, std::true_type{});
    else
      add_up(d, i, std::false_type{});
  };
  // Tile i, whose products are in `now`: tile i + 1's go into `next` while this tile's
  // exponentials are taken, and are waited for at the end, so that none is in flight across
  // the loop's back edge (ptxas would then serialise them all). The barrier first also frees
  // stage (i - 1) % kStages (both warpgroups are past its products and exponentials) for
  // tile i + 3.
  auto step = [&](const float (&now)[kQueries / 2], float (&next)[kQueries / 2], int i) {
    cp_async_wait<kStages - 3>();  // tile i + 1 has landed
    fence_proxy_async();           // for wgmma's reads
    __syncthreads();
    products(next, i + 1);
    load_queries(i + kStages - 1);
    const float next_l2 = row_lse(i + kStages - 1);
    exponentials(now, i);
    fence_regs(sum);  // the exponentials before the wait, not sunk below it
    wgmma_wait<0>();
    fence_regs(next);
    // Stored after the exponentials, by which time its load has landed.
    if (threadIdx.x < kQueries) l2s[(i + kStages - 1) % kStages * kQueries + threadIdx.x] = next_l2;
  };

  // No wgmma is issued under a branch (ptxas would then wait on the accumulators after every
  // one): the tiles come in pairs, the last pair peeled.
  float d0[kQueries / 2], d1[kQueries / 2];
  cp_async_wait<kStages - 2>();  // the keys and tile 0 have landed
  fence_proxy_async();
  __syncthreads();
  products(d0, 0);
  wgmma_wait<0>();
  fence_regs(d0);
  for (int i = 0; i < tiles - 2; i += 2) {
    step(d0, d1, i);
    step(d1, d0, i + 1);
  }
  step(d0, d1, tiles - 2);
  exponentials(d1, tiles - 1);

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
