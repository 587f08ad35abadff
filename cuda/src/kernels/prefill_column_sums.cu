#include <mma.h>

#include <stdexcept>

#include "kernels/cuda_util.cuh"
#include "kernels/gpu_shapes.h"
#include "kernels/launch.cuh"
#include "kernels/prefill_attention.cuh"
#include "kernels/softcap.cuh"

namespace quest {
namespace {

using namespace nvcuda;

constexpr int kTile = 64;

// Warp w's 16 rows of S = Q K^T for a 64 x 64 tile (Q and K rows D + 8 halves apart, S rows
// kTile + 4 floats apart), on tensor cores.
template <int D, typename E>
__device__ inline void qk_tile(const E* Qs, const E* Ks, float* S, int warp) {
  constexpr int T = kTile, QS = D + 8, SS = T + 4;
  wmma::fragment<wmma::matrix_a, 16, 16, 16, E, wmma::row_major> a;
  wmma::fragment<wmma::matrix_b, 16, 16, 16, E, wmma::col_major> b;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[T / 16];
#pragma unroll
  for (int j = 0; j < T / 16; ++j) wmma::fill_fragment(acc[j], 0.0f);
#pragma unroll
  for (int k = 0; k < D; k += 16) {
    wmma::load_matrix_sync(a, Qs + warp * 16 * QS + k, QS);
#pragma unroll
    for (int j = 0; j < T / 16; ++j) {
      wmma::load_matrix_sync(b, Ks + j * 16 * QS + k, QS);
      wmma::mma_sync(acc[j], a, b, acc[j]);
    }
  }
#pragma unroll
  for (int j = 0; j < T / 16; ++j) wmma::store_matrix_sync(S + warp * 16 * SS + j * 16, acc[j], SS, wmma::mem_row_major);
}

// Loads rows [row0, row0 + kTile) of a [rows][heads][D] matrix's head h into smem (rows past
// `rows` as zeros).
template <int D, typename E>
__device__ inline void load_q_tile(const E* q, int row0, int rows, int heads, int h, E* Qs) {
  constexpr int QS = D + 8, V8 = D / 8;
  for (int idx = threadIdx.x; idx < kTile * V8; idx += blockDim.x) {
    const int r = idx / V8, c = (idx % V8) * 8;
    uint4 v = make_uint4(0, 0, 0, 0);
    if (row0 + r < rows) v = *reinterpret_cast<const uint4*>(q + ((size_t)(row0 + r) * heads + h) * D + c);
    *reinterpret_cast<uint4*>(Qs + r * QS + c) = v;
  }
}

// Loads the cache's keys at positions [p0, p0 + kTile) of KV head g into smem, positions at
// or past `total` as zeros.
template <int D, typename E>
__device__ inline void load_k_tile(const PagedKv& kv, int g, int64_t p0, int64_t total, E* Ks) {
  constexpr int QS = D + 8, V8 = D / 8;
  for (int idx = threadIdx.x; idx < kTile * V8; idx += blockDim.x) {
    const int r = idx / V8, c = (idx % V8) * 8;
    const int64_t p = p0 + r;
    uint4 kz = make_uint4(0, 0, 0, 0);
    if (p < total) {
      const size_t off = (((size_t)kv.page_table[p / kv.page_size] * kv.kv_heads + g) * kv.page_size + p % kv.page_size) * D + c;
      kz = *reinterpret_cast<const uint4*>(static_cast<const E*>(kv.k) + off);
    }
    *reinterpret_cast<uint4*>(Ks + r * QS + c) = kz;
  }
}

// One block of four warps per (64 keys, query head), over the query tiles of the chunk that
// see those keys: S on tensor cores, p = exp(S * scale - lse) of the rows (with CAP, S * scale
// soft-capped at `cap`) counted, summed down each column (two threads a column, 32 rows each),
// then added to the KV head's sums.
template <int D, typename E, bool CAP>
__global__ void __launch_bounds__(128) column_sums_kernel(const E* __restrict__ q, PagedKv kv, int heads, int rows, int64_t start,
                                                          int row_from, float scale, float cap, const float* __restrict__ lse,
                                                          float* __restrict__ acc, int acc_stride) {
  constexpr int T = kTile, QS = D + 8, SS = T + 4;
  extern __shared__ __align__(32) unsigned char smem[];
  E* Qs = reinterpret_cast<E*>(smem);
  E* Ks = Qs + T * QS;
  float* S = reinterpret_cast<float*>(Ks + T * QS);
  float* half_sums = S + T * SS;  // [2][T]
  const int h = blockIdx.y, g = h / (heads / kv.kv_heads), warp = threadIdx.x / 32;
  const int64_t key0 = (int64_t)blockIdx.x * T, total = start + rows;
  const int c = threadIdx.x % T, half = threadIdx.x / T;
  const float cap_in = CAP ? 1.0f / cap : 0.0f;
  wait_for_previous();
  load_k_tile<D, E>(kv, g, key0, total, Ks);
  // Rows before key0 - start see none of these keys.
  const int first = int(max((int64_t)row_from, key0 - start));
  float sum = 0.0f;
  for (int q0 = first / T * T; q0 < rows; q0 += T) {
    __syncthreads();
    load_q_tile<D, E>(q, q0, rows, heads, h, Qs);
    __syncthreads();
    qk_tile<D, E>(Qs, Ks, S, warp);
    __syncthreads();
    for (int r = half * (T / 2); r < (half + 1) * (T / 2); ++r) {
      const int row = q0 + r;
      const int64_t key = key0 + c;
      if (row >= row_from && row < rows && key <= start + row) sum += __expf(soft_cap<CAP>(S[r * SS + c] * scale, cap_in, cap) - lse[(size_t)row * heads + h]);
    }
  }
  half_sums[half * T + c] = sum;
  __syncthreads();
  if (half == 0 && key0 + c < total) atomicAdd(&acc[(size_t)g * acc_stride + key0 + c], sum + half_sums[T + c]);
}

template <int D>
constexpr size_t column_sums_smem() {
  return size_t(2 * kTile * (D + 8)) * 2 + size_t(kTile * (kTile + 4)) * 4 + 2 * kTile * 4;
}

template <int D, typename E>
void launch_column_sums(const ColumnSums& c, cudaStream_t s) {
  with_cap(c.softcap, [&](auto capped) {
    constexpr auto kernel = column_sums_kernel<D, E, decltype(capped)::value>;
    check(allow_shared_memory<kernel, column_sums_smem<D>()>(), "column sums shared memory");
    const dim3 grid(unsigned((c.start + c.rows + kTile - 1) / kTile), c.heads);
    check(launch(kernel, grid, 128, column_sums_smem<D>(), s, static_cast<const E*>(c.q), c.kv, c.heads, c.rows, c.start, c.row_from, c.scale,
                 c.softcap, c.lse, c.acc, c.acc_stride),
          "prefill column sums");
  });
}

}  // namespace

void prefill_column_sums(const ColumnSums& c, cudaStream_t s) {
  if (c.row_from >= c.rows) return;
  if (!gpu_head_dim(c.kv.head_dim)) throw std::runtime_error("prefill column sums: head_dim must be " + or_list(kGpuHeadDims));
  with_type_and_dim(c.kv.type, c.kv.head_dim, [&](auto t, auto d) {
    launch_column_sums<decltype(d)::value, decltype(t)>(c, s);
    return 0;
  });
}

}  // namespace quest
