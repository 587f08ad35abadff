#include <cuda_bf16.h>
#include <mma.h>

#include <algorithm>

#include "kernels/cuda_util.cuh"
#include "kernels/gemv_tile.cuh"
#include "kernels/launch.cuh"
#include "kernels/mma.cuh"
#include "kernels/linear.cuh"
#include "kernels/reduce.cuh"

namespace quest {
namespace {

using namespace nvcuda;

__device__ inline float silu(float g) { return g / (1.0f + __expf(-g)); }

// Eight input values at column k of row `row`, built as LinearInput says.
template <int MODE>
__device__ inline void input8(const float* __restrict__ x, size_t row, int k, int in, float scale, float v[8]) {
  if (MODE == LinearInput::SwiGlu) {
    const float* g = x + row * 2 * in + k;
    const float* u = g + in;
#pragma unroll
    for (int i = 0; i < 8; i += 4) {
      const float4 gg = *reinterpret_cast<const float4*>(g + i), uu = *reinterpret_cast<const float4*>(u + i);
      v[i] = silu(gg.x) * uu.x;
      v[i + 1] = silu(gg.y) * uu.y;
      v[i + 2] = silu(gg.z) * uu.z;
      v[i + 3] = silu(gg.w) * uu.w;
    }
  } else {
    const float* p = x + row * in + k;
#pragma unroll
    for (int i = 0; i < 8; i += 4) {
      const float4 a = *reinterpret_cast<const float4*>(p + i);
      v[i] = a.x * scale;
      v[i + 1] = a.y * scale;
      v[i + 2] = a.z * scale;
      v[i + 3] = a.w * scale;
    }
  }
}

// 1 / rms of row `row` of x ([rows][dim]), by the whole block.
__device__ inline float inv_rms(const float* __restrict__ x, size_t row, int dim, float eps, float* partial) {
  float ss = 0.0f;
  for (int i = threadIdx.x * 4; i < dim; i += blockDim.x * 4) {
    const float4 a = *reinterpret_cast<const float4*>(x + row * dim + i);
    ss += a.x * a.x + a.y * a.y + a.z * a.z + a.w * a.w;
  }
  return rsqrtf(block_sum(ss, partial) / dim + eps);
}

// v as hi + lo, each rounded to W: the GEMV's tensor cores take 16-bit inputs, and the pair
// keeps the activation to about 2^-22 (fp16; bf16 2^-16) of itself, as the fp32 row it was.
template <typename W>
__device__ inline void split8(const float v[8], W* hi, W* lo) {
  __align__(16) W h[8], l[8];
#pragma unroll
  for (int j = 0; j < 8; ++j) {
    h[j] = Cvt<W>::from(v[j]);
    l[j] = Cvt<W>::from(v[j] - Cvt<W>::to(h[j]));
  }
  *reinterpret_cast<uint4*>(hi) = *reinterpret_cast<const uint4*>(h);
  *reinterpret_cast<uint4*>(lo) = *reinterpret_cast<const uint4*>(l);
}

constexpr int kGemvRows = 16;  // input rows a launch takes: two n8 tiles of the batch

struct GemvParams {
  LinearInput x;                  // the fp32 row a one-row launch builds in shared memory
  const void* hi = nullptr;       // or the rows staged as hi + lo ([rows][in] each, W's type)
  const void* lo = nullptr;
  int rows = 1;
  const void* w = nullptr;
  const float* bias = nullptr;
  float* y = nullptr;
  int in = 0, out = 0, ks = 1;  // ks warps split a tile's inputs
  bool accumulate = false;
};

// y = x W^T on tensor cores: each warp takes 16 weight rows as mma's A and up to 8 * NT input
// rows as its B (n = the batch), over its ks-th of the inputs, 32 at a time. A lane loads 16
// bytes of each of its two weight rows (g and g + 8) and the same 8 inputs of its batch row g,
// so A's and B's k slots map to one permutation of the 32 inputs and no shuffle is needed.
// Each output is the fixed sequence of mma steps over its own weight row and input row: what
// the other rows of the batch are does not change it, so a row's sums are bit for bit those of
// the row alone at any batch size. BUILD: one row, built by the block into shared memory (norm,
// SwiGLU folded in); else the rows staged once by stage_w. D chunks of loads in flight.
template <typename W, int MODE, int NT, bool BUILD>
__global__ void __launch_bounds__(kTileThreads, 2) gemv_kernel(const GemvParams p) {
  constexpr int D = BUILD ? 8 : 4;
  extern __shared__ __align__(16) unsigned char built[];
  __shared__ float partial[32];
  __shared__ float slices[kTileWarps][kTileRows][8 * NT];
  const int lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const int ks = p.ks, in = p.in;
  const TileSlice tile(ks);
  const int row0 = tile.row0, slice = tile.slice;
  const int chunks = in / 32, per = (chunks + ks - 1) / ks, c0 = slice * per, c1 = min(chunks, c0 + per);
  const bool v0 = row0 + g < p.out, v8 = row0 + g + 8 < p.out;
  const W* w0 = static_cast<const W*>(p.w) + size_t(v0 ? row0 + g : 0) * in + 8 * t;
  const W* w8 = static_cast<const W*>(p.w) + size_t(v8 ? row0 + g + 8 : 0) * in + 8 * t;
  const uint4 zero = make_uint4(0, 0, 0, 0);
  uint4 a0[D], a8[D], xh[D][NT], xl[D][NT];
  auto load_w = [&](int base) {
#pragma unroll
    for (int d = 0; d < D; ++d) {
      const int c = base + d;
      a0[d] = c < c1 && v0 ? __ldcs(reinterpret_cast<const uint4*>(w0 + size_t(c) * 32)) : zero;
      a8[d] = c < c1 && v8 ? __ldcs(reinterpret_cast<const uint4*>(w8 + size_t(c) * 32)) : zero;
    }
  };
  const W* hi = static_cast<const W*>(p.hi);
  const W* lo = static_cast<const W*>(p.lo);
  auto load_x = [&](int base) {
#pragma unroll
    for (int d = 0; d < D; ++d)
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) {
        const int c = base + d, n = nt * 8 + g;
        const size_t at = size_t(n) * in + size_t(c) * 32 + 8 * t;
        const bool ok = c < c1 && n < p.rows;
        xh[d][nt] = ok ? __ldg(reinterpret_cast<const uint4*>(hi + at)) : zero;
        xl[d][nt] = ok ? __ldg(reinterpret_cast<const uint4*>(lo + at)) : zero;
      }
  };
  // The weights are no other kernel's output: their first loads go out before the wait, so
  // the stream starts at once.
  load_w(c0);
  wait_for_previous();
  W* bh = reinterpret_cast<W*>(built);
  W* bl = bh + in;
  if constexpr (BUILD) {
    const float scale = MODE == LinearInput::RmsNorm ? inv_rms(p.x.x, 0, in, p.x.eps, partial) : 1.0f;
    for (int k = threadIdx.x * 8; k < in; k += blockDim.x * 8) {
      float v[8];
      input8<MODE>(p.x.x, 0, k, in, scale, v);
      split8<W>(v, bh + k, bl + k);
    }
    __syncthreads();
  } else {
    load_x(c0);
  }
  float acc[NT][4] = {};
  for (int base = c0; base < c1; base += D) {
#pragma unroll
    for (int d = 0; d < D; ++d) {
      if (base + d >= c1) break;
      if constexpr (BUILD) {
        const int k = (base + d) * 32 + 8 * t;
        xh[d][0] = g == 0 ? *reinterpret_cast<const uint4*>(bh + k) : zero;
        xl[d][0] = g == 0 ? *reinterpret_cast<const uint4*>(bl + k) : zero;
      }
      const uint32_t A0[4] = {a0[d].x, a8[d].x, a0[d].y, a8[d].y}, A1[4] = {a0[d].z, a8[d].z, a0[d].w, a8[d].w};
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) {
        mma16816<W>(acc[nt], A0, xh[d][nt].x, xh[d][nt].y);
        mma16816<W>(acc[nt], A1, xh[d][nt].z, xh[d][nt].w);
        mma16816<W>(acc[nt], A0, xl[d][nt].x, xl[d][nt].y);
        mma16816<W>(acc[nt], A1, xl[d][nt].z, xl[d][nt].w);
      }
    }
    if (base + D < c1) {
      load_w(base + D);
      if constexpr (!BUILD) load_x(base + D);
    }
  }
  store_tile<NT>(slices, acc, ks, row0, p.rows, p.out, p.bias, p.y, p.accumulate);
}

