#include "gpu/int4.cuh"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "kernels/cuda_util.cuh"
#include "kernels/half_types.cuh"
#include "kernels/gemv_tile.cuh"
#include "kernels/launch.cuh"
#include "kernels/mma.cuh"

namespace quest {

namespace {

// Input n of a word sits at nibble (n % 2) * 4 + n / 2: inputs 2j and 2j+1 are nibbles j and
// j + 4, which one mask puts in the two halves of a half2 (add_chunk).
__host__ __device__ constexpr int nibble_slot(int n) { return (n % 2) * 4 + n / 2; }

}  // namespace

size_t Int4Linear::bytes() const {
  return size_t(out) * in / 2 + size_t(out) * (in / group) * sizeof(__half2) + (in_scale ? size_t(in) * sizeof(float) : 0);
}

bool int4_gemv_on_tensor_cores(int in, int out, int group) {
  const int per_group = group / 32;
  return in >= 2 * out && (per_group & (per_group - 1)) == 0;
}

Int4Linear upload_int4(const QuantSpec& q, std::initializer_list<const PackedLinear*> parts, const std::vector<float>& in_scale,
                       const std::function<void*(size_t)>& alloc) {
  Int4Linear w;
  w.in = (*parts.begin())->in;
  w.group = (*parts.begin())->group;
  for (const PackedLinear* p : parts) {
    if (p->in != w.in || p->group != w.group) throw std::runtime_error("4-bit layers stacked on the GPU must share their input size and group");
    w.out += p->out;
  }
  if (w.in % 32 || w.group % 32) throw std::runtime_error("the GPU's 4-bit layers need inputs and groups in multiples of 32");
  w.mma = int4_gemv_on_tensor_cores(w.in, w.out, w.group);
  const int words = w.in / 8, groups = w.in / w.group;
  std::vector<uint32_t> qw(size_t(w.out) * words);
  std::vector<__half2> sz(size_t(w.out) * groups);
  static const int slots[8] = {nibble_slot(0), nibble_slot(1), nibble_slot(2), nibble_slot(3),
                               nibble_slot(4), nibble_slot(5), nibble_slot(6), nibble_slot(7)};
  size_t row = 0;
  for (const PackedLinear* p : parts) {
    const Int4Rows r = int4_rows(q, *p, slots);
    std::copy(r.words.begin(), r.words.end(), qw.begin() + row * words);
    // The zero (at most 16, GPTQ v1's 15 + 1) is exact in fp16; fp16 scales stay exact.
    for (int o = 0; o < p->out; ++o)
      for (int g = 0; g < groups; ++g)
        sz[(row + o) * groups + g] = __halves2half2(__float2half(p->scales[size_t(g) * p->out + o]), __float2half(float(r.zeros[size_t(o) * groups + g])));
    row += p->out;
  }
  auto put = [&](const void* src, size_t n) {
    void* dst = alloc(n);
    check(cudaMemcpy(dst, src, n, cudaMemcpyHostToDevice), "upload (4-bit weights)");
    return dst;
  };
  w.qweight = static_cast<const uint32_t*>(put(qw.data(), qw.size() * sizeof(uint32_t)));
  w.sz = static_cast<const __half2*>(put(sz.data(), sz.size() * sizeof(__half2)));
  if (!in_scale.empty()) w.in_scale = static_cast<const float*>(put(in_scale.data(), in_scale.size() * sizeof(float)));
  return w;
}

namespace {

// The 8 weights of one word, dequantized: (q - zero) * scale, times the input's scale.
__device__ inline void dequant8(uint32_t word, float2 sz, const float* in_scale, float out[8]) {
#pragma unroll
  for (int n = 0; n < 8; ++n) out[n] = (float((word >> (4 * nibble_slot(n))) & 15u) - sz.y) * sz.x * (in_scale ? in_scale[n] : 1.0f);
}

// The R input rows' products with chunk c's 32 weights of G output rows (the 16-byte loads
// q[g], each within one group whose (scale, zero) is sz[g]), added to acc[g][r]; each 16 bytes
// of the inputs are loaded once for the G rows. fp16 inputs: the weights dequantized two at a
// time in half2 with no conversion (a nibble or'ed into 1024's mantissa is 1024 + q; times
// 1/16 less (1024 + zero) / 16 gives (q - zero) / 16 exactly, at most 1 in size), a word's
// products summed in half2 (four a half: inputs of 16376 or more in size would overflow to inf,
// where two a half allowed 32752; the staged row is fp16, 65504 at most), then scaled by 16
// x scale and summed in fp32: one conversion a word, a sixth fewer instructions a weight than
// two (4% faster at four rows, 0.6% at one: docs/int4-decode.md). The integer-to-float conversions of the generic path run
// at a quarter of the FMA rate and bound it far below the memory's. Other types: each weight
// converted and multiplied in fp32.
template <typename W, int R, int G>
__device__ inline void add_chunk(const W* __restrict__ x, int in, int c, const uint4 (&q)[G], const __half2 (&sz)[G], float (&acc)[G][R]) {
  if constexpr (std::is_same_v<W, __half>) {
    const __half2 sixteenth = __float2half2_rn(0.0625f);
    __half2 minus_offset[G];
    float scale16[G];
#pragma unroll
    for (int g = 0; g < G; ++g) {
      minus_offset[g] = __hneg2(__half2half2(__hmul(__hadd(__float2half(1024.0f), __high2half(sz[g])), __float2half(0.0625f))));
      scale16[g] = 16.0f * __low2float(sz[g]);
    }
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      uint4 xv[R];
#pragma unroll
      for (int r = 0; r < R; ++r) xv[r] = reinterpret_cast<const uint4*>(x + size_t(r) * in + 32 * c)[k];
#pragma unroll
      for (int g = 0; g < G; ++g) {
        const uint32_t word = (&q[g].x)[k];
        __half2 wq[4];
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          const uint32_t bits = ((word >> (4 * j)) & 0x000F000Fu) | 0x64006400u;
          wq[j] = __hfma2(*reinterpret_cast<const __half2*>(&bits), sixteenth, minus_offset[g]);
        }
#pragma unroll
        for (int r = 0; r < R; ++r) {
          const __half2* x2 = reinterpret_cast<const __half2*>(&xv[r]);
          const float2 p = __half22float2(__hfma2(wq[3], x2[3], __hfma2(wq[2], x2[2], __hfma2(wq[1], x2[1], __hmul2(wq[0], x2[0])))));
          acc[g][r] += scale16[g] * (p.x + p.y);
        }
      }
    }
  } else {
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      float xv[R][8];
#pragma unroll
      for (int r = 0; r < R; ++r) load8<W>(x + size_t(r) * in + 32 * c + 8 * k, xv[r]);
#pragma unroll
      for (int g = 0; g < G; ++g) {
        float wv[8];
        dequant8((&q[g].x)[k], __half22float2(sz[g]), nullptr, wv);
#pragma unroll
        for (int r = 0; r < R; ++r)
#pragma unroll
          for (int n = 0; n < 8; ++n) acc[g][r] += wv[n] * xv[r][n];
      }
    }
  }
}

