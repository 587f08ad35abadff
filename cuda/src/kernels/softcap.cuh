// Attention logit soft-capping (Gemma 2, issue #22): cap * tanh(s / cap) on each score before
// the softmax. Every kernel that forms scores takes it as a compile-time switch CAP, so that a
// model without a cap (cap 0 on the host) runs the code it ran before.
#pragma once
#include <type_traits>

namespace quest {

// s capped: tanh(s * inv) * cap, with inv the scale that takes s to the capped unit over the cap.
template <bool CAP>
__device__ __forceinline__ float soft_cap(float s, float inv, float cap) {
  if constexpr (CAP) return tanhf(s * inv) * cap;
  return s;
}

// Calls f(std::bool_constant<(cap > 0)>{}): the host's way to a kernel's CAP.
template <typename F>
auto with_cap(float cap, F&& f) {
  return cap > 0 ? f(std::true_type{}) : f(std::false_type{});
}

}  // namespace quest