template <typename W, int MODE, int NT, bool BUILD>
void launch_gemv(const GemvParams& p, cudaStream_t s) {
  auto kernel = gemv_kernel<W, MODE, NT, BUILD>;
  const int smem = BUILD ? 2 * p.in * int(sizeof(W)) : 0;
  // The dynamic shared memory a block may take without asking: 48 KiB less the kernel's static
  // arrays (the size is the call's, known at run time: hence not allow_shared_memory).
  static int allowed = [&] {
    cudaFuncAttributes a{};
    check(cudaFuncGetAttributes(&a, kernel), "GEMV attributes");
    return 48 * 1024 - int(a.sharedSizeBytes);
  }();
  if (smem > allowed) {
    check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem), "GEMV shared memory");
    allowed = smem;
  }
  check(launch(kernel, gemv_blocks(p.out, p.ks), kTileThreads, smem, s, p), "linear");
}

// One row: the GEMV builds it in each block (no launch of its own).
template <typename W, int MODE>
void gemv(const LinearInput& x, const DeviceLinear& L, float* y, bool accumulate, cudaStream_t s) {
  GemvParams p;
  p.x = x;
  p.w = L.w;
  p.bias = L.b;
  p.y = y;
  p.in = L.in;
  p.out = L.out;
  p.ks = gemv_split(L.out);
  p.accumulate = accumulate;
  launch_gemv<W, MODE, 1, true>(p, s);
}

