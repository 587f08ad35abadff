// The reference backend: plain fp32 loops over the thread pool. Clarity first; it is the
// oracle every faster kernel is compared with.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <mutex>

#include "engine/backend.h"
#include "engine/thread_pool.h"

namespace quest {
namespace {

// Eight partial sums let the compiler vectorise without reassociation flags.
inline float dot(const float* a, const float* b, int n) {
  float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) s[j] += a[i + j] * b[i + j];
  float t = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
  for (; i < n; ++i) t += a[i] * b[i];
  return t;
}

// Attention of query head `qh` over `n` positions of KV head `g` (`at(j)`: the j-th): its
// probabilities into `p`, its output into `o`. attend's rows and the diagnostics' dense pass
// share it, so a read of every position gives the dense result bit for bit.
template <class At>
void attend_row(const PagedKvCache& cache, int layer, int g, const float* qh, int64_t n, At at, float scale, float softcap,
                std::vector<float>& p, float* o) {
  const int d = cache.head_dim();
  p.resize(n);
  float mx = -INFINITY;
  for (int64_t j = 0; j < n; ++j) {
    p[j] = attention_score(dot(qh, cache.key(layer, g, at(j)), d), scale, softcap);
    mx = std::max(mx, p[j]);
  }
  float sum = 0.0f;
  for (int64_t j = 0; j < n; ++j) sum += (p[j] = std::exp(p[j] - mx));
  std::fill(o, o + d, 0.0f);
  for (int64_t j = 0; j < n; ++j) {
    p[j] /= sum;
    const float* v = cache.value(layer, g, at(j));
    for (int c = 0; c < d; ++c) o[c] += p[j] * v[c];
  }
}

class CpuBackend final : public Backend {
 public:
  const char* name() const override { return "cpu"; }

  void embed(const float* table, int dim, const int32_t* tokens, int rows, float* y) override {
    for (int r = 0; r < rows; ++r) std::memcpy(y + int64_t(r) * dim, table + int64_t(tokens[r]) * dim, dim * sizeof(float));
  }