constexpr int kGemvWarps = 4, kGemvOutRows = 4;  // warps a block, output rows a team of warps

// A 16-byte load of data read once (the weights): not kept in L1, where the inputs that every
// warp re-reads stay; asm that is not volatile, so the compiler may issue it early.
__device__ inline uint4 load_once(const uint4* p) {
  uint4 v;
  asm("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
  return v;
}

// A block's warps form kGemvWarps / KS teams of KS warps; a team takes kGemvOutRows output
// rows, its warps splitting the input's chunks between them (KS > 1 where the layer has too
// few output rows for enough loads in flight on every SM). Each lane takes 32 inputs (one
// quantization group's, a 16-byte load of weights a row) at a time, lanes on consecutive
// 16-byte words; the R input rows reuse each weight and the output rows each input load. A
// row's sums are formed in the same order whatever R is.
// One row: at most 80 registers so that 6 blocks share an SM, not 5 (ptxas spills 4-12 bytes
// for fp16, 28-36 for bf16's fp32 conversions).
template <typename W, int R, int KS>
__global__ void __launch_bounds__(kGemvWarps * 32, R == 1 ? 6 : 1) int4_gemv_kernel(const W* __restrict__ x, Int4Linear w, const float* __restrict__ b,
                                                                    float* __restrict__ y, bool accumulate) {
  constexpr int G = kGemvOutRows;
  static_assert(G * R <= 32, "a lane of the team's first warp writes each output");
  __shared__ float slices[kGemvWarps / KS][KS][G][R];
  const int warp = threadIdx.x / 32, lane = threadIdx.x & 31, team = warp / KS, slice = warp % KS;
  const int o0 = (blockIdx.x * (kGemvWarps / KS) + team) * G;
  const int chunks = w.in / 32, per = (chunks + KS - 1) / KS, c0 = slice * per, c1 = min(chunks, c0 + per);
  const uint4* row[G];
  const __half2* sz[G];
#pragma unroll
  for (int g = 0; g < G; ++g) {
    const int o = min(o0 + g, w.out - 1);  // past the end: the last row again, not written
    row[g] = reinterpret_cast<const uint4*>(w.qweight + size_t(o) * (w.in / 8));
    sz[g] = w.sz + size_t(o) * (w.in / w.group);
  }
  float acc[G][R] = {};
  uint4 q[G];
  __half2 s[G];
  auto load = [&](int c, uint4 (&qq)[G], __half2 (&ss)[G]) {
#pragma unroll
    for (int g = 0; g < G; ++g) qq[g] = load_once(row[g] + c), ss[g] = sz[g][32 * c / w.group];
  };
  // The weights are no kernel's output: the first loads go out before waiting for the input.
  if (c0 + lane < c1) load(c0 + lane, q, s);
  wait_for_previous();
  for (int c = c0 + lane; c < c1; c += 32) {
    uint4 qn[G];
    __half2 sn[G];
    const bool more = c + 32 < c1;
    if (more) load(c + 32, qn, sn);  // the next chunk's loads in flight under this one's arithmetic
    add_chunk<W, R, G>(x, w.in, c, q, s, acc);
    if (more)
#pragma unroll
      for (int g = 0; g < G; ++g) q[g] = qn[g], s[g] = sn[g];
  }
  auto put = [&](int g, int r, float v) {
    float* out = y + size_t(r) * w.out + o0 + g;
    *out = (accumulate ? *out : 0.0f) + v + (b ? b[o0 + g] : 0.0f);
  };
#pragma unroll
  for (int g = 0; g < G; ++g)
#pragma unroll
    for (int r = 0; r < R; ++r) {
      float v = acc[g][r];
#pragma unroll
      for (int d = 16; d > 0; d >>= 1) v += __shfl_xor_sync(0xffffffffu, v, d);
      if (lane != 0) continue;
      if constexpr (KS == 1) {
        if (o0 + g < w.out) put(g, r, v);
      } else {
        slices[team][slice][g][r] = v;
      }
    }
  if constexpr (KS > 1) {
    __syncthreads();
    const int g = lane / R, r = lane % R;
    if (slice != 0 || lane >= G * R || o0 + g >= w.out) return;
    float v = 0.0f;
#pragma unroll
    for (int k = 0; k < KS; ++k) v += slices[team][k][g][r];
    put(g, r, v);
  }
}

// One word's eight weights as four half2 pairs of fp16, inputs (0, 1), (2, 3), (4, 5), (6, 7)
// (input n at nibble_slot(n)): a mask or'ed into 1024's bits gives 1024 + q, or 1024 + 16q for
// the odd nibble pairs; less 1024 + zero (times 1/16 less 64 + zero) that is q - zero exactly,
// then times the scale in half2: one rounding, as int4_dequantize's fp16 weights (which fold an
// input scale in too, where this GEMV's staged input carries it).
__device__ inline void dequant_pairs(uint32_t word, __half2 scale, __half2 off, __half2 off16, uint32_t (&pairs)[4]) {
  const __half2 sixteenth = __float2half2_rn(0.0625f);
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const uint32_t w = h ? word >> 8 : word, even = (w & 0x000F000Fu) | 0x64006400u, odd = (w & 0x00F000F0u) | 0x64006400u;
    const __half2 a = __hmul2(__hsub2(*reinterpret_cast<const __half2*>(&even), off), scale);
    const __half2 b = __hmul2(__hfma2(*reinterpret_cast<const __half2*>(&odd), sixteenth, off16), scale);
    pairs[2 * h] = *reinterpret_cast<const uint32_t*>(&a);
    pairs[2 * h + 1] = *reinterpret_cast<const uint32_t*>(&b);
  }
}

