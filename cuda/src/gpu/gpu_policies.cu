// The policies of policy/ on the device. Each follows its CPU counterpart's rule to the
// letter (the parity tests compare the two); the comments say only how the state is held.
#include <algorithm>
#include <array>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "gpu/gpu_policy.h"
#include "kernels/cuda_util.cuh"
#include "kernels/decode_attention.cuh"
#include "kernels/page_lists.cuh"
#include "kernels/prefill_attention.cuh"
#include "kernels/quest_select.cuh"
#include "kernels/quest_step.cuh"
#include "kernels/selection.cuh"
#include "policy/h2o.h"
#include "policy/quest.h"
#include "policy/rules.h"
#include "policy/snapkv.h"
#include "policy/streaming.h"

namespace quest {
namespace {

class DenseGpu final : public GpuPolicy {
 public:
  StepRead select(int, int64_t pos, int64_t, const AttentionCall&, cudaStream_t) override { return dense(pos); }
  bool plans_only() const override { return true; }
  static StepRead dense(int64_t pos) {
    StepRead r;
    r.tokens_read = pos + 1;
    return r;
  }
};

// Scores every full Quest page from its key bounds, then the top pages and the current one:
// page lists where Quest's page is the storage page (the whole step left to the sequence, as
// a QuestStep), token lists of the pages' positions otherwise. With per-query-head selection
// each query head has its own list, and the tokens its KV head serves (the union of its heads'
// lists) are counted on the device once the step has run.
class QuestGpu final : public GpuPolicy {
 public:
  QuestGpu(const PolicyOptions& o, int heads, int kv_heads, int head_dim)
      : o_(o), per_head_(quest_per_query_head(o)), heads_(heads), kv_heads_(kv_heads), head_dim_(head_dim), lists_(per_head_ ? heads : kv_heads) {
    indptr_.resize(lists_ + 1);
    if (o_.page_size != kGpuPage) tokens_.resize(size_t(lists_) * o_.budget);
    if (per_head_) {
      counted_.resize(1);
      check(cudaMemset(counted_.ptr, 0, sizeof(unsigned long long)), "counter");
    }
  }
  bool reads_bounds() const override { return true; }
  bool plans_only() const override { return o_.page_size == kGpuPage; }
  void grow(int64_t, int64_t capacity, cudaStream_t) override {
    scores_.resize(listed_pages(capacity));
    indices_.resize(listed_pages(capacity));
  }
  size_t state_bytes(int64_t capacity) const override { return listed_pages(capacity) * (sizeof(float) + sizeof(int)); }
  StepRead select(int, int64_t pos, int64_t, const AttentionCall& a, cudaStream_t st) override {
    const int P = o_.page_size;
    const int current = int(pos / P);
    const int64_t budget_pages = rules::quest_pages(o_.budget, P);
    union_due_ = false;
    if (rules::quest_reads_all(o_.budget, P, pos)) return DenseGpu::dense(pos);
    const bool per_head = per_head_;
    StepRead r;
    const PageLists pages{indptr_.ptr, indices_.ptr, per_head};
    const int64_t count = (budget_pages - 1) * P + (pos - int64_t(current) * P + 1);
    if (P == kGpuPage) {  // the whole step, for the sequence to run (fused where it can be)
      QuestStep& step = r.quest;
      step.a = a;
      step.per_head = per_head;
      step.pages = int(budget_pages);
      step.launch = a.plan->quest(a.kv, step.pages, a.plan->page_splits(step.pages, lists_), per_head);
      step.scores = scores_.ptr;
      step.indptr = indptr_.ptr;
      step.indices = indices_.ptr;
      r.kind = StepRead::Quest;
      r.pages = pages;
    } else {
      check(quest_estimate(a.q, a.kv, a.heads, per_head, scores_.ptr, st), "quest estimate");
      check(quest_topk(scores_.ptr, a.kv, int(budget_pages), lists_, indptr_.ptr, indices_.ptr, st), "quest top-k");
      r.kind = StepRead::Tokens;
      r.tokens = {tokens_.ptr, int(o_.budget), int(count), per_head};
      check(quest_pages_to_tokens(pages, a.kv, int(budget_pages), lists_, r.tokens, st), "quest token lists");
    }
    if (per_head) {
      union_due_ = true;
      union_kv_ = a.kv;
      union_pages_ = int(budget_pages);
    } else {
      r.tokens_read = count;
    }
    // At least one of a channel's two bounds: the estimate reads both only where the query
    // heads sharing the line disagree in sign.
    r.meta_bytes = double(current) * kv_heads_ * head_dim_ * sizeof(uint16_t);
    return r;
  }
  // The tokens the step's lists read, once they are written.
  void observe_decode(int, cudaStream_t st) override {
    if (union_due_)
      check(quest_union_tokens({indptr_.ptr, indices_.ptr, true}, union_kv_, heads_, union_pages_, counted_.ptr, st), "quest union");
    union_due_ = false;
  }
  double drain_counted_tokens(cudaStream_t st) override {
    if (!per_head_) return 0;
    unsigned long long n = 0;
    check(cudaMemcpyAsync(&n, counted_.ptr, sizeof(n), cudaMemcpyDeviceToHost, st), "counter");
    check(cudaMemsetAsync(counted_.ptr, 0, sizeof(n), st), "counter");
    check(cudaStreamSynchronize(st), "counter");
    return double(n);
  }