  void matmul(const float* x, int rows, const Linear& w, float* y) override {
    constexpr int kBlock = 16;
    int64_t blocks = (w.out + kBlock - 1) / kBlock;
    cpu_pool().parallel_for(blocks, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        int o0 = int(b * kBlock), o1 = std::min(w.out, o0 + kBlock);
        for (int r = 0; r < rows; ++r) {
          const float* xr = x + int64_t(r) * w.in;
          float* yr = y + int64_t(r) * w.out;
          for (int o = o0; o < o1; ++o) yr[o] = dot(xr, w.w + int64_t(o) * w.in, w.in) + (w.b ? w.b[o] : 0.0f);
        }
      }
    });
  }

  void rmsnorm(const float* x, int rows, int dim, const float* weight, float eps, float* y) override {
    for (int r = 0; r < rows; ++r) {
      const float* xr = x + int64_t(r) * dim;
      float* yr = y + int64_t(r) * dim;
      float ss = dot(xr, xr, dim);
      float inv = 1.0f / std::sqrt(ss / dim + eps);
      for (int i = 0; i < dim; ++i) yr[i] = weight[i] * (xr[i] * inv);
    }
  }

  void rope(float* x, int rows, int heads, int head_dim, const int64_t* pos, const float* inv_freq, float scale) override {
    int half = head_dim / 2;
    std::vector<float> cs(half), sn(half);
    for (int r = 0; r < rows; ++r) {
      // The angle is formed in fp32 as transformers does (position * inv_freq), then rotated.
      for (int i = 0; i < half; ++i) {
        float angle = static_cast<float>(pos[r]) * inv_freq[i];
        cs[i] = static_cast<float>(std::cos(static_cast<double>(angle))) * scale;
        sn[i] = static_cast<float>(std::sin(static_cast<double>(angle))) * scale;
      }
      for (int h = 0; h < heads; ++h) {
        float* v = x + (int64_t(r) * heads + h) * head_dim;
        for (int i = 0; i < half; ++i) {
          float a = v[i], b = v[i + half];
          v[i] = a * cs[i] - b * sn[i];
          v[i + half] = b * cs[i] + a * sn[i];
        }
      }
    }
  }

  void swiglu(const float* gate, const float* up, int64_t n, float* y) override {
    for (int64_t i = 0; i < n; ++i) y[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
  }

  void geglu(const float* gate, const float* up, int64_t n, float* y) override {
    const float k = 0.7978845608028654f;  // sqrt(2 / pi)
    for (int64_t i = 0; i < n; ++i) {
      float x = gate[i];
      y[i] = 0.5f * x * (1.0f + std::tanh(k * (x + 0.044715f * x * x * x))) * up[i];
    }
  }

  void scale(float* x, int64_t n, float s) override {
    for (int64_t i = 0; i < n; ++i) x[i] *= s;
  }

  void softcap(float* x, int64_t n, float cap) override {
    for (int64_t i = 0; i < n; ++i) x[i] = soft_capped(x[i], cap);
  }

  void add(float* x, const float* y, int64_t n) override {
    for (int64_t i = 0; i < n; ++i) x[i] += y[i];
  }

  void attend(const PagedKvCache& cache, int layer, const float* q, int rows, int heads, const int64_t* pos,
              const Selection* sel, float* out, AttentionScores* scores, const AttendOptions& how) override {
    const int kvh = cache.kv_heads(), d = cache.head_dim(), group = heads / kvh;
    const float scale = how.scale_for(d);
    const int64_t window = how.window;
    const bool per_query = sel && int(sel->size()) == heads;
    const int64_t last_pos = *std::max_element(pos, pos + rows);
    const bool want = scores && scores->wanted();
    if (want) scores->reset(kvh);
    // Each chunk's share of the scores is merged in chunk order afterwards, so the sums
    // (and the policies' choices that depend on them) are the same on every run.
    std::mutex shares_mu;
    std::map<int64_t, AttentionScores> shares;
    cpu_pool().parallel_for(int64_t(rows) * heads, [&](int64_t i0, int64_t i1) {
      std::vector<float> p;
      AttentionScores local;
      if (want) {
        local = *scores;
        local.reset(kvh);
      }
      for (int64_t i = i0; i < i1; ++i) {
        int r = int(i / heads), h = int(i % heads), g = h / group;
        const float* qh = q + i * d;
        float* oh = out + i * d;
        const std::vector<int32_t>* list = nullptr;
        if (sel) list = &(*sel)[per_query ? h : g];
        if (list && list->empty()) list = nullptr;
        // Without a list, positions first..pos[r]: all of them, or the window's (transformers'
        // sliding_window_overlay: kv > q - window).
        const int64_t first = list || window <= 0 ? 0 : std::max<int64_t>(0, pos[r] - window + 1);
        int64_t n = list ? int64_t(list->size()) : pos[r] + 1 - first;
        attend_row(cache, layer, g, qh, n, [&](int64_t j) { return list ? int64_t((*list)[j]) : first + j; }, scale, how.softcap, p, oh);
        if (want) {
          int64_t span = list ? int64_t(list->back()) + 1 : first + n;  // lists are sorted
          auto fold = [&](std::vector<float>& acc) {
            if (int64_t(acc.size()) < span) acc.resize(span, 0.0f);
            for (int64_t j = 0; j < n; ++j) acc[list ? (*list)[j] : first + j] += p[j];
          };
          if (local.want_sums) fold(local.sums[g]);
          if (local.want_last && pos[r] == last_pos) fold(local.last[g]);
          if (local.window_from >= 0 && pos[r] >= local.window_from) fold(local.window[g]);
        }
      }
      if (want) {
        std::lock_guard<std::mutex> lock(shares_mu);
        shares.emplace(i0, std::move(local));
      }
    });
    auto merge = [](std::vector<std::vector<float>>& dst, const std::vector<std::vector<float>>& src) {
      for (size_t g = 0; g < src.size(); ++g) {
        if (dst[g].size() < src[g].size()) dst[g].resize(src[g].size(), 0.0f);
        for (size_t j = 0; j < src[g].size(); ++j) dst[g][j] += src[g][j];
      }
    };
    for (auto& [begin, share] : shares) {
      merge(scores->sums, share.sums);
      merge(scores->last, share.last);
      merge(scores->window, share.window);
    }
  }
};

}  // namespace

Backend& cpu_backend() {
  static CpuBackend backend;
  return backend;
}

void attention_diagnostics(const PagedKvCache& cache, int layer, const float* q, int heads, int64_t pos, const Selection& sel,
                           const float* out, const AttendOptions& how, std::vector<float>& l2, std::vector<float>& recall) {
  const int kvh = cache.kv_heads(), d = cache.head_dim(), group = heads / kvh;
  const bool per_query = int(sel.size()) == heads;
  const float scale = how.scale_for(d);
  const size_t base = l2.size();
  l2.resize(base + kvh);
  recall.resize(base + kvh);
  cpu_pool().parallel_for(kvh, [&](int64_t g0, int64_t g1) {
    std::vector<float> p, dense(d);
    for (int64_t g = g0; g < g1; ++g) {
      double err = 0, norm = 0, mass = 0;
      for (int h = int(g) * group; h < int(g + 1) * group; ++h) {
        attend_row(cache, layer, int(g), q + int64_t(h) * d, pos + 1, [](int64_t j) { return j; }, scale, how.softcap, p, dense.data());
        for (int c = 0; c < d; ++c) {
          const double e = double(out[int64_t(h) * d + c]) - dense[c];
          err += e * e;
          norm += double(dense[c]) * dense[c];
        }
        const std::vector<int32_t>& list = sel[per_query ? h : g];
        if (list.empty())
          for (float x : p) mass += x;
        else
          for (int32_t t : list) mass += p[t];
      }
      l2[base + g] = norm > 0 ? float(std::sqrt(err / norm)) : err > 0 ? INFINITY : 0.0f;
      recall[base + g] = float(mass / group);
    }
  });
}

}  // namespace quest
