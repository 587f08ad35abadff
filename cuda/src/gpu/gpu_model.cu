// The model's weights on the GPU: each layer's projections stacked in the 16-bit type with the
// RMSNorm weights folded into their columns, 4-bit layers packed, the rope table.
#include "gpu/gpu_model.cuh"

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "gpu/gpu_engine.h"
#include "kernels/embed_rope.cuh"
#include "kernels/prefill_attention.cuh"

namespace quest {

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
  // A bad QUEST_GEMM or QUEST_PREFILL_ATTENTION is refused here, before any weight goes up.
  gemm_choice();
  prefill_attention_sm90_refusal();
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
    // The MLP's input norm: Gemma's pre_feedforward_layernorm (its post_attention_layernorm
    // normalises the attention's output), the others' post_attention_layernorm.
    const std::vector<float>& ff_norm = s.gemma() ? L.pre_ff_norm : L.post_norm;
    const std::string ff_norm_name = s.gemma() ? "pre_feedforward_layernorm" : "post_attention_layernorm";
    g.gate_up4 = four({&L.p_gate, &L.p_up}, ff_norm, p + "mlp.{gate,up}_proj");
    g.down4 = four({&L.p_down}, {}, p + "mlp.down_proj");
    g.qkv = {g.qkv4.qweight ? nullptr : upload_weights(p + "self_attn.{q,k,v}_proj.weight (times input_layernorm.weight)", {L.wq, L.wk, L.wv}, L.in_norm.data(), H), upload_floats({&L.bq, &L.bk, &L.bv}, {size_t(qd), size_t(kvd), size_t(kvd)}), H,
             qd + 2 * kvd};
    g.o = {g.o4.qweight ? nullptr : upload_weights(p + "self_attn.o_proj.weight", {L.wo}), upload_floats({&L.bo}, {size_t(H)}), qd, H};
    g.q_norm = upload_floats({&L.q_norm}, {size_t(s.head_dim)});
    g.k_norm = upload_floats({&L.k_norm}, {size_t(s.head_dim)});
    g.gate_up = {g.gate_up4.qweight ? nullptr : upload_weights(p + "mlp.{gate,up}_proj.weight (times " + ff_norm_name + ".weight)", {L.w_gate, L.w_up}, ff_norm.data(), H), upload_floats({&L.b_gate, &L.b_up}, {size_t(I), size_t(I)}), H, 2 * I};
    if (s.gemma()) {
      g.post_attn_norm = upload_floats({&L.post_norm}, {size_t(H)});
      g.post_ff_norm = upload_floats({&L.post_ff_norm}, {size_t(H)});
    }
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
  if (s.has_local_rope) inv_freq_local_ = upload_floats({&model.inv_freq_local()}, {model.inv_freq_local().size()});
  if (s.gemma()) {
    const float root = static_cast<float>(std::sqrt(double(H)));
    embed_scale_ = type_ == WeightType::BF16 ? __bfloat162float(__float2bfloat16_rn(root)) : __half2float(__float2half_rn(root));
  }
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

std::shared_ptr<GpuModel> upload_model(const Model& model, int device) { return std::make_shared<GpuModel>(model, device); }

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
