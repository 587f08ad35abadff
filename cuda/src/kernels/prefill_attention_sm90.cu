// The causal attention of a prefill chunk on Hopper (sm_90a, issue #19), in FlashAttention-3's
// scheme: a block takes 128 queries of one query head. A producer thread streams keys and
// values from the paged cache in tiles of 128 through three shared-memory stages, by the copy
// engine (TMA: a box of one page's 16 rows x 64 columns a copy, written in wgmma's 128-byte
// swizzle; an mbarrier a stage for K, for V and for its release); two consumer warpgroups of
// 64 rows each run S = Q K^T and O += P V on wgmma with the online softmax in registers, and
// take turns at the tensor cores (named barriers), so that one's softmax overlaps the other's
// matrix products; within a turn a warpgroup issues S of tile j and P V of tile j - 1
// together. Q and K feed wgmma from shared memory, P from registers (S's accumulators packed
// to the cache's type), V as an N-major operand, all tiles in the 128-byte swizzle.
#include <cuda.h>
#include <cudaTypedefs.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "kernels/prefill_attention.cuh"
#include "kernels/cuda_util.cuh"
#include "kernels/launch.cuh"
#include "kernels/mma.cuh"
#include "kernels/reduce.cuh"
#include "kernels/softcap.cuh"
#include "kernels/wgmma.cuh"

#ifndef QUEST_CUDA_ARCHS
#define QUEST_CUDA_ARCHS ""
#endif

namespace quest {
namespace {

constexpr int kGroups = 2, kGroupRows = 64, kRows = kGroups * kGroupRows, kKeys = 128, kStages = 3;
constexpr int kThreads = (kGroups + 1) * 128;  // the producer warpgroup first

// Q, the stages of [K | V], 1 KiB to align the swizzle atoms, then the barriers.
template <int D>
constexpr size_t sm90_smem_bytes() {
  return size_t(kRows + 2 * kStages * kKeys) * D * 2 + 1024 + (3 * kStages + 1) * sizeof(uint64_t);
}

// Scores in log2 units: s * scale_log2, or with CAP soft-capped at cap_log2 (the cap in log2 units).
// K and V are read through tensor maps of the cache as [capacity x kv_heads x kGpuPage rows][D].
template <int D, typename E, bool CAP>
__global__ void __launch_bounds__(kThreads, 1)
    flash_prefill_sm90_kernel(const E* __restrict__ q, const __grid_constant__ CUtensorMap kmap, const __grid_constant__ CUtensorMap vmap,
                              PagedKv kv, int heads, int rows, int64_t start, float scale_log2, float cap_log2, float* __restrict__ out,
                              float* __restrict__ lse) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  constexpr int NT = kKeys / 8, DT = D / 8;
  constexpr uint32_t kBlock = kKeys * 128;  // bytes between the 64-column blocks of a K or V tile
  // setmaxnreg's split of the register file: 128 x 40 + 256 x 232 <= 65536 (the consumers'
  // accumulators, P and S need about 200).
  constexpr int kProducerRegs = 40, kConsumerRegs = 232;
  extern __shared__ __align__(128) unsigned char smem_raw[];
  E* Qs = reinterpret_cast<E*>((reinterpret_cast<uintptr_t>(smem_raw) + 1023) & ~uintptr_t(1023));
  E* KVs = Qs + kRows * D;  // stage i: K at KVs + 2 i kKeys D, V after it
  uint64_t* full_k = reinterpret_cast<uint64_t*>(KVs + 2 * kStages * kKeys * D);
  uint64_t* full_v = full_k + kStages;
  uint64_t* empty = full_v + kStages;
  uint64_t* q_full = empty + kStages;
  const int h = blockIdx.x;
  const int q0 = (gridDim.y - 1 - blockIdx.y) * kRows;  // the longest tiles start first: they set the launch's tail
  const int g = h / (heads / kv.kv_heads);
  const int64_t total = start + rows;
  const int key_tiles = int((start + min(rows, q0 + kRows) - 1) / kKeys) + 1;
  if (threadIdx.x == 0) {
    for (int i = 0; i < kStages; ++i) mbar_init(&full_k[i], 1), mbar_init(&full_v[i], 1), mbar_init(&empty[i], kGroups * 128);
    mbar_init(q_full, 128);
  }
  __syncthreads();
  wait_for_previous();