 private:
  PolicyOptions o_;
  bool per_head_;
  int heads_, kv_heads_, head_dim_, lists_;
  // Every list's pages of a cache of `capacity` tokens (scores_ and indices_ hold one each).
  size_t listed_pages(int64_t capacity) const { return size_t((capacity + o_.page_size - 1) / o_.page_size) * lists_; }
  DeviceBuffer<float> scores_;
  DeviceBuffer<int> indptr_, indices_, tokens_;
  DeviceBuffer<unsigned long long> counted_;
  // A per-query-head step's union to count in observe_decode: its cache and pages a list.
  bool union_due_ = false;
  PagedKv union_kv_;
  int union_pages_ = 0;
};

// What the token-selecting policies share: per layer, a kept list per KV head in two buffers
// (a step writes the next list into the other one, so no kernel reads what it overwrites), a
// per-position score per KV head where the policy accumulates one, and scratch the size of
// the cache for lists, logits and probabilities.
class TokenGpu : public GpuPolicy {
 public:
  TokenGpu(const PolicyOptions& o, int layers, int heads, int kv_heads, bool scores)
      : o_(o), heads_(heads), kv_heads_(kv_heads), keep_stride_(int(o.budget) + 1), kept_(layers), cur_(layers, 0),
        count_(layers, 0), started_(layers, false), acc_(scores ? layers : 0) {
    for (auto& k : kept_) {
      k[0].resize(size_t(kv_heads) * keep_stride_);
      k[1].resize(size_t(kv_heads) * keep_stride_);
    }
    lse_.resize(heads);
  }

  void grow(int64_t old, int64_t capacity, cudaStream_t st) override {
    cap_ = int(capacity);
    // Logits and probabilities are laid out by list, whose stride is the cache's or the kept
    // lists' (B + 1, which a short prompt's cache may not reach).
    const size_t wide = std::max(cap_, keep_stride_);
    list_.resize(size_t(kv_heads_) * cap_);
    logits_.resize(size_t(heads_) * wide);
    probs_.resize(size_t(kv_heads_) * wide);
    for (auto& a : acc_) {
      DeviceBuffer<float> fresh(size_t(kv_heads_) * cap_);
      check(cudaMemsetAsync(fresh.ptr, 0, fresh.n * sizeof(float), st), "policy scores");
      if (old > 0)
        check(cudaMemcpy2DAsync(fresh.ptr, size_t(cap_) * sizeof(float), a.ptr, size_t(old) * sizeof(float), size_t(old) * sizeof(float),
                                kv_heads_, cudaMemcpyDeviceToDevice, st),
              "policy scores");
      check(cudaStreamSynchronize(st), "policy scores");
      a = std::move(fresh);
    }
  }
  size_t state_bytes(int64_t capacity) const override {
    if (capacity == 0) return 0;  // nothing grown yet
    const size_t cap = size_t(capacity), wide = std::max(cap, size_t(keep_stride_));
    return kv_heads_ * cap * sizeof(int) + (size_t(heads_) + kv_heads_) * wide * sizeof(float) + acc_.size() * kv_heads_ * cap * sizeof(float);
  }
  void copy_prefill_statistics(const GpuPolicy& from, cudaStream_t st) override {
    const auto& f = static_cast<const TokenGpu&>(from);
    for (size_t l = 0; l < acc_.size(); ++l)
      check(cudaMemcpyAsync(acc_[l].ptr, f.acc_[l].ptr, acc_[l].n * sizeof(float), cudaMemcpyDeviceToDevice, st), "prefill statistics copy");
  }

