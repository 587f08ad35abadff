#include <cuda_bf16.h>
#include <mma.h>

#include <algorithm>

#include "kernels/cuda_util.cuh"
#include "kernels/launch.cuh"
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

constexpr int kGemvWarps = 8;
constexpr int kGemvRows = 4;  // input rows a batched GEMV launch shares its weight loads between

// R output rows a warp; the block's warps form 8 / KS groups of KS warps that split the
// input between them (KS > 1 when there are too few rows to keep every SM streaming). The
// block builds the input row once in shared memory (norm, SwiGLU), so the warps read only
// weights from memory. Each lane issues B 16-byte loads of each of its rows before using any
// (the bytes in flight hide the memory latency); the weights stream past the caches. Up to N
// input rows (`rows` of them: a decode batch's) share each weight load, every row's sums
// formed in the order of one row alone.
template <typename W, int MODE, int R, int B, int KS, int N>
__global__ void __launch_bounds__(kGemvWarps * 32) gemv_kernel(const float* __restrict__ x, int rows_in, float eps, const W* __restrict__ w,
                                                               const float* __restrict__ bias, float* __restrict__ y, int in,
                                                               int out, bool accumulate) {
  extern __shared__ float xs[];  // the input rows as the linear layer reads them, built once a block
  __shared__ float partial[32];
  __shared__ float slices[kGemvWarps / KS][KS][N][R];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, group = warp / KS, slice = warp % KS;
  const int row0 = (blockIdx.x * (kGemvWarps / KS) + group) * R;
  const int chunks = in / 8, per = (chunks + KS - 1) / KS, c0 = slice * per, c1 = min(chunks, c0 + per);
  uint4 raw[R][B];
  auto load = [&](int base) {
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
      for (int b = 0; b < B; ++b) {
        const int c = base + b * 32;
        raw[r][b] = c < c1 && row0 + r < out ? __ldcs(reinterpret_cast<const uint4*>(w + (size_t)(row0 + r) * in + c * 8))
                                             : make_uint4(0, 0, 0, 0);
      }
  };
  // The weights are no other kernel's output: their first loads go out before the wait and
  // the input's staging, so the stream starts at once.
  // One row known at compile time: the decode step's GEMV keeps the registers of one row alone.
  const int rows = N == 1 ? 1 : rows_in;
  load(c0 + lane);
  wait_for_previous();
  for (int n = 0; n < rows; ++n) {
    const float scale = MODE == LinearInput::RmsNorm ? inv_rms(x, n, in, eps, partial) : 1.0f;
    for (int k = threadIdx.x * 8; k < in; k += blockDim.x * 8) input8<MODE>(x, n, k, in, scale, xs + size_t(n) * in + k);
  }
  __syncthreads();
  float acc[N][R];
#pragma unroll
  for (int n = 0; n < N; ++n)
#pragma unroll
    for (int r = 0; r < R; ++r) acc[n][r] = 0.0f;
  for (int base = c0 + lane; base < c1;) {
#pragma unroll
    for (int b = 0; b < B; ++b) {
      const int c = base + b * 32;
      if (c >= c1) break;
      float xv[N][8];
#pragma unroll
      for (int n = 0; n < N; ++n) {
        if (n >= rows) break;
        const float4 x0 = *reinterpret_cast<const float4*>(xs + size_t(n) * in + c * 8), x1 = *reinterpret_cast<const float4*>(xs + size_t(n) * in + c * 8 + 4);
        xv[n][0] = x0.x, xv[n][1] = x0.y, xv[n][2] = x0.z, xv[n][3] = x0.w, xv[n][4] = x1.x, xv[n][5] = x1.y, xv[n][6] = x1.z, xv[n][7] = x1.w;
      }
#pragma unroll
      for (int r = 0; r < R; ++r) {
        float wf[8];
        unpack8<W>(raw[r][b], wf);
#pragma unroll
        for (int n = 0; n < N; ++n) {
          if (n >= rows) break;
#pragma unroll
          for (int i = 0; i < 8; ++i) acc[n][r] += wf[i] * xv[n][i];
        }
      }
    }
    base += 32 * B;
    if (base < c1) load(base);
  }
#pragma unroll
  for (int n = 0; n < N; ++n)
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const float a = warp_sum(acc[n][r]);
      if (lane == 0) slices[group][slice][n][r] = a;
    }
  __syncthreads();
  if (slice == 0 && lane < R && row0 + lane < out)
    for (int n = 0; n < rows; ++n) {
      float a = 0.0f;
#pragma unroll
      for (int k = 0; k < KS; ++k) a += slices[group][k][n][lane];
      const float v = a + (bias ? bias[row0 + lane] : 0.0f);
      float* yr = y + size_t(n) * out + row0 + lane;
      *yr = accumulate ? *yr + v : v;
    }
}

