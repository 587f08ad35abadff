// A sequence's forward pass on the GPU (the model's weights: gpu_model.cuh): a paged KV cache in
// fp16 or bf16 (--kv-dtype) with page min/max, shared copy-on-write between the cells of one
// prefill (kv_pool.cuh), and the policies selecting on the device (gpu_policy.h: no host round
// trip per layer; the host sees only the logits, and the lists read where a sequence records them).
#include <nvtx3/nvToolsExt.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "gpu/arch_ops.cuh"
#include "gpu/gpu_engine.h"
#include "gpu/gpu_policy.h"
#include "gpu/int4.cuh"
#include "gpu/kv_pool.cuh"
#include "kernels/cuda_util.cuh"
#include "kernels/decode_attention.cuh"
#include "kernels/embed_rope.cuh"
#include "kernels/gemm_lt.cuh"
#include "kernels/gpu_shapes.h"
#include "kernels/kv_append.cuh"
#include "kernels/linear.cuh"
#include "kernels/page_lists.cuh"
#include "kernels/prefill_attention.cuh"

#include "gpu/gpu_model.cuh"
namespace quest {

namespace {

// The first of `policies` that gathers what policies[i] gathers in a prefill.
size_t gatherer(const std::vector<GpuPolicy*>& policies, size_t i) {
  const std::string key = policies[i]->prefill_statistics();
  for (size_t j = 0; j < i; ++j)
    if (!key.empty() && policies[j]->prefill_statistics() == key) return j;
  return i;
}

size_t free_gpu_bytes() {
  size_t free = 0, total = 0;
  check(cudaMemGetInfo(&free, &total), "GPU memory");
  return free;
}

// A decode batch runs the lanes whose selection launches nothing in one launch a kind
// (attend_batch); QUEST_DECODE_LANES=0 runs each on its own stream, to compare. Read when a
// sequence is made; a value but 0 or 1 throws, naming it.
bool decode_lanes() {
  const char* env = std::getenv("QUEST_DECODE_LANES");
  if (!env || !*env || std::strcmp(env, "1") == 0) return true;
  if (std::strcmp(env, "0") == 0) return false;
  throw std::runtime_error(std::string("QUEST_DECODE_LANES=") + env + ": expected 0 or 1");
}

// Tokens a prefill makes room for beyond its prompt, so that decode steps rarely reallocate.
constexpr int64_t kDecodeRoom = 512;
// Rows whose logits one LM head call writes (a prefill's all-logits chunk goes in pieces):
// a chunk's 2,048 rows of a 128K vocabulary would hold 1 GiB.
constexpr int kLogitRows = 256;

class GpuSequence final : public Decoder {
 public:
  GpuSequence(std::shared_ptr<GpuModel> model, const PolicyOptions& opts);
  ~GpuSequence() override;
  int64_t length() const override { return length_; }
  CacheStats cache_stats() const override;
  static void prefill_shared(const std::vector<GpuSequence*>& cells, const int32_t* tokens, int64_t n);

 protected:
  void reserve(int64_t n) override;
  int64_t prefill_chunk() const override { return kPrefillChunk; }
  void forward(const int32_t* tokens, int64_t n, bool decode, bool all_logits, std::vector<float>& logits) override;
  // The batch's GEMVs over all its rows (each row's arithmetic that of the sequence alone), its
  // embedding, RoPE and KV writes and LM head in one launch each, and its attention (attend_batch).
  void forward_batch(const std::vector<Decoder*>& seqs, const int32_t* tokens, const std::vector<std::vector<float>*>& logits) override;
  // Layer l's attention of a decode batch's lanes (their caches in views), each lane's values
  // those of its step alone: with lanes_, the lanes whose selection launches nothing (dense
  // reads, Quest's steps but the fused ones) in one launch a kind on st; each other lane's
  // selection and attention on its own stream, so that their few-block launches run side by side.
  void attend_batch(int l, const std::vector<GpuSequence*>& lanes, const std::vector<PagedKv>& views, cudaStream_t st);

 private:
  // Whether the pool can add `pool_pages` pages, the key bounds can take `meta` Quest pages (for
  // a cache of `tokens` tokens) and `other` more bytes (scratch and policy state) fit beside
  // them; with `refuse`, throws where they do not, saying how many tokens would fit.
  bool check_fits(int64_t tokens, int64_t pool_pages, int64_t meta, size_t other, bool refuse = true) const;
  // Room for `tokens` tokens before a forward call of `rows` rows; where that does not fit, for
  // `at_least` and a prefill's decode room, or for `at_least` alone.
  void grow(int64_t tokens, int rows, int64_t at_least);
  // Bytes that policies' per-position state adds when their cache grows to `capacity` tokens.
  static size_t state_growth(const std::vector<GpuPolicy*>& policies, int64_t from, int64_t capacity);
  // Before positions [length_, len) are written: its own copy of any page among them it shares.
  void own_pages(int64_t len);
  // Starts as a cell of `from`'s prefill: the prompt's pages shared, its own pages for the rest
  // of from's capacity, and its own copy of the key bounds where it keeps them (it appends to them).
  void fork_from(const GpuSequence& from);
  void upload_table();
  // Room for `n` more tokens, and its own copy of any shared page they write; on `stream_`.
  void make_room(int64_t n);
  // The RoPE angles of `n` tokens at positions start.. into trig (the table a prefill or a decode
  // step rotates with), and into trig_local those of Gemma 3's sliding layers (null elsewhere).
  void angles(int n, int64_t start, bool decode, float* trig, float* trig_local, cudaStream_t st);
  // The rows' attention output (in att_) through the output projection and the MLP, each added to
  // the residual x_ (Gemma: through its post-norm); project(input, w, q4, y, accumulate) runs a
  // linear layer over the call's rows.
  template <class Project>
  void finish_layer(const GpuLayer& L, int rows, Project project, cudaStream_t st);
  // Layer l of a decode step for the token at `start` (its query in call.q, its K and V cached):
  // what it reads (select_layer: the policy's selection), the attention into call.out (attend),
  // then the policy's observation and the step's statistics (end_layer).
  void decode_layer(int l, const AttentionCall& call, int64_t start, cudaStream_t st);
  StepRead select_layer(int l, const AttentionCall& call, int64_t start, cudaStream_t st);
  void attend(const AttentionCall& call, const StepRead& read, cudaStream_t st);
  void end_layer(int l, const StepRead& read, int64_t start, cudaStream_t st);
  PageLaunch page_launch(const StepRead& read) const;  // a page-list read's launch, from the plan
  int window(int l) const;       // tokens layer l's sliding window holds (0: a full-attention layer)
  bool governed(int l) const;    // whether the policy selects layer l's reads
  bool plans_only(int l) const;  // whether layer l's select_layer launches nothing
  bool observed() const;  // whether a policy observing the prefill needs its log-sum-exp
  // A layer's attention of queries q over the cache kv into out, with this sequence's split scratch and plan.
  AttentionCall attention_call(const void* q, const PagedKv& kv, float* out) const;
  PagedKv view(int layer, int64_t len) const;
  // Each scratch buffer of a forward call of `rows` rows (a decode batch's, with `batch`), with
  // its elements (0: not needed), given to f: ensure_rows sizes them and scratch_growth counts
  // them, from one list.
  template <class Self, class F>
  static void row_scratch(Self& q, int rows, bool batch, F f);
  void ensure_rows(int rows, bool batch);
  // Bytes that ensure_rows(rows, batch) would add.
  size_t scratch_growth(int rows, bool batch) const;
  // The rows' tokens uploaded and embedded into x_.
  void embed_tokens(const int32_t* tokens, int rows, cudaStream_t st);
  LinearInput normed(const float* x) const { return {x, LinearInput::RmsNorm, float(spec_.rms_eps), row_scale_.ptr}; }
  // y (+)= the linear layer of x over `rows` rows: cuBLASLt on the input staged in the weight
  // type where the model has it and rows > 1, else the own GEMV or GEMM.
  void linear_layer(const LinearInput& x, int rows, const DeviceLinear& w, float* y, bool accumulate);
  // A 4-bit layer (q4 empty: w's own): the GEMV on a decode step, else the GEMM on its dequantization.
  void linear_layer(const LinearInput& x, int rows, const DeviceLinear& w, const Int4Linear& q4, float* y, bool accumulate);

