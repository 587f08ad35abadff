// The forward pass on the GPU: weights in their 16-bit type, a paged KV cache in fp16 or bf16
// (--kv-dtype) with page min/max, and the policies selecting on the device (gpu_policy.h: no host round trip per
// layer; the host sees only the logits, and the lists read where a sequence records them).
#include <algorithm>
#include <cmath>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include "gpu/arch_ops.cuh"
#include "gpu/gpu_engine.h"
#include "gpu/gpu_policy.h"
#include "gpu/int4.cuh"
#include "kernels/cuda_util.cuh"
#include "kernels/decode_attention.cuh"
#include "kernels/embed_rope.cuh"
#include "kernels/gemm_lt.cuh"
#include "kernels/gpu_shapes.h"
#include "kernels/kv_append.cuh"
#include "kernels/linear.cuh"
#include "kernels/page_lists.cuh"
#include "kernels/prefill_attention.cuh"

namespace quest {

// The RMSNorm weights are folded into the columns of the projections that read the norm's
// output (qkv, gate_up, the LM head), which then scale by 1 / rms as they load their input.
struct GpuLayer {
  DeviceLinear qkv, o, gate_up, down;
  Int4Linear qkv4, o4, gate_up4, down4;  // a 4-bit layer's weights (then its DeviceLinear holds only the bias)
  const float* q_norm = nullptr;  // Qwen3's per-head norms of q and k (fp32), or null
  const float* k_norm = nullptr;
};

class GpuModel {
 public:
  // Copies what the GPU needs; the host model may be freed afterwards.
  GpuModel(const Model& model, int device);
  const ModelSpec& spec() const { return spec_; }
  int device() const { return device_; }
  WeightType type() const { return type_; }
  const GpuLayer& layer(int l) const { return layers_[l]; }
  const void* embedding() const { return embed_; }
  const DeviceLinear& lm_head() const { return lm_head_; }
  const float* inv_freq() const { return inv_freq_; }
  // Weight bytes one decode step reads.
  size_t weight_bytes() const { return weight_bytes_; }
  // cuBLASLt for the prefill's GEMMs, or null where the own GEMM runs (gemm_choice says why).
  LtGemm* lt() const { return lt_.get(); }
  bool int4() const { return !spec_.quant.method.empty(); }
  // Elements of the largest 4-bit layer: a prefill's dequantization scratch.
  size_t int4_scratch() const { return int4_scratch_; }

 private:
  // Freed with the model, or as soon as its constructor throws.
  struct Allocations {
    std::vector<void*> ptrs;
    ~Allocations() {
      for (void* p : ptrs) cudaFree(p);
    }
  };
  void* alloc(size_t bytes) {
    void* p = nullptr;
    check(cudaMalloc(&p, std::max<size_t>(bytes, 1)), "cudaMalloc (weights)");
    allocations_.ptrs.push_back(p);
    return p;
  }
  // A host fp32 tensor, as uploaded (no copy of it is made).
  struct Host {
    const float* data;
    size_t size;
    Host(const std::vector<float>& v) : data(v.data()), size(v.size()) {}
    Host(const float* d, size_t n) : data(d), size(n) {}
  };
  // Rows of fp32 host tensors stacked into one device matrix of the weight type, each
  // column scaled by `columns` when given; `what` names the tensors for the non-finite check.
  const void* upload_weights(const std::string& what, std::initializer_list<Host> parts, const float* columns = nullptr, size_t cols = 1);
  // fp32 vectors stacked as they are (norms, biases); null when all are empty.
  const float* upload_floats(std::initializer_list<const std::vector<float>*> parts, std::initializer_list<size_t> sizes);