struct Int4MmaParams {
  const __half* x = nullptr;  // [rows][in], times in_scale (stage_input's)
  int rows = 1;               // at most 8: one n8 tile
  Int4Linear w;
  const float* bias = nullptr;
  float* y = nullptr;
  int ks = 1;  // warps a tile's inputs are split over (gemv_split)
  bool accumulate = false;
};

constexpr int kInt4Steps = 3;  // steps of weight and input loads in flight a warp

// fp16 models' layers with Int4Linear::mma: y = x W^T on tensor cores, as kernels/linear.cu's
// GEMV: a warp takes 16 output rows as mma.sync's A, dequantized in registers (dequant_pairs),
// and the batch's rows as B.
// A step: each lane loads 16 bytes (32 inputs, within one group) of its rows g and g + 8 and
// the same 32 inputs of batch row g, the warp 128 inputs; each word feeds two m16n8k16s, its
// pairs (0, 1), (2, 3) and then (4, 5), (6, 7) in the k slots that the input's 16 bytes fill
// for B, so A's and B's k slots follow one permutation. An output is the same sequence of mma
// steps whatever else is in the batch: a row's sums are bit for bit the row's alone. Each slot
// of the kInt4Steps in flight is refilled as soon as it is used.
__global__ void __launch_bounds__(kTileThreads, 2) int4_mma_kernel(const Int4MmaParams p) {
  constexpr int D = kInt4Steps;
  __shared__ float slices[kTileWarps][kTileRows][8];
  const int lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const Int4Linear& w = p.w;
  const TileSlice tile(p.ks);
  const int chunks = w.in / 32, steps = (chunks + 3) / 4, per = (steps + p.ks - 1) / p.ks;
  const int s0 = tile.slice * per, s1 = min(steps, s0 + per);
  const int r0 = tile.row0 + g, r8 = r0 + 8, groups = w.in / w.group;
  // A chunk's group by a shift, not an integer division a step: a group is a power of two of
  // chunks here (upload_int4 gives other groups the half2 kernel).
  const int shift = __ffs(w.group / 32) - 1;
  const bool v0 = r0 < w.out, v8 = r8 < w.out, xrow = g < p.rows;
  const uint4* q0 = reinterpret_cast<const uint4*>(w.qweight + size_t(v0 ? r0 : 0) * (w.in / 8));
  const uint4* q8 = reinterpret_cast<const uint4*>(w.qweight + size_t(v8 ? r8 : 0) * (w.in / 8));
  const __half2* z0 = w.sz + size_t(v0 ? r0 : 0) * groups;
  const __half2* z8 = w.sz + size_t(v8 ? r8 : 0) * groups;
  const uint4* xr = reinterpret_cast<const uint4*>(p.x + size_t(xrow ? g : 0) * w.in);
  const uint4 zero = make_uint4(0, 0, 0, 0);
  const __half2 none = __float2half2_rn(0.0f);
  uint4 a0[D], a8[D], xv[D][4];
  __half2 sz0[D], sz8[D];
  // Step `step` into slot d: a chunk past the inputs (or a row past the layer) loads zeros,
  // whose scale 0 makes its weights 0, and a missing batch row zeros for B.
  auto load_w = [&](int d, int step) {
    const int c = step * 4 + t;
    const bool ok = step < s1 && c < chunks;
    a0[d] = ok && v0 ? load_once(q0 + c) : zero;
    a8[d] = ok && v8 ? load_once(q8 + c) : zero;
    sz0[d] = ok && v0 ? z0[c >> shift] : none;
    sz8[d] = ok && v8 ? z8[c >> shift] : none;
  };
  auto load_x = [&](int d, int step) {
    const int c = step * 4 + t;
    const bool ok = step < s1 && c < chunks && xrow;
#pragma unroll
    for (int k = 0; k < 4; ++k) xv[d][k] = ok ? __ldg(xr + 4 * c + k) : zero;
  };
  // The weights are no kernel's output: their first loads go out before waiting for the input.
#pragma unroll
  for (int d = 0; d < D; ++d) load_w(d, s0 + d);
  wait_for_previous();
#pragma unroll
  for (int d = 0; d < D; ++d) load_x(d, s0 + d);
  float acc[1][4] = {};
  for (int base = s0; base < s1; base += D) {
#pragma unroll
    for (int d = 0; d < D; ++d) {
      if (base + d >= s1) break;
      const __half2 sc0 = __low2half2(sz0[d]), sc8 = __low2half2(sz8[d]);
      const __half2 off0 = __hadd2(__high2half2(sz0[d]), __float2half2_rn(1024.0f)), off8 = __hadd2(__high2half2(sz8[d]), __float2half2_rn(1024.0f));
      const __half2 o16_0 = __hneg2(__hadd2(__high2half2(sz0[d]), __float2half2_rn(64.0f)));
      const __half2 o16_8 = __hneg2(__hadd2(__high2half2(sz8[d]), __float2half2_rn(64.0f)));
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        uint32_t p0[4], p8[4];
        dequant_pairs((&a0[d].x)[k], sc0, off0, o16_0, p0);
        dequant_pairs((&a8[d].x)[k], sc8, off8, o16_8, p8);
        const uint32_t A1[4] = {p0[0], p8[0], p0[1], p8[1]}, A2[4] = {p0[2], p8[2], p0[3], p8[3]};
        mma16816<__half>(acc[0], A1, xv[d][k].x, xv[d][k].y);
        mma16816<__half>(acc[0], A2, xv[d][k].z, xv[d][k].w);
      }
      if (base + D + d < s1) {
        load_w(d, base + D + d);
        load_x(d, base + D + d);
      }
    }
  }
  store_tile<1>(slices, acc, p.ks, tile.row0, p.rows, w.out, p.bias, p.y, p.accumulate);
}

