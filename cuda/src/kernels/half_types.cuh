// The 16-bit types weights and the KV cache are stored in (fp16, bf16): conversions to and
// from fp32 in one place for every kernel, and a host-side switch from the runtime type to
// the kernel's template argument.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <iterator>
#include <type_traits>

#include "kernels/gpu_shapes.h"

namespace quest {

enum class HalfType { F16, BF16 };

template <typename W>
struct Cvt;
template <>
struct Cvt<__half> {
  __device__ static __half from(float f) { return __float2half_rn(f); }
  __device__ static float2 to2(const void* p) { return __half22float2(*reinterpret_cast<const __half2*>(p)); }
  __device__ static float to(__half h) { return __half2float(h); }
  __device__ static __half min(__half a, __half b) { return __hmin(a, b); }
  __device__ static __half max(__half a, __half b) { return __hmax(a, b); }
};
template <>
struct Cvt<__nv_bfloat16> {
  __device__ static __nv_bfloat16 from(float f) { return __float2bfloat16_rn(f); }
  __device__ static float2 to2(const void* p) { return __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(p)); }
  __device__ static float to(__nv_bfloat16 h) { return __bfloat162float(h); }
  __device__ static __nv_bfloat16 min(__nv_bfloat16 a, __nv_bfloat16 b) { return __hmin(a, b); }
  __device__ static __nv_bfloat16 max(__nv_bfloat16 a, __nv_bfloat16 b) { return __hmax(a, b); }
};

// Eight values from one 16-byte load.
template <typename W>
__device__ inline void unpack8(const uint4& raw, float out[8]) {
  const uint32_t* u = reinterpret_cast<const uint32_t*>(&raw);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 f = Cvt<W>::to2(&u[i]);
    out[2 * i] = f.x;
    out[2 * i + 1] = f.y;
  }
}

template <typename W>
__device__ inline void load8(const W* p, float out[8]) {
  unpack8<W>(*reinterpret_cast<const uint4*>(p), out);
}

// Calls f(W{}) with W the C++ type of `t`: the host's way to a kernel's instantiation.
template <typename F>
auto with_half_type(HalfType t, F&& f) {
  return t == HalfType::BF16 ? f(__nv_bfloat16{}) : f(__half{});
}

// Calls f(W{}, D) for the attention kernels' instantiations: W as above, D the head_dim (one of
// kGpuHeadDims, which the caller has checked) as a std::integral_constant.
template <typename F>
auto with_type_and_dim(HalfType t, int head_dim, F&& f) {
  static_assert(std::size(kGpuHeadDims) == 4 && gpu_head_dim(64) && gpu_head_dim(96) && gpu_head_dim(128) && gpu_head_dim(256),
                "the head_dims instantiated below");
  return with_half_type(t, [&](auto w) {
    switch (head_dim) {
      case 96: return f(w, std::integral_constant<int, 96>{});
      case 128: return f(w, std::integral_constant<int, 128>{});
      case 256: return f(w, std::integral_constant<int, 256>{});
      default: return f(w, std::integral_constant<int, 64>{});
    }
  });
}

}  // namespace quest
