// The ops the forward pass is written against. The CPU backend (cpu/) is the reference
// every other backend is checked against; activations here are fp32 row-major arrays.
#pragma once
#include <cstdint>
#include <vector>

#include "engine/kv_cache.h"

namespace quest {

struct Linear {
  const float* w = nullptr;  // [out][in], as Hugging Face stores nn.Linear
  const float* b = nullptr;  // [out] or null
  int in = 0, out = 0;
};

// Which cached positions each KV head reads at one decode step; empty means all of them.
using Selection = std::vector<std::vector<int32_t>>;

// Column sums of attention probabilities, per KV head, over the positions attended to:
// what H2O-style policies accumulate. Filled only when asked for.
struct AttentionScores {
  bool wanted = false;
  std::vector<std::vector<float>> per_kv_head;  // [kv_head][position]
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;
  virtual void embed(const float* table, int dim, const int32_t* tokens, int rows, float* y) = 0;
  virtual void matmul(const float* x, int rows, const Linear& w, float* y) = 0;
  virtual void rmsnorm(const float* x, int rows, int dim, const float* weight, float eps, float* y) = 0;
  // Rotates [rows][heads][head_dim] in place by each row's position (rotate-half layout).
  virtual void rope(float* x, int rows, int heads, int head_dim, const int64_t* pos, const float* inv_freq) = 0;
  virtual void swiglu(const float* gate, const float* up, int64_t n, float* y) = 0;
  virtual void add(float* x, const float* y, int64_t n) = 0;
  // out[r] = attention of q[r] ([heads][head_dim]) over the cache of `layer`: causally over
  // positions [0, pos[r]] when `sel` is null, else over the positions `sel` lists per KV head.
  virtual void attend(const PagedKvCache& cache, int layer, const float* q, int rows, int heads,
                      const int64_t* pos, const Selection* sel, float* out, AttentionScores* scores) = 0;
};

Backend& cpu_backend();

}  // namespace quest