// One thread a word: its 8 weights written with one 16-byte store.
template <typename W>
__global__ void int4_dequantize_kernel(Int4Linear w, W* __restrict__ dst) {
  const size_t words = size_t(w.out) * (w.in / 8);
  const size_t word = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (word >= words) return;
  const int o = int(word / (w.in / 8)), i = int(word % (w.in / 8)) * 8;
  float v[8];
  dequant8(w.qweight[word], __half22float2(w.sz[size_t(o) * (w.in / w.group) + i / w.group]), w.in_scale ? w.in_scale + i : nullptr, v);
  alignas(16) W out[8];
#pragma unroll
  for (int n = 0; n < 8; ++n) out[n] = Cvt<W>::from(v[n]);
  *reinterpret_cast<uint4*>(dst + size_t(o) * w.in + i) = *reinterpret_cast<const uint4*>(out);
}

template <typename W, int R, int KS>
void launch_teams(const void* x, const Int4Linear& w, const float* b, float* y, bool accumulate, cudaStream_t s) {
  constexpr int kOut = kGemvWarps / KS * kGemvOutRows;
  check(launch(int4_gemv_kernel<W, R, KS>, (w.out + kOut - 1) / kOut, 32 * kGemvWarps, 0, s, static_cast<const W*>(x), w, b, y, accumulate),
        "4-bit GEMV");
}

