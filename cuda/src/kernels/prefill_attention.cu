// The causal attention of a prefill chunk, in FlashAttention-2's scheme (issue #19): a block
// of 4 warps takes 128 queries of one query head, each warp 32 rows (head_dim 256: 64 and 16);
// S = Q K^T and O += P V run on mma.sync m16n8k16 with operands from ldmatrix, the online
// softmax stays in the accumulators' registers, and keys and values stream from the paged cache
// in tiles of 64 (head_dim 256: 32) through two shared-memory stages (cp.async). GQA reads the
// KV head's cache as it lies.
#include <cmath>
#include <stdexcept>

#include "kernels/prefill_attention.cuh"
#include "kernels/gpu_shapes.h"
#include "kernels/cuda_util.cuh"
#include "kernels/launch.cuh"
#include "kernels/mma.cuh"
#include "kernels/reduce.cuh"
#include "kernels/softcap.cuh"
#include "kernels/tile_copy.cuh"

namespace quest {
namespace {

constexpr int kWarps = 4;

// 32 query rows a warp (two m16 tiles sharing every key and value fragment read from shared
// memory): 128 queries a block; 64 keys a tile. Head_dim 256 takes 16 rows a warp and 32 keys
// a tile: two m16 tiles would hold 2 x 32 x 4 = 256 fp32 accumulators of O a thread (255
// registers at most), and (64 + 4 x 32) x 264 x 2 B = 99 KiB of shared memory fits every sm_80+
// card (64 keys: 165 KiB, past an A100's 163).
template <int D>
struct Tile {
  static constexpr int warp_rows = D > 128 ? 16 : 32, rows = warp_rows * kWarps, keys = D > 128 ? 32 : 64;
};

// Shared-memory rows are D + 8 values long: consecutive rows start 16 bytes (head_dim 96: 80)
// apart in the banks, so each 8-row ldmatrix touches every bank once.
template <int D>
constexpr size_t smem_bytes() {
  return size_t(Tile<D>::rows + 4 * Tile<D>::keys) * (D + 8) * 2;
}

// Starts copying keys and values at positions [p0, p0 + kKeys) of KV head g into Ks and Vs
// (zeros past `total`).
template <int D, typename E>
__device__ inline void load_kv(const PagedKv& kv, int g, int64_t p0, int64_t total, E* Ks, E* Vs) {
  copy_cache_rows<D, Tile<D>::keys, kWarps * 32>(kv, g, p0, total, {static_cast<const E*>(kv.k), static_cast<const E*>(kv.v)}, {Ks, Vs});
}

// Scores in log2 units: s * scale_log2, or with CAP soft-capped at cap_log2 (the cap in log2 units).
template <int D, typename E, bool CAP>
__global__ void __launch_bounds__(kWarps * 32) flash_prefill_kernel(const E* __restrict__ q, PagedKv kv, int heads, int rows, int64_t start,
                                                                    float scale_log2, float cap_log2, float* __restrict__ out,
                                                                    float* __restrict__ lse) {
  constexpr int kWarpRows = Tile<D>::warp_rows, kRows = Tile<D>::rows, kKeys = Tile<D>::keys, MT = kWarpRows / 16;
  constexpr int S = D + 8, NT = kKeys / 8, DT = D / 8;
  extern __shared__ __align__(16) unsigned char smem[];
  E* Qs = reinterpret_cast<E*>(smem);
  E* KVs = Qs + kRows * S;  // two stages of [K | V], kKeys rows each
  const int h = blockIdx.x;
  const int q0 = (gridDim.y - 1 - blockIdx.y) * kRows;  // the longest tiles start first: they set the launch's tail
  const int g = h / (heads / kv.kv_heads);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, gr = lane / 4, t = lane % 4;
  const int64_t total = start + rows;
  const int key_tiles = int((start + min(rows, q0 + kRows) - 1) / kKeys) + 1;
  const int64_t first = start + q0 + warp * kWarpRows;  // the position of the warp's first row
  const float cap_in = CAP ? scale_log2 / cap_log2 : 0.0f;
  wait_for_previous();

  copy_query_rows<D, kRows, kWarps * 32>(q, q0, rows, heads, h, Qs);
  load_kv<D, E>(kv, g, 0, total, KVs, KVs + kKeys * S);
  cp_async_commit();

  // Per m-tile mt (the warp's rows 16 mt..): O, and the softmax state of rows gr and gr + 8
  // in log2 units.
  float o[MT][DT][4];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int n = 0; n < DT; ++n) o[mt][n][0] = o[mt][n][1] = o[mt][n][2] = o[mt][n][3] = 0.0f;
  float m[MT][2], l[MT][2];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) m[mt][0] = m[mt][1] = -INFINITY, l[mt][0] = l[mt][1] = 0.0f;

