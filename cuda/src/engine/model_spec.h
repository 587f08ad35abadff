// What the engine needs to know about a model: filled from JavaScript (src/model parses
// config.json and the safetensors headers) and checked again here against the files.
#pragma once
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace quest {

enum class DType { F32, F16, BF16, I32 };

struct TensorRef {
  std::string file;         // absolute path of the .safetensors file
  uint64_t offset = 0;      // absolute byte offset of the data in the file
  uint64_t nbytes = 0;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
};

struct RopeSpec {
  double theta = 10000.0;
  std::string type = "default";  // default | linear | llama3 | dynamic | yarn | longrope
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  double original_max_position = 8192.0;
  double attention_factor = 1.0;  // yarn, longrope: multiplies cos and sin
  double beta_fast = 32.0, beta_slow = 1.0;
  bool truncate = true;
  std::vector<double> short_factor, long_factor;  // longrope
};

// 4-bit linear layers (config.json's quantization_config; src/model/quant.ts checks it).
struct QuantSpec {
  std::string method;  // "" (weights as stored) | awq | gptq
  int group_size = 0;  // -1: one group over the whole input
  int zero_offset = 0;  // GPTQ v1 checkpoints store zero - 1
};

struct ModelSpec {
  std::string arch;  // llama | mistral | qwen2 | qwen3 | phi3 | gemma2 | gemma3
  int vocab = 0, hidden = 0, layers = 0, heads = 0, kv_heads = 0, head_dim = 0, intermediate = 0;
  double rms_eps = 1e-5;
  int max_positions = 0;
  bool tie_embeddings = false;
  bool attention_bias = false;  // q/k/v biases (Qwen2; Llama with attention_bias)
  bool o_bias = false;          // o_proj bias (Llama with attention_bias)
  bool mlp_bias = false;
  int sliding_window = 0;           // tokens a windowed layer sees, its own included (0: none)
  std::vector<bool> sliding_layers;  // per layer: attends over the window (empty: none does)
  RopeSpec rope;
  bool has_local_rope = false;  // Gemma 3: sliding layers rotate with rope_local
  RopeSpec rope_local;
  double query_pre_attn_scalar = 0;  // Gemma: scores scaled by its -1/2 power (0: head_dim's)
  double attn_softcap = 0, final_softcap = 0;  // Gemma: tanh soft-capping (0: none)
  QuantSpec quant;
  std::map<std::string, TensorRef> tensors;
  // A synthetic model (bench-latency presets) has no files: weights are drawn at random.
  bool random_weights = false;
  uint64_t random_seed = 0;

  bool sliding(int layer) const { return !sliding_layers.empty() && sliding_layers[layer]; }
  bool gemma() const { return arch == "gemma2" || arch == "gemma3"; }
  // The softmax scale: query_pre_attn_scalar^-1/2 where the model sets it (Gemma), else head_dim^-1/2.
  float attention_scale() const {
    return query_pre_attn_scalar > 0 ? static_cast<float>(std::pow(query_pre_attn_scalar, -0.5)) : 1.0f / std::sqrt(static_cast<float>(head_dim));
  }
};

// Why a backend ("cpu" or "cuda") does not serve this spec, in one line; empty when it does.
std::string unserved(const ModelSpec& spec, const std::string& backend);

}  // namespace quest