 protected:
  int* kept(int layer) { return kept_[layer][cur_[layer]].ptr; }
  int* other(int layer) { return kept_[layer][1 - cur_[layer]].ptr; }
  void flip(int layer) { cur_[layer] = 1 - cur_[layer]; }
  // Drops one of the first `count` entries of each of other(layer)'s lists, by `scores`, into kept(layer).
  EvictOne eviction(int layer, int count, const float* scores, int score_stride) {
    EvictOne e;
    e.in = other(layer);
    e.count = count;
    e.in_stride = keep_stride_;
    e.scores = scores;
    e.score_stride = score_stride;
    e.kv_heads = kv_heads_;
    e.out = kept(layer);
    e.out_stride = keep_stride_;
    return e;
  }
  // Reads `count` entries of `list` (stride ints a KV head), with its logits reported when asked.
  StepRead tokens(const int* list, int stride, int count, bool report) {
    StepRead r;
    r.kind = StepRead::Tokens;
    r.tokens = {list, stride, count};
    if (report) r.report = {logits_.ptr, stride, lse_.ptr};
    r.tokens_read = count;
    reported_ = r.tokens;
    return r;
  }
  // The probabilities of the last probed step, summed over each KV head's query heads.
  void probabilities(float* acc, float* probs, cudaStream_t st) {
    GroupProbs p;
    p.logits = logits_.ptr;
    p.lse = lse_.ptr;
    p.stride = reported_.stride;
    p.heads = heads_;
    p.kv_heads = kv_heads_;
    p.lists = reported_.indices;
    p.count = reported_.count;
    p.acc = acc;
    p.acc_stride = cap_;
    p.probs = probs;
    check(group_probs(p, st), "attention probabilities");
  }
  void observe_rows(int layer, const AttentionCall& a, int rows, int64_t start, int row_from, const float* lse, cudaStream_t st) {
    ColumnSums c;
    c.q = a.q;
    c.kv = a.kv;
    c.heads = a.heads;
    c.rows = rows;
    c.start = start;
    c.row_from = row_from;
    c.scale = a.scale;
    c.softcap = a.softcap;
    c.lse = lse;
    c.acc = acc_[layer].ptr;
    c.acc_stride = cap_;
    prefill_column_sums(c, st);
  }