  std::shared_ptr<GpuModel> m_;
  PolicyOptions opts_;
  std::unique_ptr<GpuPolicy> policy_;
  std::vector<GpuPolicy*> observers_;  // policies that see this sequence's prefill: its own, or every cell's of a shared one
  cudaStream_t stream_ = nullptr;
  // A decode batch's layer: forked_ recorded on the leader's stream once the batch's queries are
  // rotated and its keys and values written, joined_ on a lane's stream once its attention is written.
  cudaEvent_t forked_ = nullptr, joined_ = nullptr;
  int64_t length_ = 0, capacity_ = 0;  // tokens cached, tokens the cache holds
  std::optional<DecodePlan> plan_;  // made once the sequence's device is current
  HalfType kv_type_ = HalfType::F16;
  bool lanes_ = false;  // decode_lanes(), for the batches this sequence leads
  std::shared_ptr<KvPool> pool_;  // K and V, shared with the family of a shared prefill
  std::vector<int> table_;        // logical page -> physical page of pool_
  bool bounds_ = false;  // whether it keeps key bounds: its policy reads them, or it prefills for cells whose policies do
  std::vector<DeviceBuffer<uint16_t>> kmin_, kmax_;  // per layer, in kv_type_ (empty without bounds_)
  DeviceBuffer<int> page_table_, dense_indptr_, dense_indices_;
  DeviceBuffer<float> split_o_, split_lse_, lse_;
  DeviceBuffer<int32_t> tokens_;
  DeviceBuffer<float> x_, row_scale_, trig_, qkv_, att_, gu_, logits_;
  DeviceBuffer<float> trig_local_, branch_, act_;  // Gemma: local rope angles, a block's output before its post-norm, GeGLU's output
  DeviceBuffer<uint16_t> q16_;  // this step's queries, in kv_type_
  DeviceBuffer<uint16_t> staged_;  // a cuBLASLt GEMM's or the 4-bit GEMV's input, in the weight type
  DeviceBuffer<uint16_t> built_;   // a decode batch's input rows of a linear layer, hi and lo (linear_rows)
  DeviceBuffer<uint16_t> dequant_;  // a 4-bit layer's weights for a prefill's GEMM
  DeviceBuffer<char> lt_workspace_;
  // Rope tables that depend on the length (longrope, dynamic): this call's, on the host and device.
  std::vector<float> freq_host_;
  DeviceBuffer<float> freq_;
  DeviceBuffer<int> window_indices_;  // a windowed layer's decode lists [kv_heads][window]
};

GpuSequence::GpuSequence(std::shared_ptr<GpuModel> model, const PolicyOptions& opts)
    : Decoder(model->spec(), opts.record_selections), m_(std::move(model)), opts_(opts),
      policy_(make_gpu_policy(opts, spec_.layers, spec_.heads, spec_.kv_heads, spec_.head_dim)), observers_{policy_.get()},
      kv_type_(opts.kv_dtype == KvDtype::BF16 ? HalfType::BF16 : HalfType::F16), lanes_(decode_lanes()) {
  check(cudaSetDevice(m_->device()), "cudaSetDevice");
  const ModelSpec& s = spec_;
  pool_ = std::make_shared<KvPool>(s.layers, size_t(s.kv_heads) * kGpuPage * s.head_dim);
  bounds_ = policy_->reads_bounds();
  kmin_.resize(s.layers);
  kmax_.resize(s.layers);
  plan_.emplace(kv_type_, s.head_dim, s.heads, s.kv_heads);
  if (s.sliding_window > 0) window_indices_.resize(size_t(s.kv_heads) * s.sliding_window);
  dense_indptr_.resize(s.kv_heads + 1);
  split_o_.resize(size_t(s.heads) * plan_->max_splits() * s.head_dim);
  split_lse_.resize(size_t(s.heads) * plan_->max_splits());
  // Last, so that nothing above that throws leaves them behind (the destructor does not run).
  check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "stream");
  check(cudaEventCreateWithFlags(&forked_, cudaEventDisableTiming), "event");
  check(cudaEventCreateWithFlags(&joined_, cudaEventDisableTiming), "event");
}

GpuSequence::~GpuSequence() {
  cudaSetDevice(m_->device());
  {
    std::lock_guard<std::mutex> lock(pool_->mutex);
    for (int p : table_) pool_->release(p);
  }
  cudaEventDestroy(forked_);
  cudaEventDestroy(joined_);
  cudaStreamDestroy(stream_);
}

CacheStats GpuSequence::cache_stats() const {
  std::lock_guard<std::mutex> lock(pool_->mutex);
  int64_t own = 0;
  for (int p : table_) own += pool_->refs(p) == 1;
  const int64_t bounds = 2 * int64_t(spec_.layers) * int64_t(kmin_[0].n) * int64_t(sizeof(uint16_t));
  return {true, int64_t(table_.size()), own, pool_->live(), int64_t(pool_->page_bytes()), bounds};
}

bool GpuSequence::observed() const {
  for (const GpuPolicy* p : observers_)
    if (p->wants_prefill_lse()) return true;
  return false;
}

void GpuSequence::reserve(int64_t n) {
  check(cudaSetDevice(m_->device()), "cudaSetDevice");
  std::lock_guard<std::mutex> lock(pool_->mutex);
  // The decode room is not given up: growing later holds a layer's old buffer for a moment,
  // more than that room near the memory's end.
  if (length_ + n > capacity_) grow(length_ + n + kDecodeRoom, int(std::min<int64_t>(n, kPrefillChunk)), length_ + n + kDecodeRoom);
}

bool GpuSequence::check_fits(int64_t tokens, int64_t pool_pages, int64_t meta, size_t other, bool refuse) const {
  const ModelSpec& s = spec_;
  // K and V in the pool, both key bounds of every layer here, against what is free plus what
  // the pool and the bounds hold now: a cache that cannot fit says how many tokens would,
  // rather than failing in cudaMalloc.
  const size_t per_meta = size_t(s.kv_heads) * s.head_dim, page = pool_->page_bytes(), pool_now = size_t(pool_->capacity()) * page;
  auto bounds = [&](size_t mp) { return 2 * sizeof(uint16_t) * s.layers * mp * per_meta; };
  const size_t cache = pool_now + size_t(pool_pages) * page + bounds(std::max<size_t>(size_t(meta), kmin_[0].n / per_meta));
  const size_t need = cache + other, room = free_gpu_bytes() + pool_now + bounds(kmin_[0].n / per_meta);
  if (need <= room || !refuse) return need <= room;
  // The wording is matched by cacheDoesNotFit (src/engine/index.ts): eval splits a shared
  // prefill and bench-latency cuts a batch on it. The cache scales with its tokens, the rest not.
  const auto gib = [](size_t b) { return std::to_string(b >> 30) + "." + std::to_string((b >> 20) % 1024 * 10 / 1024); };
  const int64_t fit = room > other ? int64_t(double(tokens) * double(room - other) / double(cache)) : 0;
  throw std::runtime_error("a KV cache of " + std::to_string(tokens) + " tokens needs " + gib(need) + " GiB of GPU memory (" + gib(other) +
                           " of it beside the cache) and " + gib(room) + " GiB is free: about " + std::to_string(fit) +
                           " tokens would fit");
}

size_t GpuSequence::state_growth(const std::vector<GpuPolicy*>& policies, int64_t from, int64_t capacity) {
  size_t bytes = 0;
  for (const GpuPolicy* p : policies) bytes += p->state_bytes(capacity) - std::min(p->state_bytes(capacity), p->state_bytes(from));
  return bytes;
}

void GpuSequence::grow(int64_t tokens, int rows, int64_t at_least) {
  const ModelSpec& s = spec_;
  const int64_t P = opts_.page_size, old_pages = capacity_ / kGpuPage;
  // The key bounds come a chunk of Quest pages (of any size) at a time; chunks are outermost,
  // so the old bounds are the new ones' prefix.
  auto bound_chunks = [&](int64_t pages) { return bounds_ ? bound_pages((pages * kGpuPage + P - 1) / P) : 0; };
  const int64_t old_meta = bounds_ ? int64_t(kmin_[0].n / (size_t(s.kv_heads) * s.head_dim)) : 0;  // what the bounds hold
  auto fits = [&](int64_t t, bool refuse) {
    const int64_t pages = (t + kGpuPage - 1) / kGpuPage, more = pool_->shortfall(pages - old_pages);
    const size_t lists = size_t(pages) * s.kv_heads, lists_growth = lists > dense_indices_.n ? (lists - dense_indices_.n) * sizeof(int) : 0;
    // Growing copies one layer's buffer at a time: for a moment its old copy beside the new.
    const size_t copies = (more > 0 ? pool_->layer_bytes() : 0) + (bound_chunks(pages) > old_meta ? kmin_[0].n * sizeof(uint16_t) : 0);
    return check_fits(t, more, bound_chunks(pages),
                      scratch_growth(rows, false) + state_growth(observers_, capacity_, pages * kGpuPage) + lists_growth + copies, refuse);
  };
  if (at_least < tokens && !fits(tokens, false))
    tokens = at_least + kDecodeRoom < tokens && fits(at_least + kDecodeRoom, false) ? at_least + kDecodeRoom : at_least;
  fits(tokens, true);
  const int64_t pages = (tokens + kGpuPage - 1) / kGpuPage, meta = bound_chunks(pages);
  const size_t per_meta = size_t(s.kv_heads) * s.head_dim, lists = size_t(pages) * s.kv_heads;
  for (int p : pool_->take(pages - old_pages, stream_)) table_.push_back(p);
  auto regrow = [&](DeviceBuffer<uint16_t>& b, size_t per, int64_t n, int64_t old) {
    DeviceBuffer<uint16_t> fresh(size_t(n) * per);
    if (old > 0) check(cudaMemcpyAsync(fresh.ptr, b.ptr, size_t(old) * per * sizeof(uint16_t), cudaMemcpyDeviceToDevice, stream_), "cache copy");
    check(cudaStreamSynchronize(stream_), "cache copy");
    b = std::move(fresh);
  };
  for (int l = 0; l < s.layers && meta > old_meta; ++l) {
    regrow(kmin_[l], per_meta, meta, old_meta);
    regrow(kmax_[l], per_meta, meta, old_meta);
  }
  upload_table();
  if (dense_indices_.n < lists) dense_indices_.resize(lists);
  for (GpuPolicy* p : observers_) p->grow(capacity_, pages * kGpuPage, stream_);
  capacity_ = pages * kGpuPage;
}

void GpuSequence::upload_table() {
  if (page_table_.n != table_.size()) page_table_.resize(table_.size());
  // On the sequence's stream: its kernels (on a batch's lane too) then read the new table.
  check(cudaMemcpyAsync(page_table_.ptr, table_.data(), table_.size() * sizeof(int), cudaMemcpyHostToDevice, stream_), "page table");
}

void GpuSequence::own_pages(int64_t len) {
  bool copied = false;
  for (int64_t p = length_ / kGpuPage; p <= (len - 1) / kGpuPage; ++p) {
    const int shared = table_[p];
    if (pool_->refs(shared) == 1) continue;
    const int mine = pool_->take(1, stream_)[0];
    pool_->copy(shared, mine, stream_);
    pool_->release(shared);
    table_[p] = mine;
    copied = true;
  }
  if (copied) upload_table();
}

void GpuSequence::fork_from(const GpuSequence& from) {
  const ModelSpec& s = spec_;
  pool_ = from.pool_;
  const int64_t shared = (from.length_ + kGpuPage - 1) / kGpuPage;
  table_.assign(from.table_.begin(), from.table_.begin() + shared);
  for (int p : table_) pool_->share(p);
  for (int p : pool_->take(from.capacity_ / kGpuPage - shared, stream_)) table_.push_back(p);
  upload_table();
  dense_indices_.resize(table_.size() * s.kv_heads);
  for (int l = 0; l < s.layers && bounds_; ++l)
    for (auto [mine, theirs] : {std::pair{&kmin_[l], &from.kmin_[l]}, std::pair{&kmax_[l], &from.kmax_[l]}}) {
      mine->resize(theirs->n);
      check(cudaMemcpyAsync(mine->ptr, theirs->ptr, theirs->n * sizeof(uint16_t), cudaMemcpyDeviceToDevice, stream_), "key bounds copy");
    }
  check(cudaStreamSynchronize(stream_), "key bounds copy");
  // Its policy grew with `from`'s capacity as it observed the prefill.
  capacity_ = from.capacity_;
  length_ = from.length_;
  adopt_prefill(from);
}

void GpuSequence::prefill_shared(const std::vector<GpuSequence*>& cells, const int32_t* tokens, int64_t n) {
  if (cells.empty()) throw std::runtime_error("a shared prefill needs at least one sequence");
  GpuSequence& first = *cells[0];
  for (GpuSequence* c : cells) {
    if (c->length() > 0) throw std::runtime_error("a shared prefill needs fresh sequences (one has tokens already)");
    if (c->m_ != first.m_) throw std::runtime_error("a shared prefill needs sequences of one model");
    if (c->opts_.page_size != first.opts_.page_size || c->opts_.kv_dtype != first.opts_.kv_dtype ||
        c->opts_.dense_layers != first.opts_.dense_layers)
      throw std::runtime_error("a shared prefill needs sequences of one page size, KV type and number of dense layers");
  }
  if (n <= 0) throw std::runtime_error("prefill needs at least one token");
  check(cudaSetDevice(first.m_->device()), "cudaSetDevice");
  // Every cell observes the prefill: set first, since the scratch counted below follows them.
  first.observers_.clear();
  for (GpuSequence* c : cells) first.observers_.push_back(c->policy_.get());
  try {
    {
      // Room for every cell's own pages up front (the partial page's copy and the decode room),
      // so that neither the forks nor their first steps reallocate the pool; checked with every
      // cell's key bounds and policy state.
      std::lock_guard<std::mutex> lock(first.pool_->mutex);
      const int64_t pages = (n + kDecodeRoom + kGpuPage - 1) / kGpuPage, total = pages + int64_t(cells.size() - 1) * (pages - n / kGpuPage);
      int64_t keepers = 0;  // sequences that will keep key bounds: the first, where any cell reads them, and those cells
      for (GpuSequence* c : cells) keepers += c->bounds_;
      if (keepers > 0 && !first.bounds_) {
        first.bounds_ = true;
        keepers += 1;
      }
      const int64_t P = first.opts_.page_size, bounds = keepers * bound_pages((pages * kGpuPage + P - 1) / P);
      first.check_fits(total * kGpuPage, total, bounds,
                       first.scratch_growth(int(std::min<int64_t>(n, kPrefillChunk)), false) + state_growth(first.observers_, 0, pages * kGpuPage));
      first.pool_->reserve(total, first.stream_);
    }
    first.prefill(tokens, n, false);
  } catch (...) {
    first.observers_ = {first.policy_.get()};
    throw;
  }
  std::vector<GpuPolicy*> observers = first.observers_;
  first.observers_ = {first.policy_.get()};
  for (size_t i = 1; i < observers.size(); ++i)
    if (const size_t from = gatherer(observers, i); from != i) observers[i]->copy_prefill_statistics(*observers[from], first.stream_);
  check(cudaStreamSynchronize(first.stream_), "prefill statistics copy");
  std::lock_guard<std::mutex> lock(first.pool_->mutex);
  for (size_t i = 1; i < cells.size(); ++i) cells[i]->fork_from(first);
}

void GpuSequence::embed_tokens(const int32_t* tokens, int rows, cudaStream_t st) {
  check(cudaMemcpyAsync(tokens_.ptr, tokens, size_t(rows) * sizeof(int32_t), cudaMemcpyHostToDevice, st), "token upload");
  embed(m_->embedding(), m_->type(), spec_.hidden, tokens_.ptr, rows, x_.ptr, st);
  if (m_->embed_scale() > 0) scale_values(x_.ptr, size_t(rows) * spec_.hidden, m_->embed_scale(), st);
}

template <class Self, class F>
void GpuSequence::row_scratch(Self& q, int rows, bool batch, F f) {
  const ModelSpec& s = q.spec_;
  const size_t n = size_t(rows), qd = size_t(s.heads) * s.head_dim, kvd = size_t(s.kv_heads) * s.head_dim;
  const size_t widest = std::max<size_t>({size_t(s.hidden), qd, size_t(s.intermediate)});
  f(q.tokens_, n);
  f(q.x_, n * s.hidden);
  f(q.row_scale_, n);
  f(q.trig_, n * s.head_dim);
  f(q.qkv_, n * (qd + 2 * kvd));
  f(q.att_, n * qd);
  f(q.gu_, n * 2 * s.intermediate);
  f(q.logits_, size_t(std::min(rows, kLogitRows)) * s.vocab);
  f(q.q16_, n * qd);
  f(q.lse_, q.observed() ? n * s.heads : 0);
  f(q.trig_local_, s.has_local_rope ? n * s.head_dim : 0);
  f(q.branch_, s.gemma() ? n * s.hidden : 0);
  f(q.act_, s.gemma() ? n * s.intermediate : 0);
  // A batch runs GEMVs only: 16-bit ones on its rows built in two halves, 4-bit ones
  // kInt4GemvRows rows at a time; a prefill's rows go through cuBLASLt, or a 4-bit layer's
  // weights dequantized for a GEMM of more rows than the GEMV takes.
  const bool lt = !batch && q.m_->lt() && rows > 1;
  f(q.built_, batch ? 2 * n * widest : 0);
  f(q.staged_, std::max(lt ? n * widest : 0, q.m_->int4() ? size_t(std::min(rows, kInt4GemvRows)) * widest : 0));
  f(q.lt_workspace_, lt ? LtGemm::kWorkspaceBytes : 0);
  f(q.dequant_, !batch && q.m_->int4() && rows > kInt4GemvRows ? q.m_->int4_scratch() : 0);
}

void GpuSequence::ensure_rows(int rows, bool batch) {
  row_scratch(*this, rows, batch, [](auto& b, size_t n) {
    if (b.n < n) b.resize(n);
  });
}

size_t GpuSequence::scratch_growth(int rows, bool batch) const {
  size_t bytes = 0;
  row_scratch(*this, rows, batch, [&](const auto& b, size_t n) {
    if (b.n < n) bytes += (n - b.n) * sizeof(*b.ptr);
  });
  return bytes;
}

void GpuSequence::linear_layer(const LinearInput& x, int rows, const DeviceLinear& w, const Int4Linear& q4, float* y, bool accumulate) {
  if (!q4.qweight) return linear_layer(x, rows, w, y, accumulate);
  if (rows <= kInt4GemvRows) {
    stage_input(x, rows, w.in, m_->type(), staged_.ptr, stream_, q4.in_scale);
    return int4_gemv(staged_.ptr, rows, q4, w.b, m_->type(), y, accumulate, stream_);
  }
  int4_dequantize(q4, m_->type(), dequant_.ptr, stream_);
  linear_layer(x, rows, {dequant_.ptr, w.b, w.in, w.out}, y, accumulate);
}

void GpuSequence::linear_layer(const LinearInput& x, int rows, const DeviceLinear& w, float* y, bool accumulate) {
  if (LtGemm* lt = m_->lt(); lt && rows > 1) {
    stage_input(x, rows, w.in, m_->type(), staged_.ptr, stream_);
    if (lt->run(staged_.ptr, rows, w, m_->type(), y, accumulate, lt_workspace_.ptr, stream_)) return;
  }
  linear(x, rows, w, m_->type(), y, accumulate, stream_);
}

PagedKv GpuSequence::view(int layer, int64_t len) const {
  PagedKv kv;
  kv.type = kv_type_;
  kv.k = pool_->k(layer);
  kv.v = pool_->v(layer);
  kv.kmin = bounds_ ? kmin_[layer].ptr : nullptr;
  kv.kmax = bounds_ ? kmax_[layer].ptr : nullptr;
  kv.page_table = page_table_.ptr;
  kv.kv_heads = spec_.kv_heads;
  kv.head_dim = spec_.head_dim;
  kv.page_size = kGpuPage;
  kv.current_page = int((len - 1) / kGpuPage);
  kv.current_len = int(len - int64_t(kv.current_page) * kGpuPage);
  kv.meta_page = opts_.page_size;
  kv.capacity = pool_->capacity();
  return kv;
}

void GpuSequence::make_room(int64_t n) {
  const int64_t len = length_ + n;
  // Half as much again, so that decode steps rarely reallocate (less near the memory's end).
  if (len > capacity_) grow(std::max<int64_t>(len, capacity_ + capacity_ / 2), int(n), len);
  own_pages(len);
}

void GpuSequence::angles(int n, int64_t start, bool decode, float* trig, float* trig_local, cudaStream_t st) {
  const ModelSpec& s = spec_;
  const float* inv_freq = m_->inv_freq();
  if (s.rope.type == "longrope" || s.rope.type == "dynamic") {
    // As the CPU engine: a prefill rotates with its whole length's table, a decode step with its own.
    freq_host_ = rope_inv_freq(s.rope, s.head_dim, decode ? start + n : prompt_end_);
    if (freq_.n != freq_host_.size()) freq_.resize(freq_host_.size());
    check(cudaMemcpyAsync(freq_.ptr, freq_host_.data(), freq_host_.size() * sizeof(float), cudaMemcpyHostToDevice, st), "rope table");
    inv_freq = freq_.ptr;
  }
  rope_angles(n, start, inv_freq, s.head_dim / 2, trig, st);
  if (s.rope.attention_factor != 1.0) scale_values(trig, size_t(n) * s.head_dim, float(s.rope.attention_factor), st);
  // Gemma 3's sliding layers: a table fixed at load (served.cpp refuses one that depends on the length).
  if (!s.has_local_rope) return;
  rope_angles(n, start, m_->inv_freq_local(), s.head_dim / 2, trig_local, st);
  if (s.rope_local.attention_factor != 1.0) scale_values(trig_local, size_t(n) * s.head_dim, float(s.rope_local.attention_factor), st);
}

template <class Project>
void GpuSequence::finish_layer(const GpuLayer& L, int rows, Project project, cudaStream_t st) {
  const ModelSpec& s = spec_;
  if (!s.gemma()) {
    project(LinearInput{att_.ptr}, L.o, L.o4, x_.ptr, true);
    project(normed(x_.ptr), L.gate_up, L.gate_up4, gu_.ptr, false);
    project(LinearInput{gu_.ptr, LinearInput::SwiGlu}, L.down, L.down4, x_.ptr, true);
    return;
  }
  const float eps = float(s.rms_eps);
  project(LinearInput{att_.ptr}, L.o, L.o4, branch_.ptr, false);
  post_norm_add(x_.ptr, branch_.ptr, rows, s.hidden, L.post_attn_norm, eps, st);
  project(normed(x_.ptr), L.gate_up, L.gate_up4, gu_.ptr, false);
  geglu(gu_.ptr, rows, s.intermediate, act_.ptr, st);
  project(LinearInput{act_.ptr}, L.down, L.down4, branch_.ptr, false);
  post_norm_add(x_.ptr, branch_.ptr, rows, s.hidden, L.post_ff_norm, eps, st);
}

AttentionCall GpuSequence::attention_call(const void* q, const PagedKv& kv, float* out) const {
  const ModelSpec& s = spec_;
  return AttentionCall{{q, kv, s.heads, float(s.attention_scale()), {split_o_.ptr, split_lse_.ptr, 0}, out, float(s.attn_softcap)}, &*plan_};
}

int GpuSequence::window(int l) const { return spec_.sliding(l) ? spec_.sliding_window : 0; }

bool GpuSequence::governed(int l) const { return l >= opts_.dense_layers && !window(l); }

bool GpuSequence::plans_only(int l) const { return !window(l) && (!governed(l) || policy_->plans_only()); }

StepRead GpuSequence::select_layer(int l, const AttentionCall& call, int64_t start, cudaStream_t st) {
  const ModelSpec& s = spec_;
  const int64_t len = start + 1;
  StepRead read;
  // A sliding-window layer reads its window, counted in the bytes but not in the budget (as
  // the CPU engine); a policy governs the full-attention layers past the dense ones.
  if (const int w = window(l)) {
    const int count = int(std::min<int64_t>(w, len));
    window_lists(window_indices_.ptr, s.kv_heads, start, count, st);
    read.kind = StepRead::Tokens;
    read.tokens = {window_indices_.ptr, count, count, false};
    read.tokens_read = count;
    return read;
  }
  if (governed(l)) read = policy_->select(l, start, prompt_end_, call, st);
  if (read.kind == StepRead::Dense) {
    read.pages = {dense_indptr_.ptr, dense_indices_.ptr};
    read.listed = int((len - 1) / kGpuPage) + 1;
    read.tokens_read = len;
  }
  read.pages.longest = read.listed;
  return read;
}

PageLaunch GpuSequence::page_launch(const StepRead& read) const {
  const bool per_head = read.pages.per_head;
  return plan_->pages(plan_->page_splits(read.listed, per_head ? spec_.heads : spec_.kv_heads), read.listed, per_head);
}

void GpuSequence::attend(const AttentionCall& call, const StepRead& read, cudaStream_t st) {
  if (read.kind == StepRead::Quest) {
    check(quest_step(read.quest, st), "quest step");
  } else if (read.kind == StepRead::Tokens) {
    const bool per_head = read.tokens.per_head;
    const int splits = plan_->tokens(plan_->token_splits(read.tokens.count, per_head ? spec_.heads : spec_.kv_heads), per_head);
    check(decode_attention_tokens(call, read.tokens, splits, read.report, st), "decode attention");
  } else {
    check(decode_attention(call, read.pages, page_launch(read), st), "decode attention");
  }
}

void GpuSequence::end_layer(int l, const StepRead& read, int64_t start, cudaStream_t st) {
  const ModelSpec& s = spec_;
  if (governed(l)) {
    if (record_) record_layer(download_read(read, s.heads, s.kv_heads, start + 1, st), {}, start);
    policy_->observe_decode(l, st);
    stats_.tokens_read += double(read.tokens_read) * s.kv_heads;
    stats_.policy_samples += s.kv_heads;
    stats_.meta_bytes_read += read.meta_bytes;
  }
  stats_.kv_bytes_read += double(read.tokens_read) * s.kv_heads * s.head_dim * 2 * sizeof(uint16_t);
}

void GpuSequence::decode_layer(int l, const AttentionCall& call, int64_t start, cudaStream_t st) {
  const StepRead read = select_layer(l, call, start, st);
  attend(call, read, st);
  end_layer(l, read, start, st);
}

// A decode step as an NVTX range, so that a profiler can take its kernels alone (tools/gpu-run.sh's
// profile step: ncu --nvtx --nvtx-include "decode step/"); with no tool attached a call does nothing.
struct DecodeRange {
  DecodeRange() { nvtxRangePushA("decode step"); }
  ~DecodeRange() { nvtxRangePop(); }
  DecodeRange(const DecodeRange&) = delete;
  DecodeRange& operator=(const DecodeRange&) = delete;
};

void GpuSequence::forward(const int32_t* tokens, int64_t n64, bool decode, bool all_logits, std::vector<float>& logits) {
  const Stopwatch issue;
  std::optional<DecodeRange> range;
  if (decode) range.emplace();
  const ModelSpec& s = spec_;
  const int n = int(n64), H = s.hidden;
  check(cudaSetDevice(m_->device()), "cudaSetDevice");
  std::lock_guard<std::mutex> lock(pool_->mutex);
  const int64_t start = length_, len = start + n;
  make_room(n);
  ensure_rows(n, false);
  cudaStream_t st = stream_;
  const float scale = s.attention_scale(), attn_cap = float(s.attn_softcap);
  embed_tokens(tokens, n, st);
  angles(n, start, decode, trig_.ptr, trig_local_.ptr, st);
  if (decode) check(fill_dense_lists(s.kv_heads, int((len - 1) / kGpuPage) + 1, dense_indptr_.ptr, dense_indices_.ptr, st), "dense lists");
  for (int l = 0; l < s.layers; ++l) {
    const GpuLayer& L = m_->layer(l);
    linear_layer(normed(x_.ptr), n, L.qkv, L.qkv4, qkv_.ptr, false);
    if (L.q_norm) head_rmsnorm(qkv_.ptr, n, s.heads, s.kv_heads, s.head_dim, L.q_norm, L.k_norm, float(s.rms_eps), st);
    const AttentionCall call = attention_call(q16_.ptr, view(l, len), att_.ptr);
    const bool local_rope = s.has_local_rope && s.sliding(l);
    rope_store(qkv_.ptr, n, s.heads, start, local_rope ? trig_local_.ptr : trig_.ptr, q16_.ptr, call.kv, st);
    if (decode) {
      decode_layer(l, call, start, st);
    } else if (const int w = window(l)) {
      if (bounds_) check(page_minmax(call.kv, int(start / opts_.page_size), int((len - 1) / opts_.page_size), len, st), "page min/max");
      window_prefill_attention({q16_.ptr, call.kv, s.heads, n, start, scale, att_.ptr, nullptr, attn_cap}, w, st);
    } else {
      if (bounds_) check(page_minmax(call.kv, int(start / opts_.page_size), int((len - 1) / opts_.page_size), len, st), "page min/max");
      const bool observe = l >= opts_.dense_layers && observed();
      prefill_attention({q16_.ptr, call.kv, s.heads, n, start, scale, att_.ptr, observe ? lse_.ptr : nullptr, attn_cap}, st);
      // From this one attention's queries, keys and log-sum-exp, each statistic the observers ask
      // for is gathered once, by the first that asks (prefill_shared copies it to the others).
      if (observe)
        for (size_t i = 0; i < observers_.size(); ++i)
          if (observers_[i]->wants_prefill_lse() && gatherer(observers_, i) == i)
            observers_[i]->observe_prefill(l, call, n, start, prompt_end_, lse_.ptr, st);
    }
    finish_layer(L, n, [&](const LinearInput& x, const DeviceLinear& w, const Int4Linear& q4, float* y, bool accumulate) {
      linear_layer(x, n, w, q4, y, accumulate);
    }, st);
  }
  // Only the rows whose logits are wanted go through the final norm and the LM head, at most
  // kLogitRows at a time in pieces of even size, so that no row of several takes the one-row
  // GEMV (each piece's copy is in stream order before the next overwrites it).
  const int rows = all_logits ? n : 1, pieces = (rows + kLogitRows - 1) / kLogitRows, per = (rows + pieces - 1) / pieces;
  logits.resize(size_t(rows) * s.vocab);
  for (int r = 0; r < rows; r += per) {
    const int m = std::min(per, rows - r);
    linear_layer(normed(x_.ptr + size_t(n - rows + r) * H), m, m_->lm_head(), logits_.ptr, false);
    if (s.final_softcap > 0) softcap(logits_.ptr, size_t(m) * s.vocab, float(s.final_softcap), st);
    // Marked before the copy into pageable memory, which waits for the GPU.
    if (decode && r + m == rows) stats_.issue_ms += issue.ms();
    check(cudaMemcpyAsync(logits.data() + size_t(r) * s.vocab, logits_.ptr, size_t(m) * s.vocab * sizeof(float), cudaMemcpyDeviceToHost, st),
          "logits");
  }
  check(cudaStreamSynchronize(st), "forward pass");
  if (const double counted = policy_->drain_counted_tokens(st)) {
    stats_.tokens_read += counted;
    stats_.kv_bytes_read += counted * s.head_dim * 2 * sizeof(uint16_t);
  }
  length_ = len;
}

void GpuSequence::attend_batch(int l, const std::vector<GpuSequence*>& lanes, const std::vector<PagedKv>& views, cudaStream_t st) {
  const ModelSpec& s = spec_;
  const int B = int(lanes.size());
  const size_t qd = size_t(s.heads) * s.head_dim;
  auto call_of = [&](int b) { return lanes[b]->attention_call(q16_.ptr + size_t(b) * qd, views[b], att_.ptr + size_t(b) * qd); };
  std::vector<StepRead> reads(B);
  std::vector<bool> planned(B, false), together(B, false), on_lane(B, false);
  // Lane b's layer on its own stream (the leader's is st), its read already planned or not.
  auto alone = [&](int b) {
    GpuSequence& g = *lanes[b];
    const cudaStream_t lane = g.stream_;
    if (lane != st) check(cudaStreamWaitEvent(lane, forked_, 0), "batch fork");
    if (planned[b]) {
      g.attend(call_of(b), reads[b], lane);
      g.end_layer(l, reads[b], g.length_, lane);
    } else {
      g.decode_layer(l, call_of(b), g.length_, lane);
    }
    if (lane != st) {
      check(cudaEventRecord(g.joined_, lane), "batch join");
      on_lane[b] = true;
    }
  };
  std::vector<QuestStep> quest;
  std::vector<DecodeArgs> args;
  std::vector<PageLists> lists;
  std::vector<PageLaunch> launches;
  check(cudaEventRecord(forked_, st), "batch fork");
  try {
    for (int b = 0; b < B; ++b) {
      GpuSequence& g = *lanes[b];
      planned[b] = lanes_ && g.plans_only(l);
      if (planned[b]) {
        const AttentionCall call = call_of(b);
        const StepRead& r = reads[b] = g.select_layer(l, call, g.length_, st);
        if (r.kind == StepRead::Quest && !r.quest.launch.fused) {
          quest.push_back(r.quest);
          together[b] = true;
        } else if (r.kind == StepRead::Dense || r.kind == StepRead::Pages) {
          args.push_back(call);
          lists.push_back(r.pages);
          launches.push_back(g.page_launch(r));
          together[b] = true;
        }
      }
      // A lane on st (the leader's) goes after the launches it would otherwise hold up.
      if (!together[b] && g.stream_ != st) alone(b);
    }
    check(quest_step(quest.data(), int(quest.size()), st), "quest step");
    check(decode_attention(args.data(), lists.data(), launches.data(), int(args.size()), st), "decode attention");
    for (int b = 0; b < B; ++b)
      if (together[b]) lanes[b]->end_layer(l, reads[b], lanes[b]->length_, st);
    for (int b = 0; b < B; ++b)
      if (!together[b] && lanes[b]->stream_ == st) alone(b);
    for (int b = 0; b < B; ++b)
      if (on_lane[b]) check(cudaStreamWaitEvent(st, lanes[b]->joined_, 0), "batch join");
  } catch (...) {
    // What the lanes have queued still reads this batch's buffers: let it finish first.
    for (GpuSequence* g : lanes) cudaStreamSynchronize(g->stream_);
    throw;
  }
}

void GpuSequence::forward_batch(const std::vector<Decoder*>& seqs, const int32_t* tokens, const std::vector<std::vector<float>*>& logits) {
  if (seqs.size() == 1) return forward(tokens, 1, true, false, *logits[0]);
  const Stopwatch issue;
  const DecodeRange range;
  std::vector<GpuSequence*> lanes;
  for (Decoder* d : seqs) {
    auto* g = dynamic_cast<GpuSequence*>(d);
    if (!g || g->m_ != m_) throw std::runtime_error("a decode batch needs sequences of one model on one backend");
    lanes.push_back(g);
  }
  const ModelSpec& s = spec_;
  const int B = int(lanes.size());
  const size_t width = size_t(s.heads + 2 * s.kv_heads) * s.head_dim, qd = size_t(s.heads) * s.head_dim;
  check(cudaSetDevice(m_->device()), "cudaSetDevice");
  // Every family's pool, locked in one order (by address), so that two batches cannot deadlock.
  std::vector<std::mutex*> pools;
  for (GpuSequence* g : lanes) pools.push_back(&g->pool_->mutex);
  std::sort(pools.begin(), pools.end());
  pools.erase(std::unique(pools.begin(), pools.end()), pools.end());
  std::vector<std::unique_lock<std::mutex>> locks;
  for (std::mutex* m : pools) locks.emplace_back(*m);
  // Each cache ready for its token (on its own stream) before the batch's launches on this one.
  for (GpuSequence* g : lanes) {
    g->make_room(1);
    check(cudaStreamSynchronize(g->stream_), "cache room");
  }
  // The batch's scratch is this sequence's: counted here, as each lane's room was.
  if (const size_t more = scratch_growth(B, true)) check_fits(length_, 0, 0, more);
  ensure_rows(B, true);
  cudaStream_t st = stream_;
  const WeightType wt = m_->type();
  embed_tokens(tokens, B, st);
  for (int b = 0; b < B; ++b) {
    GpuSequence& g = *lanes[b];
    g.angles(1, g.length_, true, trig_.ptr + size_t(b) * s.head_dim, s.has_local_rope ? trig_local_.ptr + size_t(b) * s.head_dim : nullptr, st);
    check(fill_dense_lists(s.kv_heads, int(g.length_ / kGpuPage) + 1, g.dense_indptr_.ptr, g.dense_indices_.ptr, st), "dense lists");
  }
  // A 4-bit layer: its GEMV over up to kInt4GemvRows rows at a time (each row's sums those of the row alone).
  auto rows_linear = [&](const LinearInput& x, const DeviceLinear& w, const Int4Linear& q4, float* y, bool accumulate) {
    if (!q4.qweight) return linear_rows(x, B, w, wt, y, accumulate, built_.ptr, st);
    const size_t x_width = x.kind == LinearInput::SwiGlu ? 2 * size_t(w.in) : size_t(w.in);
    for (int r = 0; r < B; r += kInt4GemvRows) {
      LinearInput part = x;
      part.x += size_t(r) * x_width;
      if (part.row_scale) part.row_scale += r;
      linear_layer(part, std::min(kInt4GemvRows, B - r), w, q4, y + size_t(r) * w.out, accumulate);
    }
  };
  for (int l = 0; l < s.layers; ++l) {
    const GpuLayer& L = m_->layer(l);
    rows_linear(normed(x_.ptr), L.qkv, L.qkv4, qkv_.ptr, false);
    if (L.q_norm) head_rmsnorm(qkv_.ptr, B, s.heads, s.kv_heads, s.head_dim, L.q_norm, L.k_norm, float(s.rms_eps), st);
    // Every row's RoPE and KV write in one launch (kLanes rows at a time), then the lanes' attention.
    const float* trig = s.has_local_rope && s.sliding(l) ? trig_local_.ptr : trig_.ptr;
    std::vector<PagedKv> views(B);
    for (int b = 0; b < B; ++b) views[b] = lanes[b]->view(l, lanes[b]->length_ + 1);
    for (int b0 = 0; b0 < B; b0 += kLanes) {
      RopeLanes rope;
      rope.rows = std::min(kLanes, B - b0);
      for (int i = 0; i < rope.rows; ++i) {
        rope.kv[i] = views[b0 + i];
        rope.pos[i] = lanes[b0 + i]->length_;
      }
      rope_store_lanes(qkv_.ptr + size_t(b0) * width, s.heads, rope, trig + size_t(b0) * s.head_dim, q16_.ptr + size_t(b0) * qd, st);
    }
    attend_batch(l, lanes, views, st);
    finish_layer(L, B, rows_linear, st);
  }
  for (int r = 0; r < B; r += kLogitRows) {
    const int m = std::min(kLogitRows, B - r);
    linear_rows(normed(x_.ptr + size_t(r) * s.hidden), m, m_->lm_head(), wt, logits_.ptr, false, built_.ptr, st);
    if (s.final_softcap > 0) softcap(logits_.ptr, size_t(m) * s.vocab, float(s.final_softcap), st);
    if (r + m == B) {  // before the copies into pageable memory, which wait for the GPU
      const double ms = issue.ms();
      for (GpuSequence* g : lanes) g->stats_.issue_ms += ms;
    }
    for (int b = r; b < r + m; ++b) {
      logits[b]->resize(size_t(s.vocab));
      check(cudaMemcpyAsync(logits[b]->data(), logits_.ptr + size_t(b - r) * s.vocab, size_t(s.vocab) * sizeof(float), cudaMemcpyDeviceToHost, st),
            "logits");
    }
  }
  check(cudaStreamSynchronize(st), "forward pass");
  for (GpuSequence* g : lanes) {
    if (const double counted = g->policy_->drain_counted_tokens(st)) {
      g->stats_.tokens_read += counted;
      g->stats_.kv_bytes_read += counted * s.head_dim * 2 * sizeof(uint16_t);
    }
    g->length_ += 1;
  }
}

}  // namespace

std::string decode_batch_path() {
  return decode_lanes() ? "the dense and Quest sequences' attention in one launch a kind a layer, the others' each on its own stream"
                        : "each sequence's attention on its own stream (QUEST_DECODE_LANES=0)";
}

std::unique_ptr<Decoder> make_gpu_sequence(std::shared_ptr<GpuModel> model, const PolicyOptions& opts) {
  return std::make_unique<GpuSequence>(std::move(model), opts);
}

void gpu_prefill_shared(const std::vector<Decoder*>& cells, const int32_t* tokens, int64_t n) {
  std::vector<GpuSequence*> seqs;
  for (Decoder* d : cells) {
    auto* g = dynamic_cast<GpuSequence*>(d);
    if (!g) throw std::runtime_error("a shared prefill on the GPU needs GPU sequences");
    seqs.push_back(g);
  }
  GpuSequence::prefill_shared(seqs, tokens, n);
}

}  // namespace quest