  ModelSpec spec_;
  int device_ = 0;
  WeightType type_ = WeightType::F16;
  Allocations allocations_;
  std::vector<GpuLayer> layers_;
  const void* embed_ = nullptr;
  const float* inv_freq_ = nullptr;
  DeviceLinear lm_head_;
  size_t weight_bytes_ = 0, int4_scratch_ = 0;
  // One flag per upload_weights call, set by the conversion kernel, read once after loading.
  DeviceBuffer<int> nonfinite_;
  std::vector<std::string> uploaded_;
  std::unique_ptr<LtGemm> lt_;
};

const void* GpuModel::upload_weights(const std::string& what, std::initializer_list<Host> parts, const float* columns, size_t cols) {
  int* flag = nonfinite_.ptr + uploaded_.size();
  uploaded_.push_back(what);
  size_t n = 0;
  for (const Host& p : parts) n += p.size;
  void* dst = alloc(n * 2);
  weight_bytes_ += n * 2;
  // Through an fp32 staging buffer of at most 64M values (a whole number of rows), converted
  // on the device.
  const size_t chunk = std::min<size_t>(n, (size_t(1) << 26) / cols * cols);
  DeviceBuffer<float> stage(chunk);
  std::vector<float> scaled(columns ? chunk : 0);
  size_t done = 0;
  for (const Host& p : parts)
    for (size_t off = 0; off < p.size; off += chunk) {
      const size_t m = std::min(chunk, p.size - off);
      const float* src = p.data + off;
      if (columns) {
        for (size_t i = 0; i < m; ++i) scaled[i] = src[i] * columns[i % cols];
        src = scaled.data();
      }
      check(cudaMemcpy(stage.ptr, src, m * sizeof(float), cudaMemcpyHostToDevice), "upload");
      to_weight_type(stage.ptr, static_cast<char*>(dst) + done * 2, type_, m, flag, nullptr);
      check(cudaDeviceSynchronize(), "weight conversion");
      done += m;
    }
  return dst;
}

const float* GpuModel::upload_floats(std::initializer_list<const std::vector<float>*> parts, std::initializer_list<size_t> sizes) {
  bool any = false;
  for (auto* p : parts) any = any || !p->empty();
  if (!any) return nullptr;
  std::vector<float> all;
  auto size = sizes.begin();
  for (auto* p : parts) {
    if (p->empty())
      all.insert(all.end(), *size, 0.0f);  // a part without a bias adds nothing
    else
      all.insert(all.end(), p->begin(), p->end());
    ++size;
  }
  float* dst = static_cast<float*>(alloc(all.size() * sizeof(float)));
  check(cudaMemcpy(dst, all.data(), all.size() * sizeof(float), cudaMemcpyHostToDevice), "upload");
  weight_bytes_ += all.size() * sizeof(float);
  return dst;
}

GpuModel::GpuModel(const Model& model, int device) : spec_(model.spec()), device_(device) {
  const ModelSpec& s = spec_;
  const std::string why = "the CUDA backend does not serve this model: ";
  if (std::string reason = unserved(s, "cuda"); !reason.empty()) throw std::runtime_error(why + reason);
  check(cudaSetDevice(device_), "cudaSetDevice");
  // bf16 checkpoints stay bf16 (fp16 could overflow them); fp16 and fp32 ones run in fp16.
  bool bf16 = false;
  for (const auto& [name, t] : s.tensors) bf16 = bf16 || t.dtype == DType::BF16;
  type_ = bf16 ? WeightType::BF16 : WeightType::F16;

  const int H = s.hidden, qd = s.heads * s.head_dim, kvd = s.kv_heads * s.head_dim, I = s.intermediate;
  nonfinite_.resize(size_t(s.layers) * 4 + 2);
  check(cudaMemset(nonfinite_.ptr, 0, nonfinite_.n * sizeof(int)), "cudaMemset");
  const std::vector<float>* uploaded = nullptr;  // random presets share one layer's tensors (see Model)
  size_t layer_bytes = 0;
  for (int l = 0; l < s.layers; ++l) {
    const LayerWeights& L = model.layer(l);
    if (uploaded == &L.wq) {
      layers_.push_back(layers_.back());
      weight_bytes_ += layer_bytes;  // read again by this layer: more than L2 holds at 7B
      continue;
    }
    const size_t before = weight_bytes_;
    GpuLayer g;
    const std::string p = "model.layers." + std::to_string(l) + ".";
    // 4-bit layers upload packed (gpu/int4.cuh), stacked as the 16-bit ones are.
    auto four = [&](std::initializer_list<const PackedLinear*> parts, const std::vector<float>& norm, const std::string& what) {
      size_t packed = 0;
      for (const PackedLinear* part : parts) packed += !part->qweight.empty();
      if (packed == 0) return Int4Linear();
      if (packed != parts.size()) throw std::runtime_error(what + ": the GPU stacks these, and needs them all 4-bit or none");
      Int4Linear w = upload_int4(s.quant, parts, norm, [&](size_t n) { return alloc(n); });
      weight_bytes_ += w.bytes();
      int4_scratch_ = std::max(int4_scratch_, size_t(w.out) * w.in);
      return w;
    };
    g.qkv4 = four({&L.pq, &L.pk, &L.pv}, L.in_norm, p + "self_attn.{q,k,v}_proj");
    g.o4 = four({&L.po}, {}, p + "self_attn.o_proj");
    g.gate_up4 = four({&L.p_gate, &L.p_up}, L.post_norm, p + "mlp.{gate,up}_proj");
    g.down4 = four({&L.p_down}, {}, p + "mlp.down_proj");
    g.qkv = {g.qkv4.qweight ? nullptr : upload_weights(p + "self_attn.{q,k,v}_proj.weight (times input_layernorm.weight)", {L.wq, L.wk, L.wv}, L.in_norm.data(), H), upload_floats({&L.bq, &L.bk, &L.bv}, {size_t(qd), size_t(kvd), size_t(kvd)}), H,
             qd + 2 * kvd};
    g.o = {g.o4.qweight ? nullptr : upload_weights(p + "self_attn.o_proj.weight", {L.wo}), upload_floats({&L.bo}, {size_t(H)}), qd, H};
    g.q_norm = upload_floats({&L.q_norm}, {size_t(s.head_dim)});
    g.k_norm = upload_floats({&L.k_norm}, {size_t(s.head_dim)});
    g.gate_up = {g.gate_up4.qweight ? nullptr : upload_weights(p + "mlp.{gate,up}_proj.weight (times post_attention_layernorm.weight)", {L.w_gate, L.w_up}, L.post_norm.data(), H), upload_floats({&L.b_gate, &L.b_up}, {size_t(I), size_t(I)}), H, 2 * I};
    g.down = {g.down4.qweight ? nullptr : upload_weights(p + "mlp.down_proj.weight", {L.w_down}), upload_floats({&L.b_down}, {size_t(H)}), I, H};
    layers_.push_back(g);
    uploaded = &L.wq;
    layer_bytes = weight_bytes_ - before;
  }
  const size_t table = size_t(s.vocab) * H;
  embed_ = upload_weights("model.embed_tokens.weight", {{model.embedding(), table}});
  // A step reads one row of the embedding table.
  weight_bytes_ -= (table - H) * 2;
  // Tied or not, the LM head is its own matrix here: the final norm is folded into it.
  lm_head_ = {upload_weights(std::string(s.tie_embeddings ? "model.embed_tokens.weight" : "lm_head.weight") + " (times model.norm.weight)",
                             {{model.lm_head().w, table}}, model.final_norm(), H),
              nullptr, H, s.vocab};
  inv_freq_ = upload_floats({&model.inv_freq()}, {model.inv_freq().size()});
  // The host copies were finite (WeightReader checks them): a NaN or Inf here is a value past
  // the 16-bit type's range.
  const std::vector<int> flags = nonfinite_.download();
  for (size_t i = 0; i < uploaded_.size(); ++i)
    if (flags[i])
      throw std::runtime_error("weights " + uploaded_[i] + " overflow " + (type_ == WeightType::BF16 ? "bf16" : "fp16") +
                               " on the GPU (NaN or Inf after conversion)");
  nonfinite_ = DeviceBuffer<int>();
  if (gemm_choice().lt) lt_ = std::make_unique<LtGemm>();
}

namespace {

size_t free_gpu_bytes() {
  size_t free = 0, total = 0;
  check(cudaMemGetInfo(&free, &total), "GPU memory");
  return free;
}

class GpuSequence final : public Decoder {
 public:
  GpuSequence(std::shared_ptr<GpuModel> model, const PolicyOptions& opts);
  ~GpuSequence() override {
    cudaSetDevice(m_->device());
    cudaStreamDestroy(stream_);
  }
  int64_t length() const override { return length_; }

