// The ops the forward pass is written against. The CPU backend (cpu/) is the reference
// every other backend is checked against; activations here are fp32 row-major arrays.
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#include "engine/kv_cache.h"

namespace quest {

struct Linear {
  const float* w = nullptr;  // [out][in], as Hugging Face stores nn.Linear
  const float* b = nullptr;  // [out] or null
  int in = 0, out = 0;
};

// Which cached positions each head reads at one decode step: one sorted list per KV head
// (or per query head, for policies that select per query head). An empty list means all.
using Selection = std::vector<std::vector<int32_t>>;

// How attention scores are formed: the window of positions a row sees without a selection (0:
// all before it), the scale (0: head_dim^-1/2) and Gemma's tanh soft-cap (0: none).
struct AttendOptions {
  int64_t window = 0;
  float scale = 0;
  float softcap = 0;
  float scale_for(int head_dim) const { return scale > 0 ? scale : 1.0f / std::sqrt(static_cast<float>(head_dim)); }
};

// Gemma 2's soft-cap of a score or logit.
inline float soft_capped(float x, float cap) { return std::tanh(x / cap) * cap; }

// An attention score from q.k: scaled, then soft-capped where the model caps (cap > 0).
inline float attention_score(float dot, float scale, float cap) { return cap > 0 ? soft_capped(dot * scale, cap) : dot * scale; }

// Attention probabilities a policy asked to see, summed over the query heads of each KV
// head, indexed [kv_head][position]. Filled only for the parts requested.
struct AttentionScores {
  bool want_sums = false;      // column sums over every row attended (H2O)
  bool want_last = false;      // the probabilities of the last row (TOVA after the prefill)
  int64_t window_from = -1;    // >= 0: column sums over rows at positions >= this (SnapKV)
  std::vector<std::vector<float>> sums, last, window;
  bool wanted() const { return want_sums || want_last || window_from >= 0; }
  void reset(int kv_heads) {
    sums.assign(want_sums ? kv_heads : 0, {});
    last.assign(want_last ? kv_heads : 0, {});
    window.assign(window_from >= 0 ? kv_heads : 0, {});
  }
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;
  virtual void embed(const float* table, int dim, const int32_t* tokens, int rows, float* y) = 0;
  virtual void matmul(const float* x, int rows, const Linear& w, float* y) = 0;
  virtual void rmsnorm(const float* x, int rows, int dim, const float* weight, float eps, float* y) = 0;
  // Rotates [rows][heads][head_dim] in place by each row's position (rotate-half layout), with
  // cos and sin multiplied by `scale` (yarn's and longrope's attention factor).
  virtual void rope(float* x, int rows, int heads, int head_dim, const int64_t* pos, const float* inv_freq, float scale) = 0;
  virtual void swiglu(const float* gate, const float* up, int64_t n, float* y) = 0;
  // y = gelu_tanh(gate) * up (Gemma's GeGLU, transformers' gelu_pytorch_tanh).
  virtual void geglu(const float* gate, const float* up, int64_t n, float* y) = 0;
  virtual void scale(float* x, int64_t n, float s) = 0;
  // x = cap * tanh(x / cap) (Gemma's final logit soft-capping).
  virtual void softcap(float* x, int64_t n, float cap) = 0;
  virtual void add(float* x, const float* y, int64_t n) = 0;
  // out[r] = attention of q[r] ([heads][head_dim]) over the cache of `layer`: causally over
  // positions [0, pos[r]] when `sel` is null (the last `how.window` of them when set), else
  // over the positions `sel` lists (one list per KV head, or per query head when it has
  // `heads` lists).
  virtual void attend(const PagedKvCache& cache, int layer, const float* q, int rows, int heads,
                      const int64_t* pos, const Selection* sel, float* out, AttentionScores* scores, const AttendOptions& how = {}) = 0;
};

Backend& cpu_backend();

// The attention diagnostics of one decode query (CPU): for each KV head, the relative L2 error
// |o_p - o_d| / |o_d| of `out` (the policy's attention over what `sel` read, [heads][head_dim])
// against dense attention over positions 0..pos, the group's query heads taken together as one
// vector; and the dense probability mass on the positions read, averaged over the group's query
// heads (each its own list under a per-query-head selection). Appends kv_heads values to each.
void attention_diagnostics(const PagedKvCache& cache, int layer, const float* q, int heads, int64_t pos, const Selection& sel,
                           const float* out, const AttendOptions& how, std::vector<float>& l2, std::vector<float>& recall);

}  // namespace quest