  // The warpgroup, read through a shuffle so that the compiler knows each warp agrees on it: a
  // wgmma on a path it thinks divergent is serialised.
  const int wg = __shfl_sync(0xffffffffu, threadIdx.x / 128, 0);
  if (wg == 0) {  // the producer
    regs_shrink<kProducerRegs>();
    copy_tile<D, kRows, 128>(Qs, [&](int r) { return q0 + r < rows ? q + (size_t(q0 + r) * heads + h) * D : nullptr; });
    mbar_arrive_on_copies(q_full);
    cp_async_wait<0>();
    if (threadIdx.x != 0) return;
    constexpr int kPages = kKeys / kGpuPage;
    constexpr uint32_t kTileBytes = kKeys * D * sizeof(E);
    static_assert(D % 64 == 0 && kKeys % kGpuPage == 0, "a tile's boxes bring exactly kTileBytes, else the stage's mbarrier never completes");
    const int64_t pages = (total + kGpuPage - 1) / kGpuPage;
    for (int kt = 0; kt < key_tiles; ++kt) {
      const int st = kt % kStages;
      // The tile's pages, read together; past the end any page will do (its keys are masked
      // and the pool's values finite, so P = 0 meets no NaN in P V).
      int page[kPages];
#pragma unroll
      for (int i = 0; i < kPages; ++i) page[i] = int64_t(kt) * kPages + i < pages ? kv.page_table[kt * kPages + i] : kv.page_table[0];
      if (kt >= kStages) mbar_wait(&empty[st], (kt / kStages - 1) & 1);  // both consumers are done with tile kt - kStages
      E* Ks = KVs + 2 * st * kKeys * D;
      // Page i's 16 rows are rows 16 i.. of each 64-column block of the tile.
      mbar_expect_bytes(&full_k[st], kTileBytes);
#pragma unroll
      for (int i = 0; i < kPages; ++i)
#pragma unroll
        for (int b = 0; b < D / 64; ++b)
          tma_load_2d(Ks + b * kKeys * 64 + i * kGpuPage * 64, &kmap, b * 64, (page[i] * kv.kv_heads + g) * kGpuPage, &full_k[st]);
      mbar_expect_bytes(&full_v[st], kTileBytes);
#pragma unroll
      for (int i = 0; i < kPages; ++i)
#pragma unroll
        for (int b = 0; b < D / 64; ++b)
          tma_load_2d(Ks + kKeys * D + b * kKeys * 64 + i * kGpuPage * 64, &vmap, b * 64, (page[i] * kv.kv_heads + g) * kGpuPage, &full_v[st]);
    }
    return;
  }

  regs_grow<kConsumerRegs>();
  const int group = wg - 1, warp = threadIdx.x / 32 % 4, lane = threadIdx.x % 32, gr = lane / 4, t = lane % 4;
  const int64_t first = start + q0 + group * kGroupRows;  // the position of the warpgroup's first row
  const float cap_in = CAP ? scale_log2 / cap_log2 : 0.0f;
  float o[D / 2];
#pragma unroll
  for (int i = 0; i < D / 2; ++i) o[i] = 0.0f;
  float s[NT * 4];
  uint32_t p[kKeys / 16][4];
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
  const uint64_t qdesc = smem_desc_sw128(Qs + group * kGroupRows * 64, 16, 1024);
  // Turns at the tensor cores: group 0 goes first; each turn ends by letting the other go.
  const int my_turn = 1 + group, their_turn = 2 - group;
  if (group == 1) named_arrive(their_turn, kGroups * 128);
  mbar_wait(q_full, 0);
  fence_proxy_async();  // Q came by cp.async; K and V by the copy engine, which wgmma sees as is

  // S of tile kt into s (the call is left uncommitted).
  auto issue_s = [&](int kt) {
    const int st = kt % kStages;
    mbar_wait(&full_k[st], (kt / kStages) & 1);
#pragma unroll
    for (int i = 0; i < NT * 4; ++i) s[i] = 0.0f;
    const uint64_t kdesc = smem_desc_sw128(KVs + 2 * st * kKeys * D, 16, 1024);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) wgmma_ss<kKeys, E>(s, qdesc + kstep(kk, kRows * 128), kdesc + kstep(kk, kBlock), kk > 0);
  };
  // O += P V of tile kt, P from p.
  auto issue_pv = [&](int kt) {
    const int st = kt % kStages;
    mbar_wait(&full_v[st], (kt / kStages) & 1);
    // V as P V's B operand, N-major: its 64-column blocks are N, 16 keys (two atoms) a k-step.
    const uint64_t vdesc = smem_desc_sw128(KVs + (2 * st + 1) * kKeys * D, kBlock, 1024);
    fence_regs(o);
    wgmma_fence();
#pragma unroll
    for (int j = 0; j < kKeys / 16; ++j) wgmma_rs_bt<D, E>(o, p[j], vdesc + uint64_t(j * 2048 >> 4));
  };
  // The online softmax of tile kt's scores in s, in place: the new row maxima and the
  // correction of what was summed before.
  auto softmax = [&](int kt, float (&corr)[2]) {
    // Row r of the warpgroup may see keys up to offset first + r - k0 of this tile; a tile
    // wholly after the rows (at most the last) is masked whole. Only the last one or two tiles
    // reach past a row, so the others take a copy of the loop without the mask's compares.
    const int64_t k0 = int64_t(kt) * kKeys;
    const int seen = int(first - k0) + warp * 16 + gr;
    float mx[2] = {-INFINITY, -INFINITY};
    auto scores = [&](auto masking) {
#pragma unroll
      for (int n = 0; n < NT; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          float& x = s[4 * n + e];
          const bool masked = decltype(masking)::value && n * 8 + 2 * t + (e & 1) > seen + (e >> 1) * 8;
          // Uncapped scores stay raw here; their scale is folded into exp2's argument below.
          x = masked ? -INFINITY : CAP ? soft_cap<CAP>(x, cap_in, cap_log2) : x;
          mx[e >> 1] = fmaxf(mx[e >> 1], x);
        }
    };
    if (k0 + kKeys - 1 > first)
      scores(std::true_type{});
    else
      scores(std::false_type{});
    float sum[2] = {0.0f, 0.0f};
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 1));
      mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 2));
      // Finite: key 0 of tile 0 precedes every row, so a fully masked row keeps its old max.
      const float m_new = fmaxf(m[i], CAP ? mx[i] : mx[i] * scale_log2);
      corr[i] = exp2f(m[i] - m_new);
      m[i] = m_new;
    }