template <typename W, int MODE, int R, int B, int KS, int N>
cudaError_t launch_gemv(const LinearInput& x, int rows, const DeviceLinear& L, float* y, bool accumulate, cudaStream_t s) {
  const int rows_per_block = kGemvWarps / KS * R;
  const int smem = rows * L.in * int(sizeof(float));
  // The dynamic shared memory a block may take without asking: 48 KiB less the kernel's static slices
  // (the size is the call's, known at run time: hence not allow_shared_memory, whose size is fixed).
  static int allowed = [] {
    cudaFuncAttributes a{};
    check(cudaFuncGetAttributes(&a, gemv_kernel<W, MODE, R, B, KS, N>), "GEMV attributes");
    return 48 * 1024 - int(a.sharedSizeBytes);
  }();
  if (smem > allowed) {
    const cudaError_t err = cudaFuncSetAttribute(gemv_kernel<W, MODE, R, B, KS, N>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
    if (err != cudaSuccess) return err;
    allowed = smem;
  }
  return launch(gemv_kernel<W, MODE, R, B, KS, N>, (L.out + rows_per_block - 1) / rows_per_block, kGemvWarps * 32, smem, s, x.x, rows,
                x.eps, static_cast<const W*>(L.w), L.b, y, L.in, L.out, accumulate);
}

// Up to N rows (`rows`) through the GEMV. One row: two output rows a warp, eight loads a row
// in flight, the fastest of 1x8, 2x4, 2x8, 1x16 and 4x4 on the 7B shape. Below 8192 rows (the
// 7B's o and down projections) a block's rows are too few to fill the GPU, and four warps
// share each row (docs/quest-step.md). A batch's rows: eight output rows a warp, two loads a
// row in flight (as many in all), so that a quarter of the blocks build the input rows (norm,
// SwiGLU), which every block does for each of its N rows; each row's sums in the same order.
template <typename W, int MODE, int N>
void gemv(const LinearInput& x, int rows, const DeviceLinear& L, float* y, bool accumulate, cudaStream_t s) {
  constexpr int R = N == 1 ? 2 : 8, B = 16 / R;
  if (L.out < 8192)
    check(launch_gemv<W, MODE, R, B, 4, N>(x, rows, L, y, accumulate, s), "linear");
  else
    check(launch_gemv<W, MODE, R, B, 1, N>(x, rows, L, y, accumulate, s), "linear");
}

// row_scale[r] = 1 / rms(x[r]): the RmsNorm input of a GEMM.
__global__ void inv_rms_kernel(const float* __restrict__ x, int dim, float eps, float* __restrict__ row_scale) {
  __shared__ float partial[32];
  wait_for_previous();
  const float inv = inv_rms(x, blockIdx.x, dim, eps, partial);
  if (threadIdx.x == 0) row_scale[blockIdx.x] = inv;
}

// dst[row][in] in W's type: the linear layer's input as LinearInput builds it, times col_scale
// by column where given; what a cuBLASLt GEMM and the 4-bit GEMV read. The blocks of a row
// (gridDim.y) take a slice each, each finding the row's 1/rms alone: a decode step's few rows
// then still spread over many SMs.
template <typename W, int MODE>
__global__ void stage_kernel(const float* __restrict__ x, float eps, int in, const float* __restrict__ col_scale, W* __restrict__ dst) {
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
    __align__(16) W h[8];
#pragma unroll
    for (int j = 0; j < 8; ++j) h[j] = Cvt<W>::from(v[j]);
    *reinterpret_cast<uint4*>(dst + row * in + k) = *reinterpret_cast<const uint4*>(h);
  }
}