// row_scale[r] = 1 / rms(x[r]): the RmsNorm input of a GEMM.
__global__ void inv_rms_kernel(const float* __restrict__ x, int dim, float eps, float* __restrict__ row_scale) {
  __shared__ float partial[32];
  wait_for_previous();
  const float inv = inv_rms(x, blockIdx.x, dim, eps, partial);
  if (threadIdx.x == 0) row_scale[blockIdx.x] = inv;
}

// dst[row][in] in W's type: the linear layer's input as LinearInput builds it, times col_scale
// by column where given; what a cuBLASLt GEMM and the 4-bit GEMV read. With `lo`, the rest of
// each value too (split8), for the batched GEMV. The blocks of a row (gridDim.y) take a slice
// each, each finding the row's 1/rms alone, with the GEMV's block size (the same sums in the
// same order as a one-row GEMV's): a decode step's few rows then still spread over many SMs.
template <typename W, int MODE>
__global__ void stage_kernel(const float* __restrict__ x, float eps, int in, const float* __restrict__ col_scale, W* __restrict__ dst,
                             W* __restrict__ lo) {
  __shared__ float partial[32];
  wait_for_previous();
  const size_t row = blockIdx.x;
  const float scale = MODE == LinearInput::RmsNorm ? inv_rms(x, row, in, eps, partial) : 1.0f;
  const int per = ((in + gridDim.y - 1) / gridDim.y + 7) / 8 * 8, end = min(in, int(blockIdx.y + 1) * per);
  for (int k = blockIdx.y * per + threadIdx.x * 8; k < end; k += blockDim.x * 8) {
    float v[8];
    input8<MODE>(x, row, k, in, scale, v);
    if (col_scale)
#pragma unroll
      for (int j = 0; j < 8; ++j) v[j] *= col_scale[k + j];
    if (lo) {
      split8<W>(v, dst + row * in + k, lo + row * in + k);
      continue;
    }
    __align__(16) W h[8];
#pragma unroll
    for (int j = 0; j < 8; ++j) h[j] = Cvt<W>::from(v[j]);
    *reinterpret_cast<uint4*>(dst + row * in + k) = *reinterpret_cast<const uint4*>(h);
  }
}

template <typename W>
void stage_w(const LinearInput& x, int rows, int in, const float* col_scale, W* dst, W* lo, cudaStream_t s) {
  const dim3 grid(rows, rows < 32 ? (in + 1023) / 1024 : 1);  // slices of about 1024 inputs for a few rows
  switch (x.kind) {
    case LinearInput::Plain:
      return check(launch(stage_kernel<W, LinearInput::Plain>, grid, kTileThreads, 0, s, x.x, x.eps, in, col_scale, dst, lo), "GEMM input");
    case LinearInput::RmsNorm:
      return check(launch(stage_kernel<W, LinearInput::RmsNorm>, grid, kTileThreads, 0, s, x.x, x.eps, in, col_scale, dst, lo), "GEMM input");
    case LinearInput::SwiGlu:
      return check(launch(stage_kernel<W, LinearInput::SwiGlu>, grid, kTileThreads, 0, s, x.x, x.eps, in, col_scale, dst, lo), "GEMM input");
  }
}

