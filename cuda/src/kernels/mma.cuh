// Register-level tensor-core building blocks (sm_80+): 16-byte asynchronous copies into shared
// memory, ldmatrix, and mma.sync m16n8k16 with fp32 accumulators, for fp16 and bf16.
//
// Fragment layouts of m16n8k16 (g = lane / 4, t = lane % 4), as the PTX ISA gives them:
//   A (16 x 16, row-major), 4 regs of two values: (g, 2t..), (g + 8, 2t..), (g, 2t + 8..), (g + 8, 2t + 8..)
//   B (16 x 8, k x n),      2 regs:               (k 2t.., n g), (k 2t + 8.., n g)
//   C (16 x 8, fp32),       4 floats:             (g, 2t), (g, 2t + 1), (g + 8, 2t), (g + 8, 2t + 1)
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

namespace quest {

// 16 bytes from global to shared memory, bypassing L1; zeros instead when !valid.
__device__ inline void cp_async16(void* smem, const void* gmem, bool valid) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(valid ? 16 : 0) : "memory");
}
__device__ inline void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
// Waits until at most N of this thread's committed groups are still in flight.
template <int N>
__device__ inline void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

// Four 8x8 matrices of 16-bit values; lanes 8i..8i+7 give the row addresses of matrix i, and
// register i receives matrix i (TRANS: transposed).
template <bool TRANS>
__device__ inline void ldmatrix_x4(uint32_t r[4], const void* smem) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  if (TRANS)
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(s));
  else
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(s));
}

// c += a b on tensor cores, E the 16-bit type of a and b.
template <typename E>
__device__ inline void mma16816(float c[4], const uint32_t a[4], const uint32_t b0, const uint32_t b1) {
  if constexpr (std::is_same_v<E, __half>)
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  else
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// s = Q K^T for a warp's MT m16 tiles of queries (rows q_row.. of Qs) against KEYS keys (the
// rows of Ks), both in shared memory with rows `stride` values apart: each key fragment read
// serves every m-tile (for MT = 2, half the shared-memory reads of 16 rows a warp).
template <int D, int MT, int KEYS, typename E>
__device__ inline void qk_scores(float (&s)[MT][KEYS / 8][4], const E* Qs, int q_row, const E* Ks, int stride, int lane) {
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int n = 0; n < KEYS / 8; ++n) s[mt][n][0] = s[mt][n][1] = s[mt][n][2] = s[mt][n][3] = 0.0f;
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
    uint32_t a[MT][4];
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
      ldmatrix_x4<false>(a[mt], Qs + (q_row + mt * 16 + lane % 8 + (lane / 8 % 2) * 8) * stride + kk * 16 + lane / 16 * 8);
#pragma unroll
    for (int np = 0; np < KEYS / 16; ++np) {
      uint32_t b[4];
      ldmatrix_x4<false>(b, Ks + (np * 16 + lane % 8 + lane / 16 * 8) * stride + kk * 16 + (lane / 8 % 2) * 8);
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
        mma16816<E>(s[mt][2 * np], a[mt], b[0], b[1]);
        mma16816<E>(s[mt][2 * np + 1], a[mt], b[2], b[3]);
      }
    }
  }
}

// Two fp32 values as one register of E (the first in the low half, as fragments hold them).
template <typename E>
__device__ inline uint32_t pack2(float lo, float hi) {
  if constexpr (std::is_same_v<E, __half>) {
    const __half2 h = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&h);
  } else {
    const __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&h);
  }
}

}  // namespace quest