  for (int kt = 0; kt < key_tiles; ++kt) {
    const E* Ks = KVs + (kt % 2) * 2 * kKeys * S;
    const E* Vs = Ks + kKeys * S;
    if (kt + 1 < key_tiles) {
      E* next = KVs + ((kt + 1) % 2) * 2 * kKeys * S;
      load_kv<D, E>(kv, g, int64_t(kt + 1) * kKeys, total, next, next + kKeys * S);
    }
    cp_async_commit();
    cp_async_wait<1>();  // this tile's group (and Q) have landed
    __syncthreads();
    const int64_t k0 = int64_t(kt) * kKeys;
    if (k0 < first + kWarpRows) {  // else the whole tile lies after every row of the warp
      float s[MT][NT][4];
      qk_scores<D, MT, kKeys>(s, Qs, warp * kWarpRows, Ks, S, lane);
      // Row r of the warp may see keys up to offset first + r - k0 of this tile.
      const bool diagonal = k0 + kKeys - 1 > first;
      const int seen = int(first - k0) + gr;
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
        float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
        for (int n = 0; n < NT; ++n)
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const bool masked = diagonal && n * 8 + 2 * t + (e & 1) > seen + mt * 16 + (e >> 1) * 8;
            s[mt][n][e] = masked ? -INFINITY : CAP ? soft_cap<CAP>(s[mt][n][e], cap_in, cap_log2) : s[mt][n][e] * scale_log2;
            mx[e >> 1] = fmaxf(mx[e >> 1], s[mt][n][e]);
          }
        float corr[2], sum[2] = {0.0f, 0.0f};
#pragma unroll
        for (int i = 0; i < 2; ++i) {
          mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 1));
          mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 2));
          // Finite: key 0 of tile 0 precedes every row, so a fully masked row keeps its old max.
          const float m_new = fmaxf(m[mt][i], mx[i]);
          corr[i] = exp2f(m[mt][i] - m_new);
          m[mt][i] = m_new;
        }
#pragma unroll
        for (int n = 0; n < NT; ++n)
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            s[mt][n][e] = exp2f(s[mt][n][e] - m[mt][e >> 1]);
            sum[e >> 1] += s[mt][n][e];
          }
        // Each thread keeps its own part of the row sums; the quad adds them up at the end.
#pragma unroll
        for (int i = 0; i < 2; ++i) l[mt][i] = l[mt][i] * corr[i] + sum[i];
#pragma unroll
        for (int n = 0; n < DT; ++n) {
          o[mt][n][0] *= corr[0];
          o[mt][n][1] *= corr[0];
          o[mt][n][2] *= corr[1];
          o[mt][n][3] *= corr[1];
        }
      }
      // P's accumulators of keys 16j.., packed to E, are the A fragment of P V's k-step j.