constexpr int kBM = 64, kBN = 64, kBK = 32, kGemmThreads = 128;

// C[M][N] (+)= A[M][K] W[N][K]^T + b on tensor cores: 64x64 tiles, four warps of 32x32, A
// built as LinearInput says and rounded to W's type as it is staged. K must be a multiple of 32.
template <typename W, int MODE>
__global__ void __launch_bounds__(kGemmThreads) gemm_kernel(const float* __restrict__ A, const float* __restrict__ row_scale,
                                                            const W* __restrict__ w, const float* __restrict__ bias,
                                                            float* __restrict__ C, int M, int K, int N, bool accumulate) {
  constexpr int LD = kBK + 8, CLD = kBN + 4;
  __shared__ __align__(32) W As[kBM * LD];
  __shared__ __align__(32) W Ws[kBN * LD];
  __shared__ __align__(32) float Cs[kBM * CLD];
  wait_for_previous();
  const int m0 = blockIdx.y * kBM, n0 = blockIdx.x * kBN;
  const int warp = threadIdx.x / 32, wm = warp / 2, wn = warp % 2;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.0f);

  for (int k0 = 0; k0 < K; k0 += kBK) {
#pragma unroll
    for (int i = 0; i < kBM * kBK / 8 / kGemmThreads; ++i) {
      const int idx = threadIdx.x + i * kGemmThreads, r = idx / (kBK / 8), c = (idx % (kBK / 8)) * 8;
      float a[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
      if (m0 + r < M) input8<MODE>(A, m0 + r, k0 + c, K, MODE == LinearInput::RmsNorm ? row_scale[m0 + r] : 1.0f, a);
      W* dst = As + r * LD + c;
#pragma unroll
      for (int j = 0; j < 8; ++j) dst[j] = Cvt<W>::from(a[j]);
    }
#pragma unroll
    for (int i = 0; i < kBN * kBK / 8 / kGemmThreads; ++i) {
      const int idx = threadIdx.x + i * kGemmThreads, r = idx / (kBK / 8), c = (idx % (kBK / 8)) * 8;
      uint4 v = make_uint4(0, 0, 0, 0);
      if (n0 + r < N) v = *reinterpret_cast<const uint4*>(w + (size_t)(n0 + r) * K + k0 + c);
      *reinterpret_cast<uint4*>(Ws + r * LD + c) = v;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kBK; kk += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, W, wmma::row_major> fa[2];
      wmma::fragment<wmma::matrix_b, 16, 16, 16, W, wmma::col_major> fb[2];
#pragma unroll
      for (int i = 0; i < 2; ++i) wmma::load_matrix_sync(fa[i], As + (wm * 32 + i * 16) * LD + kk, LD);
#pragma unroll
      for (int j = 0; j < 2; ++j) wmma::load_matrix_sync(fb[j], Ws + (wn * 32 + j * 16) * LD + kk, LD);
#pragma unroll
      for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 2; ++j) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j)
      wmma::store_matrix_sync(Cs + (wm * 32 + i * 16) * CLD + wn * 32 + j * 16, acc[i][j], CLD, wmma::mem_row_major);
  __syncthreads();
  for (int idx = threadIdx.x; idx < kBM * kBN; idx += kGemmThreads) {
    const int r = idx / kBN, c = idx % kBN, m = m0 + r, n = n0 + c;
    if (m >= M || n >= N) continue;
    const float v = Cs[r * CLD + c] + (bias ? bias[n] : 0.0f);
    float* out = C + (size_t)m * N + n;
    *out = accumulate ? *out + v : v;
  }
}

template <typename W, int MODE>
void linear_t(const LinearInput& x, int rows, const DeviceLinear& L, float* y, bool accumulate, cudaStream_t s) {
  const W* w = static_cast<const W*>(L.w);
  if (rows == 1) return gemv<W, MODE>(x, L, y, accumulate, s);
  if (MODE == LinearInput::RmsNorm) check(launch(inv_rms_kernel, rows, 256, 0, s, x.x, L.in, x.eps, x.row_scale), "rmsnorm");
  check(launch(gemm_kernel<W, MODE>, dim3((L.out + kBN - 1) / kBN, (rows + kBM - 1) / kBM), kGemmThreads, 0, s, x.x,
               static_cast<const float*>(x.row_scale), w, L.b, y, rows, L.in, L.out, accumulate),
        "linear");
}