  PolicyOptions o_;
  int heads_, kv_heads_, keep_stride_, cap_ = 0;
  std::vector<std::array<DeviceBuffer<int>, 2>> kept_;
  std::vector<int> cur_;
  std::vector<int64_t> count_;
  std::vector<bool> started_;
  std::vector<DeviceBuffer<float>> acc_;  // [layer]: [kv head][position]
  DeviceBuffer<int> list_;
  DeviceBuffer<float> logits_, lse_, probs_;
  TokenLists reported_;
};

class StreamingGpu final : public TokenGpu {
 public:
  StreamingGpu(const PolicyOptions& o, int layers, int heads, int kv_heads) : TokenGpu(o, layers, heads, kv_heads, false) {}
  StepRead select(int layer, int64_t pos, int64_t, const AttentionCall&, cudaStream_t st) override {
    if (rules::budget_covers(o_.budget, pos)) return DenseGpu::dense(pos);
    const int sinks = streaming_sinks(o_), end = int(pos + 1);
    check(compose_lists({}, {0, sinks}, {end - int(o_.budget - sinks), end}, kv_heads_, kept(layer), keep_stride_, st),
          "streaming lists");
    return tokens(kept(layer), keep_stride_, int(o_.budget), false);
  }
};

class H2oGpu final : public TokenGpu {
 public:
  H2oGpu(const PolicyOptions& o, int layers, int heads, int kv_heads) : TokenGpu(o, layers, heads, kv_heads, true) {
    heavy_ = int(rules::h2o_heavy(o.budget, h2o_heavy_fraction(o)));
    recent_ = int(o.budget) - heavy_;
  }
  bool wants_prefill_lse() const override { return true; }
  std::string prefill_statistics() const override { return "column sums"; }
  void observe_prefill(int layer, const AttentionCall& a, int rows, int64_t start, int64_t, const float* lse, cudaStream_t st) override {
    observe_rows(layer, a, rows, start, 0, lse, st);
  }
  StepRead select(int layer, int64_t pos, int64_t, const AttentionCall&, cudaStream_t st) override {
    const int B = int(o_.budget), end = int(pos + 1);
    int64_t& count = count_[layer];
    if (!started_[layer]) {
      started_[layer] = true;
      if (end > B) {
        const int older = end - recent_;
        if (heavy_ > 0) check(top_k_indices(acc_[layer].ptr, cap_, older, heavy_, kv_heads_, kept(layer), keep_stride_, st), "h2o heavy");
        check(compose_lists({kept(layer), heavy_, keep_stride_}, {older, end}, {}, kv_heads_, other(layer), keep_stride_, st), "h2o lists");
        flip(layer);
        count = B;
      } else {
        check(compose_lists({}, {0, end}, {}, kv_heads_, kept(layer), keep_stride_, st), "h2o lists");
        count = end;
      }
    } else {
      check(compose_lists({kept(layer), int(count), keep_stride_}, {end - 1, end}, {}, kv_heads_, other(layer), keep_stride_, st), "h2o lists");
      if (count + 1 > B) {
        EvictOne e = eviction(layer, int(count) + 1, acc_[layer].ptr, cap_);
        e.by_position = true;
        e.protect = recent_;
        e.drop_later = true;
        check(evict_one(e, st), "h2o eviction");
      } else {
        flip(layer);
        count += 1;
      }
    }
    return tokens(kept(layer), keep_stride_, int(count), true);
  }
  void observe_decode(int layer, cudaStream_t st) override { probabilities(acc_[layer].ptr, nullptr, st); }