#pragma unroll
      for (int j = 0; j < kKeys / 16; ++j) {
        uint32_t a[MT][4];
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
          a[mt][0] = pack2<E>(s[mt][2 * j][0], s[mt][2 * j][1]);
          a[mt][1] = pack2<E>(s[mt][2 * j][2], s[mt][2 * j][3]);
          a[mt][2] = pack2<E>(s[mt][2 * j + 1][0], s[mt][2 * j + 1][1]);
          a[mt][3] = pack2<E>(s[mt][2 * j + 1][2], s[mt][2 * j + 1][3]);
        }
#pragma unroll
        for (int dp = 0; dp < D / 16; ++dp) {
          uint32_t b[4];
          ldmatrix_x4<true>(b, Vs + (j * 16 + lane % 8 + (lane / 8 % 2) * 8) * S + dp * 16 + lane / 16 * 8);
#pragma unroll
          for (int mt = 0; mt < MT; ++mt) {
            mma16816<E>(o[mt][2 * dp], a[mt], b[0], b[1]);
            mma16816<E>(o[mt][2 * dp + 1], a[mt], b[2], b[3]);
          }
        }
      }
    }
    __syncthreads();  // the next tile's copies overwrite this stage
  }

#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const float sum = quad_sum(l[mt][i]);
      const int r = q0 + warp * kWarpRows + mt * 16 + gr + i * 8;
      if (r >= rows) continue;
      const float inv = 1.0f / sum;
      float* dst = out + (size_t(r) * heads + h) * D + 2 * t;
#pragma unroll
      for (int n = 0; n < DT; ++n) *reinterpret_cast<float2*>(dst + n * 8) = make_float2(o[mt][n][2 * i] * inv, o[mt][n][2 * i + 1] * inv);
      if (lse && t == 0) lse[size_t(r) * heads + h] = (m[mt][i] + __log2f(sum)) * kLn2;
    }
}

template <int D, typename E>
void launch_flash(const PrefillArgs& a, cudaStream_t s) {
  with_cap(a.softcap, [&](auto capped) {
    constexpr auto kernel = flash_prefill_kernel<D, E, decltype(capped)::value>;
    check(allow_shared_memory<kernel, smem_bytes<D>()>(), "prefill attention shared memory");
    const dim3 grid(a.heads, (a.rows + Tile<D>::rows - 1) / Tile<D>::rows);
    check(launch(kernel, grid, kWarps * 32, smem_bytes<D>(), s, static_cast<const E*>(a.q), a.kv, a.heads, a.rows, a.start,
                 a.scale * kLog2e, a.softcap * kLog2e, a.out, a.lse),
          "prefill attention");
  });
}

}  // namespace

std::string prefill_attention_path() {
  if (prefill_attention_sm90_serves()) {
    std::string others;  // the head_dims that take mma.sync even here
    for (int d : kGpuHeadDims)
      if (!wgmma_head_dim(d)) others += (others.empty() ? "" : ", ") + std::to_string(d);
    return "flash attention on wgmma (sm_90a; 128 queries x 128 keys a tile, two warpgroups, K and V by TMA; head_dim " + others +
           ": flash attention 2 on mma.sync; QUEST_PREFILL_ATTENTION=mma picks mma.sync)";
  }
  return "flash attention 2 on mma.sync m16n8k16 (128 queries x 64 keys a tile, head_dim 256 64 x 32, online softmax in registers; " +
         prefill_attention_sm90_refusal() + ")";
}

void prefill_attention(const PrefillArgs& a, cudaStream_t s) {
  if (!gpu_head_dim(a.kv.head_dim)) throw std::runtime_error("prefill attention: head_dim must be " + or_list(kGpuHeadDims));
  if (prefill_attention_sm90_serves() && wgmma_head_dim(a.kv.head_dim)) return prefill_attention_sm90(a, s);
  with_type_and_dim(a.kv.type, a.kv.head_dim, [&](auto t, auto d) {
    launch_flash<decltype(d)::value, decltype(t)>(a, s);
    return 0;
  });
}

}  // namespace quest