template <typename W>
void linear_w(const LinearInput& x, int rows, const DeviceLinear& L, float* y, bool accumulate, cudaStream_t s) {
  switch (x.kind) {
    case LinearInput::Plain: return linear_t<W, LinearInput::Plain>(x, rows, L, y, accumulate, s);
    case LinearInput::RmsNorm: return linear_t<W, LinearInput::RmsNorm>(x, rows, L, y, accumulate, s);
    case LinearInput::SwiGlu: return linear_t<W, LinearInput::SwiGlu>(x, rows, L, y, accumulate, s);
  }
}

// A batch's rows staged once (hi and lo) and taken kGemvRows at a time.
template <typename W>
void linear_rows_w(const LinearInput& x, int rows, const DeviceLinear& L, float* y, bool accumulate, void* staged, cudaStream_t s) {
  W* hi = static_cast<W*>(staged);
  W* lo = hi + size_t(rows) * L.in;
  stage_w(x, rows, L.in, nullptr, hi, lo, s);
  GemvParams p;
  p.w = L.w;
  p.bias = L.b;
  p.in = L.in;
  p.out = L.out;
  p.ks = gemv_split(L.out);
  p.accumulate = accumulate;
  for (int r0 = 0; r0 < rows; r0 += kGemvRows) {
    p.rows = std::min(kGemvRows, rows - r0);
    p.hi = hi + size_t(r0) * L.in;
    p.lo = lo + size_t(r0) * L.in;
    p.y = y + size_t(r0) * L.out;
    // The input is staged: the kernel's MODE no longer matters.
    if (p.rows > 8)
      launch_gemv<W, LinearInput::Plain, 2, false>(p, s);
    else
      launch_gemv<W, LinearInput::Plain, 1, false>(p, s);
  }
}

// Sets *nonfinite when a converted value is NaN or Inf (an fp32 weight past fp16's range, say).
template <typename W>
__global__ void convert_kernel(const float* __restrict__ src, W* __restrict__ dst, size_t n, int* nonfinite) {
  bool bad = false;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    dst[i] = Cvt<W>::from(src[i]);
    bad |= !isfinite(Cvt<W>::to(dst[i]));
  }
  if (bad) *nonfinite = 1;
}

}  // namespace

void linear(const LinearInput& x, int rows, const DeviceLinear& L, WeightType t, float* y, bool accumulate, cudaStream_t s) {
  if (t == WeightType::F16)
    linear_w<__half>(x, rows, L, y, accumulate, s);
  else
    linear_w<__nv_bfloat16>(x, rows, L, y, accumulate, s);
}

void linear_rows(const LinearInput& x, int rows, const DeviceLinear& L, WeightType t, float* y, bool accumulate, void* staged, cudaStream_t s) {
  if (t == WeightType::F16)
    linear_rows_w<__half>(x, rows, L, y, accumulate, staged, s);
  else
    linear_rows_w<__nv_bfloat16>(x, rows, L, y, accumulate, staged, s);
}

void stage_input(const LinearInput& x, int rows, int in, WeightType t, void* dst, cudaStream_t s, const float* col_scale) {
  if (t == WeightType::F16)
    stage_w(x, rows, in, col_scale, static_cast<__half*>(dst), static_cast<__half*>(nullptr), s);
  else
    stage_w(x, rows, in, col_scale, static_cast<__nv_bfloat16*>(dst), static_cast<__nv_bfloat16*>(nullptr), s);
}

void to_weight_type(const float* src, void* dst, WeightType t, size_t n, int* nonfinite, cudaStream_t s) {
  if (t == WeightType::F16)
    convert_kernel<__half><<<blocks_for(n), 256, 0, s>>>(src, static_cast<__half*>(dst), n, nonfinite);
  else
    convert_kernel<__nv_bfloat16><<<blocks_for(n), 256, 0, s>>>(src, static_cast<__nv_bfloat16*>(dst), n, nonfinite);
  check(cudaGetLastError(), "weight conversion");
}

}  // namespace quest