#pragma unroll
    for (int i = 0; i < NT * 4; ++i) {
      s[i] = exp2f(CAP ? s[i] - m[(i >> 1) & 1] : fmaf(s[i], scale_log2, -m[(i >> 1) & 1]));  // one FFMA, not FMUL and FADD
      sum[(i >> 1) & 1] += s[i];
    }
    // Each thread keeps its own part of the row sums; the quad adds them up at the end.
#pragma unroll
    for (int i = 0; i < 2; ++i) l[i] = l[i] * corr[i] + sum[i];
  };
  // P of tile kt, packed to E, is the A operand of its P V, k-step j from keys 16j...
  auto pack_p = [&] {
#pragma unroll
    for (int j = 0; j < kKeys / 16; ++j) {
      p[j][0] = pack2<E>(s[8 * j + 0], s[8 * j + 1]);
      p[j][1] = pack2<E>(s[8 * j + 2], s[8 * j + 3]);
      p[j][2] = pack2<E>(s[8 * j + 4], s[8 * j + 5]);
      p[j][3] = pack2<E>(s[8 * j + 6], s[8 * j + 7]);
    }
  };

  // Turn 0: S of tile 0 alone.
  named_sync(my_turn, kGroups * 128);
  issue_s(0);
  wgmma_commit();
  named_arrive(their_turn, kGroups * 128);
  wgmma_wait<0>();
  fence_regs(s);
  {
    float corr[2];
    softmax(0, corr);
  }
  pack_p();
  // Turn kt: S of tile kt with P V of tile kt - 1; no wgmma is issued under a branch (the
  // compiler would wait on the accumulators after every one), and O is touched only after
  // wgmma_wait<0>.
  for (int kt = 1; kt < key_tiles; ++kt) {
    named_sync(my_turn, kGroups * 128);
    issue_s(kt);
    wgmma_commit();
    issue_pv(kt - 1);
    wgmma_commit();
    named_arrive(their_turn, kGroups * 128);
    wgmma_wait<1>();  // S
    fence_regs(s);
    float corr[2];
    softmax(kt, corr);
    wgmma_wait<0>();  // P V
    fence_regs(o);
    mbar_arrive(&empty[(kt - 1) % kStages]);  // tile kt - 1 is no longer read by this warpgroup
    // O so far, with P V of tile kt - 1, takes the new maxima; far into a long row they seldom
    // move, and a warp whose 16 rows kept theirs (corr exactly 1) skips the multiplies.
    if (__any_sync(0xffffffffu, corr[0] != 1.0f || corr[1] != 1.0f)) {
#pragma unroll
      for (int i = 0; i < D / 2; ++i) o[i] *= corr[(i >> 1) & 1];
    }
    pack_p();
  }
  // The last turn: P V of the last tile (group 1 has no one to hand the turn to).
  named_sync(my_turn, kGroups * 128);
  issue_pv(key_tiles - 1);
  wgmma_commit();
  if (group == 0) named_arrive(their_turn, kGroups * 128);
  wgmma_wait<0>();
  fence_regs(o);

#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const float sum = quad_sum(l[i]);
    const int r = q0 + group * kGroupRows + warp * 16 + gr + i * 8;
    if (r >= rows) continue;
    const float inv = 1.0f / sum;
    float* dst = out + (size_t(r) * heads + h) * D + 2 * t;