 private:
  int heavy_ = 0, recent_ = 0;
};

class TovaGpu final : public TokenGpu {
 public:
  TovaGpu(const PolicyOptions& o, int layers, int heads, int kv_heads) : TokenGpu(o, layers, heads, kv_heads, true) {}
  bool wants_prefill_lse() const override { return true; }
  std::string prefill_statistics() const override { return "last row"; }
  // Each chunk's last row replaces the previous chunk's: the prompt's last row remains.
  void observe_prefill(int layer, const AttentionCall& a, int rows, int64_t start, int64_t, const float* lse, cudaStream_t st) override {
    check(cudaMemsetAsync(acc_[layer].ptr, 0, acc_[layer].n * sizeof(float), st), "tova scores");
    observe_rows(layer, a, rows, start, rows - 1, lse, st);
  }
  StepRead select(int layer, int64_t pos, int64_t, const AttentionCall&, cudaStream_t st) override {
    const int keep = int(rules::tova_kept(o_.budget)), p = int(pos);
    int64_t& count = count_[layer];
    if (!started_[layer]) {
      started_[layer] = true;
      if (p <= keep) {
        check(compose_lists({}, {0, p}, {}, kv_heads_, kept(layer), keep_stride_, st), "tova lists");
        count = p;
      } else {
        // A budget of one keeps nothing but the newest token.
        if (keep > 0) check(top_k_indices(acc_[layer].ptr, cap_, p, keep, kv_heads_, kept(layer), keep_stride_, st), "tova selection");
        count = keep;
      }
    }
    check(compose_lists({kept(layer), int(count), keep_stride_}, {p, p + 1}, {}, kv_heads_, other(layer), keep_stride_, st), "tova lists");
    return tokens(other(layer), keep_stride_, int(count) + 1, true);
  }
  // The step read other(layer); what stays of it becomes the kept list.
  void observe_decode(int layer, cudaStream_t st) override {
    const int keep = int(rules::tova_kept(o_.budget)), read = int(count_[layer]) + 1;
    if (read > keep) {
      probabilities(nullptr, probs_.ptr, st);
      check(evict_one(eviction(layer, read, probs_.ptr, keep_stride_), st), "tova eviction");
      count_[layer] = keep;
    } else {
      flip(layer);
      count_[layer] = read;
    }
  }
};

class SnapKvGpu final : public TokenGpu {
 public:
  SnapKvGpu(const PolicyOptions& o, int layers, int heads, int kv_heads)
      : TokenGpu(o, layers, heads, kv_heads, true), compressed_(layers, false) {}
  bool wants_prefill_lse() const override { return true; }
  std::string prefill_statistics() const override { return "window of " + std::to_string(snapkv_window(o_)); }
  void observe_prefill(int layer, const AttentionCall& a, int rows, int64_t start, int64_t prompt_end, const float* lse,
                       cudaStream_t st) override {
    const int64_t from = std::max<int64_t>(0, prompt_end - snapkv_window(o_));
    if (start + rows > from) observe_rows(layer, a, rows, start, int(std::max<int64_t>(0, from - start)), lse, st);
  }
  StepRead select(int layer, int64_t pos, int64_t prompt_end, const AttentionCall&, cudaStream_t st) override {
    const int B = int(o_.budget), W = snapkv_window(o_), end = int(prompt_end), chosen = int(rules::snapkv_chosen(B, W));
    if (!started_[layer]) {
      started_[layer] = true;
      compressed_[layer] = rules::snapkv_compresses(B, prompt_end);
      if (compressed_[layer]) {
        const int prefix = end - W;
        check(max_pool(acc_[layer].ptr, cap_, prefix, snapkv_kernel(o_) / 2, kv_heads_, probs_.ptr, st), "snapkv pooling");
        check(top_k_indices(probs_.ptr, cap_, prefix, chosen, kv_heads_, other(layer), keep_stride_, st), "snapkv selection");
        check(compose_lists({other(layer), chosen, keep_stride_}, {prefix, end}, {}, kv_heads_, kept(layer), keep_stride_, st), "snapkv lists");
      }
    }
    if (!compressed_[layer]) return DenseGpu::dense(pos);
    check(compose_lists({kept(layer), B, keep_stride_}, {end, int(pos + 1)}, {}, kv_heads_, list_.ptr, cap_, st), "snapkv lists");
    return tokens(list_.ptr, cap_, int(rules::snapkv_reads(B, prompt_end, pos)), false);
  }

