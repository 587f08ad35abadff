// The causal attention of a prefill chunk on Hopper (sm_90a, issue #19): FlashAttention-2's
// online softmax with S = Q K^T and O += P V on wgmma. A block of two warpgroups takes 128
// queries of one query head, each warpgroup 64 rows; keys and values stream from the paged
// cache in tiles of 128 through two shared-memory stages (cp.async, all threads). Q and K feed
// wgmma from shared memory, P from registers (the S accumulators packed to the cache's type),
// V from shared memory as an N-major operand, so nothing is transposed by hand; every tile is
// stored in wgmma's 128-byte swizzle, which spreads its reads over the banks.
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "gpu/ops.cuh"
#include "kernels/cuda_util.cuh"
#include "kernels/launch.cuh"
#include "kernels/mma.cuh"
#include "kernels/wgmma.cuh"

#ifndef QUEST_CUDA_ARCHS
#define QUEST_CUDA_ARCHS ""
#endif

namespace quest {
namespace {

constexpr int kGroups = 2, kGroupRows = 64, kRows = kGroups * kGroupRows, kKeys = 128, kThreads = kGroups * 128;

// Q, then two stages of [K | V]; D values a row; 1 KiB to align the swizzle atoms.
template <int D>
constexpr size_t sm90_smem_bytes() {
  return size_t(kRows + 4 * kKeys) * D * 2 + 1024;
}

// Where 16-byte chunk c of row r of an R-row tile lies, in elements, in the layout of
// smem_desc_sw128: 64-column blocks of R rows of 128 bytes, chunks swizzled by the row.
template <int R>
__device__ inline int tile_at(int r, int c) {
  return (c >> 3) * R * 64 + r * 64 + (((c & 7) ^ (r & 7)) << 3);
}

// Starts copying the R rows of a tile; src(r) is row r's address or null for zeros.
template <int D, int R, typename E, typename Src>
__device__ inline void load_tile(E* dst, Src src) {
  constexpr int C = D / 8;
  for (int i = threadIdx.x; i < R * C; i += kThreads) {
    const int r = i / C, c = i % C;
    const E* row = src(r);
    cp_async16(dst + tile_at<R>(r, c), row ? row + c * 8 : nullptr, row != nullptr);
  }
}

template <int D, typename E>
__device__ inline void load_kv(const PagedKv& kv, int g, int64_t p0, int64_t total, E* Ks, E* Vs) {
  const E* k = static_cast<const E*>(kv.k);
  const E* v = static_cast<const E*>(kv.v);
  auto at = [&](int r) -> int64_t {
    const int64_t p = p0 + r;
    return p < total ? ((int64_t(kv.page_table[p / kv.page_size]) * kv.kv_heads + g) * kv.page_size + p % kv.page_size) * D : -1;
  };
  load_tile<D, kKeys>(Ks, [&](int r) { const int64_t o = at(r); return o < 0 ? nullptr : k + o; });
  load_tile<D, kKeys>(Vs, [&](int r) { const int64_t o = at(r); return o < 0 ? nullptr : v + o; });
}

template <int D, typename E>
__global__ void __launch_bounds__(kThreads, 1) flash_prefill_sm90_kernel(const E* __restrict__ q, PagedKv kv, int heads, int rows, int64_t start,
                                                                         float scale_log2, float* __restrict__ out, float* __restrict__ lse) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  constexpr int NT = kKeys / 8, DT = D / 8;
  constexpr uint32_t kBlock = kKeys * 128;  // bytes between the 64-column blocks of a K or V tile
  extern __shared__ __align__(128) unsigned char smem_raw[];
  E* Qs = reinterpret_cast<E*>((reinterpret_cast<uintptr_t>(smem_raw) + 1023) & ~uintptr_t(1023));
  E* KVs = Qs + kRows * D;
  const int h = blockIdx.x;
  const int q0 = (gridDim.y - 1 - blockIdx.y) * kRows;  // the longest tiles start first: they set the launch's tail
  const int g = h / (heads / kv.kv_heads);
  const int group = threadIdx.x / 128, warp = threadIdx.x / 32 % 4, lane = threadIdx.x % 32, gr = lane / 4, t = lane % 4;
  const int64_t total = start + rows;
  const int key_tiles = int((start + min(rows, q0 + kRows) - 1) / kKeys) + 1;
  const int64_t first = start + q0 + group * kGroupRows;  // the position of the warpgroup's first row
  wait_for_previous();

  load_tile<D, kRows>(Qs, [&](int r) { return q0 + r < rows ? q + (size_t(q0 + r) * heads + h) * D : nullptr; });
  load_kv<D, E>(kv, g, 0, total, KVs, KVs + kKeys * D);
  cp_async_commit();

  float o[D / 2];
#pragma unroll
  for (int i = 0; i < D / 2; ++i) o[i] = 0.0f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
  // k-step kk of a K-major operand: 64-column block kk / 4, 32 bytes a step within it.
  auto kstep = [](int kk, uint32_t block) { return uint64_t((kk / 4 * block + kk % 4 * 32) >> 4); };
  const uint64_t qdesc = smem_desc_sw128(Qs + group * kGroupRows * 64, 16, 1024);