#pragma unroll
    for (int n = 0; n < DT; ++n) *reinterpret_cast<float2*>(dst + n * 8) = make_float2(o[4 * n + 2 * i] * inv, o[4 * n + 2 * i + 1] * inv);
    if (lse && t == 0) lse[size_t(r) * heads + h] = (m[i] + __log2f(sum)) * kLn2;
  }
#endif
}

// The driver's tensor-map encoder, found at run time (the addon links the runtime only); null
// where the driver lacks it.
PFN_cuTensorMapEncodeTiled_v12000 tensor_map_encoder() {
  static const auto fn = [] {
    void* f = nullptr;
    cudaDriverEntryPointQueryResult found{};
#if CUDART_VERSION >= 12050  // the versioned query first came with CUDA 12.5
    const cudaError_t err = cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000, cudaEnableDefault, &found);
#else
    const cudaError_t err = cudaGetDriverEntryPoint("cuTensorMapEncodeTiled", &f, cudaEnableDefault, &found);
#endif
    if (err != cudaSuccess || found != cudaDriverEntryPointSuccess) f = nullptr;
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(f);
  }();
  return fn;
}

// A layer's K or V cache as rows of D 16-bit values, boxes of one page's rows x 64 columns in
// the 128-byte swizzle (the layout tile_at reads).
CUtensorMap cache_map(const void* base, const PagedKv& kv) {
  if (!tensor_map_encoder()) throw std::runtime_error("prefill attention (sm_90a): the driver has no cuTensorMapEncodeTiled");
  CUtensorMap map;
  const cuuint64_t dims[2] = {cuuint64_t(kv.head_dim), cuuint64_t(kv.capacity) * kv.kv_heads * kGpuPage};
  const cuuint64_t strides[1] = {cuuint64_t(kv.head_dim) * 2};
  const cuuint32_t box[2] = {64, kGpuPage}, steps[2] = {1, 1};
  const CUresult r = tensor_map_encoder()(&map, CU_TENSOR_MAP_DATA_TYPE_UINT16, 2, const_cast<void*>(base), dims, strides, box, steps,
                                          CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                                          CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS) throw std::runtime_error("prefill attention (sm_90a): cuTensorMapEncodeTiled failed (" + std::to_string(int(r)) + ")");
  return map;
}

template <int D, typename E>
void launch_sm90(const PrefillArgs& a, cudaStream_t s) {
  if (a.kv.capacity <= 0) throw std::runtime_error("prefill attention (sm_90a): the cache view has no capacity");
  const CUtensorMap kmap = cache_map(a.kv.k, a.kv), vmap = cache_map(a.kv.v, a.kv);
  with_cap(a.softcap, [&](auto capped) {
    constexpr auto kernel = flash_prefill_sm90_kernel<D, E, decltype(capped)::value>;
    check(allow_shared_memory<kernel, sm90_smem_bytes<D>()>(), "prefill attention (sm_90a) shared memory");
    const dim3 grid(a.heads, (a.rows + kRows - 1) / kRows);
    check(launch(kernel, grid, kThreads, sm90_smem_bytes<D>(), s, static_cast<const E*>(a.q), kmap, vmap, a.kv, a.heads, a.rows, a.start,
                 a.scale * kLog2e, a.softcap * kLog2e, a.out, a.lse),
          "prefill attention (sm_90a)");
  });
}

}  // namespace

const std::string& prefill_attention_sm90_refusal() {
  // Read once; a bad QUEST_PREFILL_ATTENTION throws (and again at each call), naming the value.
  static const std::string why = []() -> std::string {
    const char* env = std::getenv("QUEST_PREFILL_ATTENTION");
    if (env && *env && std::strcmp(env, "mma") != 0)
      throw std::runtime_error(std::string("QUEST_PREFILL_ATTENTION=") + env + ": expected mma or unset");
    if (env && *env) return "QUEST_PREFILL_ATTENTION=mma";
    if (!std::strstr(QUEST_CUDA_ARCHS, "90a")) return "the addon has no sm_90a code";
    int dev = 0, major = 0, minor = 0;
    cudaGetDevice(&dev);
    cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev);
    cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev);
    if (major != 9 || minor != 0) return "the card is not an sm_90";
    return tensor_map_encoder() ? "" : "the driver has no cuTensorMapEncodeTiled";
  }();
  return why;
}

bool prefill_attention_sm90_serves() { return prefill_attention_sm90_refusal().empty(); }

void prefill_attention_sm90(const PrefillArgs& a, cudaStream_t s) {
  with_type_and_dim(a.kv.type, a.kv.head_dim, [&](auto t, auto d) {
    if constexpr (wgmma_head_dim(decltype(d)::value))
      launch_sm90<decltype(d)::value, decltype(t)>(a, s);
    else
      throw std::runtime_error("prefill attention (sm_90a): no wgmma kernel for head_dim " + std::to_string(a.kv.head_dim));
    return 0;
  });
}

}  // namespace quest