 private:
  std::vector<bool> compressed_;
};

// Attends over the whole cache once to learn each token's probability, keeps the B most
// probable per KV head, and the step then reads those.
class OracleGpu final : public TokenGpu {
 public:
  OracleGpu(const PolicyOptions& o, int layers, int heads, int kv_heads) : TokenGpu(o, layers, heads, kv_heads, false) {}
  StepRead select(int layer, int64_t pos, int64_t, const AttentionCall& a, cudaStream_t st) override {
    const int B = int(o_.budget), end = int(pos + 1);
    if (rules::budget_covers(B, pos)) return DenseGpu::dense(pos);
    check(compose_lists({}, {0, end}, {}, kv_heads_, list_.ptr, cap_, st), "oracle lists");
    const StepRead all = tokens(list_.ptr, cap_, end, true);
    const int splits = a.plan->tokens(a.plan->token_splits(end, kv_heads_), all.tokens.per_head);
    check(decode_attention_tokens(a, all.tokens, splits, all.report, st), "oracle attention");
    probabilities(nullptr, probs_.ptr, st);
    check(top_k_indices(probs_.ptr, cap_, end, B, kv_heads_, kept(layer), keep_stride_, st), "oracle selection");
    return tokens(kept(layer), keep_stride_, B, false);
  }
};

}  // namespace

Selection download_read(const StepRead& r, int heads, int kv_heads, int64_t length, cudaStream_t st) {
  if (r.kind == StepRead::Dense) return Selection(kv_heads);
  const bool per_head = r.kind == StepRead::Tokens ? r.tokens.per_head : r.pages.per_head;
  const int lists = per_head ? heads : kv_heads;
  Selection sel(lists);
  if (r.kind == StepRead::Tokens) {
    const TokenLists& t = r.tokens;
    std::vector<int32_t> flat(size_t(lists) * t.count);
    check(cudaMemcpy2DAsync(flat.data(), t.count * sizeof(int32_t), t.indices, size_t(t.stride) * sizeof(int32_t), t.count * sizeof(int32_t),
                            lists, cudaMemcpyDeviceToHost, st),
          "recorded lists");
    check(cudaStreamSynchronize(st), "recorded lists");
    for (int l = 0; l < lists; ++l) sel[l].assign(flat.begin() + size_t(l) * t.count, flat.begin() + size_t(l + 1) * t.count);
  } else {  // lists of storage pages, in CSR form
    std::vector<int> indptr(lists + 1);
    check(cudaMemcpyAsync(indptr.data(), r.pages.indptr, indptr.size() * sizeof(int), cudaMemcpyDeviceToHost, st), "recorded lists");
    check(cudaStreamSynchronize(st), "recorded lists");
    std::vector<int> pages(indptr[lists]);
    check(cudaMemcpyAsync(pages.data(), r.pages.indices, pages.size() * sizeof(int), cudaMemcpyDeviceToHost, st), "recorded lists");
    check(cudaStreamSynchronize(st), "recorded lists");
    for (int l = 0; l < lists; ++l)
      for (int e = indptr[l]; e < indptr[l + 1]; ++e)
        for (int64_t t = int64_t(pages[e]) * kGpuPage; t < std::min<int64_t>(length, int64_t(pages[e] + 1) * kGpuPage); ++t) sel[l].push_back(int32_t(t));
  }
  for (auto& list : sel) std::sort(list.begin(), list.end());
  return sel;
}

namespace {

using GpuFactory = std::unique_ptr<GpuPolicy> (*)(const PolicyOptions&, int layers, int heads, int kv_heads, int head_dim);

// The device implementation of each policy of policy/, by the name its descriptor registers.
const std::pair<const char*, GpuFactory> kGpuPolicies[] = {
    {"dense", [](const PolicyOptions&, int, int, int, int) -> std::unique_ptr<GpuPolicy> { return std::make_unique<DenseGpu>(); }},
    {"quest", [](const PolicyOptions& o, int, int h, int kv, int d) -> std::unique_ptr<GpuPolicy> { return std::make_unique<QuestGpu>(o, h, kv, d); }},
    {"streaming", [](const PolicyOptions& o, int l, int h, int kv, int) -> std::unique_ptr<GpuPolicy> { return std::make_unique<StreamingGpu>(o, l, h, kv); }},
    {"h2o", [](const PolicyOptions& o, int l, int h, int kv, int) -> std::unique_ptr<GpuPolicy> { return std::make_unique<H2oGpu>(o, l, h, kv); }},
    {"tova", [](const PolicyOptions& o, int l, int h, int kv, int) -> std::unique_ptr<GpuPolicy> { return std::make_unique<TovaGpu>(o, l, h, kv); }},
    {"snapkv", [](const PolicyOptions& o, int l, int h, int kv, int) -> std::unique_ptr<GpuPolicy> { return std::make_unique<SnapKvGpu>(o, l, h, kv); }},
    {"oracle-topk", [](const PolicyOptions& o, int l, int h, int kv, int) -> std::unique_ptr<GpuPolicy> { return std::make_unique<OracleGpu>(o, l, h, kv); }},
};

}  // namespace

std::unique_ptr<GpuPolicy> make_gpu_policy(const PolicyOptions& o, int layers, int heads, int kv_heads, int head_dim) {
  validate_policy(o);
  if (const std::string why = gpu_refusal(o); !why.empty()) throw std::runtime_error(why);
  for (const auto& [name, make] : kGpuPolicies)
    if (o.name == name) return make(o, layers, heads, kv_heads, head_dim);
  throw std::runtime_error("policy '" + o.name + "' has no GPU implementation");
}

}  // namespace quest