template <typename W>
void stage_w(const LinearInput& x, int rows, int in, const float* col_scale, W* dst, cudaStream_t s) {
  const dim3 grid(rows, rows < 32 ? (in + 1023) / 1024 : 1);  // slices of about 1024 inputs for a few rows
  switch (x.kind) {
    case LinearInput::Plain: return check(launch(stage_kernel<W, LinearInput::Plain>, grid, 256, 0, s, x.x, x.eps, in, col_scale, dst), "GEMM input");
    case LinearInput::RmsNorm:
      return check(launch(stage_kernel<W, LinearInput::RmsNorm>, grid, 256, 0, s, x.x, x.eps, in, col_scale, dst), "GEMM input");
    case LinearInput::SwiGlu: return check(launch(stage_kernel<W, LinearInput::SwiGlu>, grid, 256, 0, s, x.x, x.eps, in, col_scale, dst), "GEMM input");
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
  if (rows == 1) return gemv<W, MODE, 1>(x, 1, L, y, accumulate, s);
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

// Input rows a batched GEMV launch takes: kGemvRows, or fewer where their inputs would not fit
// in a block's shared memory.
int gemv_rows(int in) {
  static const int smem = [] {
    int device = 0, bytes = 0;
    check(cudaGetDevice(&device), "cudaGetDevice");
    check(cudaDeviceGetAttribute(&bytes, cudaDevAttrMaxSharedMemoryPerBlockOptin, device), "shared memory size");
    return bytes;
  }();
  // Leave room for the kernel's static shared memory (the partial sums).
  return std::max(1, std::min(kGemvRows, (smem - 2048) / (in * int(sizeof(float)))));
}

template <typename W>
void linear_rows_w(const LinearInput& x, int rows, const DeviceLinear& L, float* y, bool accumulate, cudaStream_t s) {
  const int step = gemv_rows(L.in);
  const size_t width = x.kind == LinearInput::SwiGlu ? 2 * size_t(L.in) : size_t(L.in);
  for (int r0 = 0; r0 < rows; r0 += step) {
    LinearInput part = x;
    part.x = x.x + size_t(r0) * width;
    const int n = std::min(step, rows - r0);
    switch (x.kind) {
      case LinearInput::Plain: gemv<W, LinearInput::Plain, kGemvRows>(part, n, L, y + size_t(r0) * L.out, accumulate, s); break;
      case LinearInput::RmsNorm: gemv<W, LinearInput::RmsNorm, kGemvRows>(part, n, L, y + size_t(r0) * L.out, accumulate, s); break;
      case LinearInput::SwiGlu: gemv<W, LinearInput::SwiGlu, kGemvRows>(part, n, L, y + size_t(r0) * L.out, accumulate, s); break;
    }
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

void linear_rows(const LinearInput& x, int rows, const DeviceLinear& L, WeightType t, float* y, bool accumulate, cudaStream_t s) {
  if (t == WeightType::F16)
    linear_rows_w<__half>(x, rows, L, y, accumulate, s);
  else
    linear_rows_w<__nv_bfloat16>(x, rows, L, y, accumulate, s);
}

void stage_input(const LinearInput& x, int rows, int in, WeightType t, void* dst, cudaStream_t s, const float* col_scale) {
  if (t == WeightType::F16)
    stage_w(x, rows, in, col_scale, static_cast<__half*>(dst), s);
  else
    stage_w(x, rows, in, col_scale, static_cast<__nv_bfloat16*>(dst), s);
}

void to_weight_type(const float* src, void* dst, WeightType t, size_t n, int* nonfinite, cudaStream_t s) {
  if (t == WeightType::F16)
    convert_kernel<__half><<<blocks_for(n), 256, 0, s>>>(src, static_cast<__half*>(dst), n, nonfinite);
  else
    convert_kernel<__nv_bfloat16><<<blocks_for(n), 256, 0, s>>>(src, static_cast<__nv_bfloat16*>(dst), n, nonfinite);
  check(cudaGetLastError(), "weight conversion");
}

}  // namespace quest