  for (int kt = 0; kt < key_tiles; ++kt) {
    const E* Ks = KVs + (kt % 2) * 2 * kKeys * D;
    const E* Vs = Ks + kKeys * D;
    if (kt + 1 < key_tiles) {
      E* next = KVs + ((kt + 1) % 2) * 2 * kKeys * D;
      load_kv<D, E>(kv, g, int64_t(kt + 1) * kKeys, total, next, next + kKeys * D);
    }
    cp_async_commit();
    cp_async_wait<1>();  // this tile's group (and Q) have landed
    fence_proxy_async();
    __syncthreads();
    const int64_t k0 = int64_t(kt) * kKeys;
    if (k0 < first + kGroupRows) {  // else the whole tile lies after every row of the warpgroup
      float s[NT * 4];
#pragma unroll
      for (int i = 0; i < NT * 4; ++i) s[i] = 0.0f;
      const uint64_t kdesc = smem_desc_sw128(Ks, 16, 1024);
      wgmma_fence();
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) wgmma_ss<kKeys, E>(s, qdesc + kstep(kk, kRows * 128), kdesc + kstep(kk, kBlock), kk > 0);
      wgmma_commit();
      wgmma_wait<0>();
      fence_regs(s);

      // Row r of the warpgroup may see keys up to offset first + r - k0 of this tile.
      const bool diagonal = k0 + kKeys - 1 > first;
      const int seen = int(first - k0) + warp * 16 + gr;
      float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
      for (int n = 0; n < NT; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          float& x = s[4 * n + e];
          const bool masked = diagonal && n * 8 + 2 * t + (e & 1) > seen + (e >> 1) * 8;
          x = masked ? -INFINITY : x * scale_log2;
          mx[e >> 1] = fmaxf(mx[e >> 1], x);
        }
      float corr[2], sum[2] = {0.0f, 0.0f};
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 1));
        mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 2));
        // Finite: key 0 of tile 0 precedes every row, so a fully masked row keeps its old max.
        const float m_new = fmaxf(m[i], mx[i]);
        corr[i] = exp2f(m[i] - m_new);
        m[i] = m_new;
      }
#pragma unroll
      for (int i = 0; i < NT * 4; ++i) {
        s[i] = exp2f(s[i] - m[(i >> 1) & 1]);
        sum[(i >> 1) & 1] += s[i];
      }
      // Each thread keeps its own part of the row sums; the quad adds them up at the end.
#pragma unroll
      for (int i = 0; i < 2; ++i) l[i] = l[i] * corr[i] + sum[i];
#pragma unroll
      for (int i = 0; i < D / 2; ++i) o[i] *= corr[(i >> 1) & 1];

      // P's accumulators of keys 16j.., packed to E, are the A fragment of P V's k-step j.
      uint32_t p[kKeys / 16][4];
#pragma unroll
      for (int j = 0; j < kKeys / 16; ++j) {
        p[j][0] = pack2<E>(s[8 * j + 0], s[8 * j + 1]);
        p[j][1] = pack2<E>(s[8 * j + 2], s[8 * j + 3]);
        p[j][2] = pack2<E>(s[8 * j + 4], s[8 * j + 5]);
        p[j][3] = pack2<E>(s[8 * j + 6], s[8 * j + 7]);
      }
      // V as P V's B operand, N-major: its 64-column blocks are N, 16 keys (two atoms) a k-step.
      const uint64_t vdesc = smem_desc_sw128(Vs, kBlock, 1024);
      fence_regs(o);
      wgmma_fence();
#pragma unroll
      for (int j = 0; j < kKeys / 16; ++j) wgmma_rs_bt<D, E>(o, p[j], vdesc + uint64_t(j * 2048 >> 4));
      wgmma_commit();
      wgmma_wait<0>();
      fence_regs(o);
    }
    __syncthreads();  // the next tile's copies overwrite this stage
  }

#pragma unroll
  for (int i = 0; i < 2; ++i) {
    float sum = l[i];
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    const int r = q0 + group * kGroupRows + warp * 16 + gr + i * 8;
    if (r >= rows) continue;
    const float inv = 1.0f / sum;
    float* dst = out + (size_t(r) * heads + h) * D + 2 * t;
#pragma unroll
    for (int n = 0; n < DT; ++n) *reinterpret_cast<float2*>(dst + n * 8) = make_float2(o[4 * n + 2 * i] * inv, o[4 * n + 2 * i + 1] * inv);
    if (lse && t == 0) lse[size_t(r) * heads + h] = (m[i] + __log2f(sum)) * 0.69314718055994531f;
  }
#endif
}

template <int D, typename E>
void launch_sm90(const E* q, const PagedKv& kv, int heads, int rows, int64_t start, float scale, float* out, float* lse, cudaStream_t s) {
  static const bool configured = [] {
    check(cudaFuncSetAttribute(flash_prefill_sm90_kernel<D, E>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(sm90_smem_bytes<D>())),
          "prefill attention (sm_90a) shared memory");
    return true;
  }();
  (void)configured;
  const dim3 grid(heads, (rows + kRows - 1) / kRows);
  check(launch(flash_prefill_sm90_kernel<D, E>, grid, kThreads, sm90_smem_bytes<D>(), s, q, kv, heads, rows, start, scale * 1.4426950408889634f, out,
               lse),
        "prefill attention (sm_90a)");
}

}  // namespace

bool prefill_attention_sm90_serves() {
  static const bool yes = [] {
    if (!std::strstr(QUEST_CUDA_ARCHS, "90a")) return false;
    const char* env = std::getenv("QUEST_PREFILL_ATTENTION");
    if (env && std::strcmp(env, "mma") == 0) return false;
    int dev = 0, major = 0, minor = 0;
    cudaGetDevice(&dev);
    cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev);
    cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev);
    return major == 9 && minor == 0;
  }();
  return yes;
}

void prefill_attention_sm90(const void* q, const PagedKv& kv, int heads, int rows, int64_t start, float scale, float* out, float* lse,
                            cudaStream_t s) {
  with_type_and_dim(kv.type, kv.head_dim, [&](auto t, auto d) {
    launch_sm90<decltype(d)::value>(static_cast<const decltype(t)*>(q), kv, heads, rows, start, scale, out, lse, s);
    return 0;
  });
}

}  // namespace quest