// A team's input split over the fewest warps (1, 2 or 4) that give the layer 4,096 warps or
// more (31 an SM on an H100); a layer of fewer than 1,024 teams has fewer even with 4.
template <typename W, int R>
void gemv_rows(const void* x, const Int4Linear& w, const float* b, float* y, bool accumulate, cudaStream_t s) {
  const int teams = (w.out + kGemvOutRows - 1) / kGemvOutRows;
  if (teams >= 4096) return launch_teams<W, R, 1>(x, w, b, y, accumulate, s);
  if (teams >= 2048) return launch_teams<W, R, 2>(x, w, b, y, accumulate, s);
  launch_teams<W, R, 4>(x, w, b, y, accumulate, s);
}

template <typename W>
void gemv(const void* x, int rows, const Int4Linear& w, const float* b, float* y, bool accumulate, cudaStream_t s) {
  if (rows < 1 || rows > kInt4GemvRows)
    throw std::runtime_error("int4_gemv takes 1 to " + std::to_string(kInt4GemvRows) + " rows, not " + std::to_string(rows));
  if constexpr (std::is_same_v<W, __half>) {
    if (w.mma) {
      Int4MmaParams p;
      p.x = static_cast<const __half*>(x);
      p.rows = rows;
      p.w = w;
      p.bias = b;
      p.y = y;
      p.ks = gemv_split(w.out);
      p.accumulate = accumulate;
      return check(launch(int4_mma_kernel, gemv_blocks(w.out, p.ks), kTileThreads, 0, s, p), "4-bit GEMV");
    }
  }
  switch (rows) {
    case 1: return gemv_rows<W, 1>(x, w, b, y, accumulate, s);
    case 2: return gemv_rows<W, 2>(x, w, b, y, accumulate, s);
    case 3: return gemv_rows<W, 3>(x, w, b, y, accumulate, s);
    case 4: return gemv_rows<W, 4>(x, w, b, y, accumulate, s);
    case 5: return gemv_rows<W, 5>(x, w, b, y, accumulate, s);
    case 6: return gemv_rows<W, 6>(x, w, b, y, accumulate, s);
    case 7: return gemv_rows<W, 7>(x, w, b, y, accumulate, s);
    case 8: return gemv_rows<W, 8>(x, w, b, y, accumulate, s);
  }
}

}  // namespace

void int4_gemv(const void* x, int rows, const Int4Linear& w, const float* b, WeightType t, float* y, bool accumulate, cudaStream_t s) {
  with_half_type(t, [&](auto e) { gemv<decltype(e)>(x, rows, w, b, y, accumulate, s); });
}

void int4_dequantize(const Int4Linear& w, WeightType t, void* dst, cudaStream_t s) {
  const size_t words = size_t(w.out) * (w.in / 8);
  with_half_type(t, [&](auto e) {
    using W = decltype(e);
    int4_dequantize_kernel<W><<<unsigned((words + 255) / 256), 256, 0, s>>>(w, static_cast<W*>(dst));
  });
  check(cudaGetLastError(), "4-bit dequantization");
}

}  // namespace quest