 protected:
  void reserve(int64_t n) override;
  int64_t prefill_chunk() const override { return kPrefillChunk; }
  void forward(const int32_t* tokens, int64_t n, bool decode, bool all_logits, std::vector<float>& logits) override;

 private:
  void grow(int64_t tokens);
  PagedKv view(int layer, int64_t len) const;
  // Scratch sized for `rows` tokens a forward call.
  void ensure_rows(int rows);
  LinearInput normed(const float* x) const { return {x, LinearInput::RmsNorm, float(spec_.rms_eps), row_scale_.ptr}; }
  // y (+)= the linear layer of x over `rows` rows: cuBLASLt on the input staged in the weight
  // type where the model has it and rows > 1, else the own GEMV or GEMM.
  void linear_layer(const LinearInput& x, int rows, const DeviceLinear& w, float* y, bool accumulate);
  // A 4-bit layer (q4 empty: w's own): the GEMV on a decode step, else the GEMM on its dequantization.
  void linear_layer(const LinearInput& x, int rows, const DeviceLinear& w, const Int4Linear& q4, float* y, bool accumulate);

  std::shared_ptr<GpuModel> m_;
  PolicyOptions opts_;
  std::unique_ptr<GpuPolicy> policy_;
  cudaStream_t stream_ = nullptr;
  int64_t length_ = 0, capacity_ = 0;  // tokens cached, tokens the cache holds
  int rows_ = 0;
  std::optional<DecodePlan> plan_;  // made once the sequence's device is current
  HalfType kv_type_ = HalfType::F16;
  std::vector<DeviceBuffer<uint16_t>> k_, v_, kmin_, kmax_;  // per layer, in kv_type_
  DeviceBuffer<int> page_table_, dense_indptr_, dense_indices_;
  DeviceBuffer<float> split_o_, split_lse_, lse_;
  DeviceBuffer<int32_t> tokens_;
  DeviceBuffer<float> x_, row_scale_, trig_, qkv_, att_, gu_, logits_;
  DeviceBuffer<uint16_t> q16_;  // this step's queries, in kv_type_
  DeviceBuffer<uint16_t> staged_;  // a cuBLASLt GEMM's or the 4-bit GEMV's input, in the weight type
  DeviceBuffer<uint16_t> dequant_;  // a 4-bit layer's weights for a prefill's GEMM
  DeviceBuffer<char> lt_workspace_;
  // Rope tables that depend on the length (longrope, dynamic): this call's, on the host and device.
  std::vector<float> freq_host_;
  DeviceBuffer<float> freq_;
  DeviceBuffer<int> window_indices_;  // a windowed layer's decode lists [kv_heads][window]
};

GpuSequence::GpuSequence(std::shared_ptr<GpuModel> model, const PolicyOptions& opts)
    : Decoder(model->spec(), opts.record_selections), m_(std::move(model)), opts_(opts),
      policy_(make_gpu_policy(opts, spec_.layers, spec_.heads, spec_.kv_heads, spec_.head_dim)),
      kv_type_(opts.kv_dtype == KvDtype::BF16 ? HalfType::BF16 : HalfType::F16) {
  check(cudaSetDevice(m_->device()), "cudaSetDevice");
  check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "stream");
  const ModelSpec& s = spec_;
  k_.resize(s.layers);
  v_.resize(s.layers);
  kmin_.resize(s.layers);
  kmax_.resize(s.layers);
  plan_.emplace(kv_type_, s.head_dim, s.heads, s.kv_heads);
  if (s.sliding_window > 0) window_indices_.resize(size_t(s.kv_heads) * s.sliding_window);
  dense_indptr_.resize(s.kv_heads + 1);
  split_o_.resize(size_t(s.heads) * plan_->max_splits() * s.head_dim);
  split_lse_.resize(size_t(s.heads) * plan_->max_splits());
}

void GpuSequence::reserve(int64_t n) {
  check(cudaSetDevice(m_->device()), "cudaSetDevice");
  // Room for the prompt and a stretch of decoding, so decode steps rarely reallocate.
  if (length_ + n > capacity_) grow(length_ + n + 512);
}

void GpuSequence::grow(int64_t tokens) {
  const ModelSpec& s = spec_;
  const int64_t pages = (tokens + kGpuPage - 1) / kGpuPage, old_pages = capacity_ / kGpuPage;
  // The key bounds come a chunk of Quest pages (of any size) at a time; chunks are outermost,
  // so the old bounds are the new ones' prefix.
  const int64_t P = opts_.page_size, meta = bound_pages((pages * kGpuPage + P - 1) / P), old_meta = bound_pages((capacity_ + P - 1) / P);
  const size_t per_page = size_t(s.kv_heads) * kGpuPage * s.head_dim, per_meta = size_t(s.kv_heads) * s.head_dim;
  // K, V and both key bounds of every layer, against what is free plus what this cache holds
  // now: a cache that cannot fit says how many tokens would, rather than failing in cudaMalloc.
  auto cache_bytes = [&](int64_t p, int64_t mp) { return 2 * sizeof(uint16_t) * s.layers * (size_t(p) * per_page + size_t(mp) * per_meta); };
  const size_t need = cache_bytes(pages, meta), room = free_gpu_bytes() + cache_bytes(old_pages, old_meta);
  if (need > room) {
    const auto gib = [](size_t b) { return std::to_string(b >> 30) + "." + std::to_string((b >> 20) % 1024 * 10 / 1024); };
    throw std::runtime_error("a KV cache of " + std::to_string(tokens) + " tokens needs " + gib(need) + " GiB of GPU memory and " +
                             gib(room) + " GiB is free: about " + std::to_string(int64_t(double(tokens) * double(room) / double(need))) +
                             " tokens would fit");
  }
  auto regrow = [&](DeviceBuffer<uint16_t>& b, size_t per, int64_t n, int64_t old) {
    DeviceBuffer<uint16_t> fresh(size_t(n) * per);
    if (old > 0) check(cudaMemcpyAsync(fresh.ptr, b.ptr, size_t(old) * per * sizeof(uint16_t), cudaMemcpyDeviceToDevice, stream_), "cache copy");
    check(cudaStreamSynchronize(stream_), "cache copy");
    b = std::move(fresh);
  };
  for (int l = 0; l < s.layers; ++l) {
    regrow(k_[l], per_page, pages, old_pages);
    regrow(v_[l], per_page, pages, old_pages);
    regrow(kmin_[l], per_meta, meta, old_meta);
    regrow(kmax_[l], per_meta, meta, old_meta);
  }
  // Pages are laid out in order: the table is the identity, kept because the kernels read
  // through one (a shared or reordered pool needs nothing else).
  std::vector<int> table(pages);
  std::iota(table.begin(), table.end(), 0);
  page_table_.resize(pages);
  page_table_.upload(table);
  dense_indices_.resize(size_t(pages) * s.kv_heads);
  policy_->grow(capacity_, pages * kGpuPage, stream_);
  capacity_ = pages * kGpuPage;
}

void GpuSequence::ensure_rows(int rows) {
  if (rows <= rows_) return;
  const ModelSpec& s = spec_;
  const size_t qd = size_t(s.heads) * s.head_dim, kvd = size_t(s.kv_heads) * s.head_dim;
  tokens_.resize(rows);
  x_.resize(size_t(rows) * s.hidden);
  row_scale_.resize(rows);
  trig_.resize(size_t(rows) * s.head_dim);
  qkv_.resize(size_t(rows) * (qd + 2 * kvd));
  att_.resize(size_t(rows) * qd);
  gu_.resize(size_t(rows) * 2 * s.intermediate);
  logits_.resize(size_t(rows) * s.vocab);
  q16_.resize(size_t(rows) * qd);
  if (policy_->wants_prefill_lse()) lse_.resize(size_t(rows) * s.heads);
  if (m_->lt() && rows > 1) {
    staged_.resize(size_t(rows) * std::max<size_t>({size_t(s.hidden), qd, size_t(s.intermediate)}));
    if (!lt_workspace_.ptr) lt_workspace_.resize(LtGemm::kWorkspaceBytes);
  }
  const size_t gemv_in = size_t(std::min(rows, kInt4GemvRows)) * std::max<size_t>({size_t(s.hidden), qd, size_t(s.intermediate)});
  if (m_->int4() && staged_.n < gemv_in) staged_.resize(gemv_in);  // the 4-bit GEMV's input
  rows_ = rows;
}

void GpuSequence::linear_layer(const LinearInput& x, int rows, const DeviceLinear& w, const Int4Linear& q4, float* y, bool accumulate) {
  if (!q4.qweight) return linear_layer(x, rows, w, y, accumulate);
  if (rows <= kInt4GemvRows) {
    stage_input(x, rows, w.in, m_->type(), staged_.ptr, stream_);
    return int4_gemv(staged_.ptr, rows, q4, w.b, m_->type(), y, accumulate, stream_);
  }
  if (!dequant_.ptr) dequant_.resize(m_->int4_scratch());
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
  kv.k = k_[layer].ptr;
  kv.v = v_[layer].ptr;
  kv.kmin = kmin_[layer].ptr;
  kv.kmax = kmax_[layer].ptr;
  kv.page_table = page_table_.ptr;
  kv.kv_heads = spec_.kv_heads;
  kv.head_dim = spec_.head_dim;
  kv.page_size = kGpuPage;
  kv.current_page = int((len - 1) / kGpuPage);
  kv.current_len = int(len - int64_t(kv.current_page) * kGpuPage);
  kv.meta_page = opts_.page_size;
  return kv;
}

void GpuSequence::forward(const int32_t* tokens, int64_t n64, bool decode, bool all_logits, std::vector<float>& logits) {
  const ModelSpec& s = spec_;
  const int n = int(n64), H = s.hidden;
  check(cudaSetDevice(m_->device()), "cudaSetDevice");
  const int64_t start = length_, len = start + n;
  if (len > capacity_) grow(std::max<int64_t>(len, capacity_ + capacity_ / 2));
  ensure_rows(n);
  cudaStream_t st = stream_;
  const WeightType wt = m_->type();
  const float scale = 1.0f / std::sqrt(float(s.head_dim));
  check(cudaMemcpyAsync(tokens_.ptr, tokens, size_t(n) * sizeof(int32_t), cudaMemcpyHostToDevice, st), "token upload");
  embed(m_->embedding(), wt, H, tokens_.ptr, n, x_.ptr, st);
  const float* inv_freq = m_->inv_freq();
  if (s.rope.type == "longrope" || s.rope.type == "dynamic") {
    // As the CPU engine: a prefill rotates with its whole length's table, a decode step with its own.
    freq_host_ = rope_inv_freq(s.rope, s.head_dim, decode ? len : prompt_end_);
    if (freq_.n != freq_host_.size()) freq_.resize(freq_host_.size());
    check(cudaMemcpyAsync(freq_.ptr, freq_host_.data(), freq_host_.size() * sizeof(float), cudaMemcpyHostToDevice, st), "rope table");
    inv_freq = freq_.ptr;
  }
  rope_angles(n, start, inv_freq, s.head_dim / 2, trig_.ptr, st);
  if (s.rope.attention_factor != 1.0) scale_trig(trig_.ptr, n, s.head_dim, float(s.rope.attention_factor), st);

  const int pages_now = int((len - 1) / kGpuPage) + 1;
  if (decode) check(fill_dense_lists(s.kv_heads, pages_now, dense_indptr_.ptr, dense_indices_.ptr, st), "dense lists");
  const size_t kv_token_bytes = size_t(s.kv_heads) * s.head_dim * 2 * sizeof(uint16_t);
  for (int l = 0; l < s.layers; ++l) {
    const GpuLayer& L = m_->layer(l);
    linear_layer(normed(x_.ptr), n, L.qkv, L.qkv4, qkv_.ptr, false);
    if (L.q_norm) head_rmsnorm(qkv_.ptr, n, s.heads, s.kv_heads, s.head_dim, L.q_norm, L.k_norm, float(s.rms_eps), st);
    const AttentionCall call{{q16_.ptr, view(l, len), s.heads, scale, {split_o_.ptr, split_lse_.ptr, 0}, att_.ptr}, &*plan_};
    rope_store(qkv_.ptr, n, s.heads, start, trig_.ptr, q16_.ptr, call.kv, st);
    // A policy governs full-attention layers; a sliding-window layer reads its window, counted
    // in the bytes but not in the budget (as the CPU engine).
    const int window = s.sliding(l) ? s.sliding_window : 0;
    const bool governed = l >= opts_.dense_layers && !window;
    if (window) {
      if (!decode) {
        check(page_minmax(call.kv, int(start / opts_.page_size), int((len - 1) / opts_.page_size), len, st), "page min/max");
        window_prefill_attention({q16_.ptr, call.kv, s.heads, n, start, scale, att_.ptr, nullptr}, window, st);
      } else {
        const int count = int(std::min<int64_t>(window, len));
        window_lists(window_indices_.ptr, s.kv_heads, start, count, st);
        const int splits = plan_->tokens(plan_->token_splits(count, s.kv_heads), false);
        check(decode_attention_tokens(call, {window_indices_.ptr, count, count, false}, splits, {}, st), "window decode attention");
        stats_.kv_bytes_read += double(count) * kv_token_bytes;
      }
    } else if (!decode) {
      check(page_minmax(call.kv, int(start / opts_.page_size), int((len - 1) / opts_.page_size), len, st), "page min/max");
      const bool observe = governed && policy_->wants_prefill_lse();
      prefill_attention({q16_.ptr, call.kv, s.heads, n, start, scale, att_.ptr, observe ? lse_.ptr : nullptr}, st);
      if (observe) policy_->observe_prefill(l, call, n, start, prompt_end_, lse_.ptr, st);
    } else {
      StepRead read = governed ? policy_->select(l, start, prompt_end_, call, st) : StepRead{};
      if (read.kind == StepRead::Dense) {
        read.pages = {dense_indptr_.ptr, dense_indices_.ptr};
        read.listed = pages_now;
        read.tokens_read = len;
      }
      if (read.kind == StepRead::Tokens) {
        const bool per_head = read.tokens.per_head;
        const int splits = plan_->tokens(plan_->token_splits(read.tokens.count, per_head ? s.heads : s.kv_heads), per_head);
        check(decode_attention_tokens(call, read.tokens, splits, read.report, st), "decode attention");
      } else if (read.kind != StepRead::PolicyAttended) {
        const bool per_head = read.pages.per_head;
        read.pages.longest = read.listed;
        const PageLaunch launch = plan_->pages(plan_->page_splits(read.listed, per_head ? s.heads : s.kv_heads), read.listed, per_head);
        check(decode_attention(call, read.pages, launch, st), "decode attention");
      }
      if (governed) {
        if (record_) record_layer(download_read(read, s.heads, s.kv_heads, len, st), {}, start);
        policy_->observe_decode(l, st);
        stats_.tokens_read += double(read.tokens_read) * s.kv_heads;
        stats_.policy_samples += s.kv_heads;
        stats_.meta_bytes_read += read.meta_bytes;
      }
      stats_.kv_bytes_read += double(read.tokens_read) * kv_token_bytes;
    }
    linear_layer({att_.ptr}, n, L.o, L.o4, x_.ptr, true);
    linear_layer(normed(x_.ptr), n, L.gate_up, L.gate_up4, gu_.ptr, false);
    linear_layer({gu_.ptr, LinearInput::SwiGlu}, n, L.down, L.down4, x_.ptr, true);
  }
  // Only the rows whose logits are wanted go through the final norm and the LM head.
  const int rows = all_logits ? n : 1;
  linear_layer(normed(x_.ptr + size_t(n - rows) * H), rows, m_->lm_head(), logits_.ptr, false);
  logits.resize(size_t(rows) * s.vocab);
  check(cudaMemcpyAsync(logits.data(), logits_.ptr, logits.size() * sizeof(float), cudaMemcpyDeviceToHost, st), "logits");
  check(cudaStreamSynchronize(st), "forward pass");
  if (const double counted = policy_->drain_counted_tokens(st)) {
    stats_.tokens_read += counted;
    stats_.kv_bytes_read += counted * s.head_dim * 2 * sizeof(uint16_t);
  }
  length_ = len;
}

}  // namespace

std::shared_ptr<GpuModel> upload_model(const Model& model, int device) { return std::make_shared<GpuModel>(model, device); }

std::unique_ptr<Decoder> make_gpu_sequence(std::shared_ptr<GpuModel> model, const PolicyOptions& opts) {
  return std::make_unique<GpuSequence>(std::move(model), opts);
}

size_t gpu_weight_bytes(const GpuModel& model) { return model.weight_bytes(); }

double gpu_copy_gbps(int device) {
  check(cudaSetDevice(device), "cudaSetDevice");
  cudaStream_t s;
  check(cudaStreamCreate(&s), "stream");
  const double gbps = copy_bandwidth_gbps(s);
  cudaStreamDestroy(s);
  return gbps;
}

}  // namespace quest
