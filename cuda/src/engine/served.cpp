// Which backend serves which model features: the one place the engine says so, read by the
// loaders (Model, GpuModel) and by `quest models check` through the addon.
#include <string>

#include "engine/model_spec.h"
#include "kernels/gpu_shapes.h"

namespace quest {

std::string unserved(const ModelSpec& s, const std::string& backend) {
  const bool cpu_arch = s.arch == "llama" || s.arch == "mistral" || s.arch == "qwen2" || s.arch == "qwen3" ||
                        s.arch == "phi3" || s.gemma();
  const bool cpu_rope = s.rope.type == "default" || s.rope.type == "linear" || s.rope.type == "llama3" ||
                        s.rope.type == "yarn" || s.rope.type == "longrope" || s.rope.type == "dynamic";
  if (!cpu_arch) return "architecture '" + s.arch + "' is not served";
  if (!cpu_rope) return "rope type '" + s.rope.type + "' is not served";
  // The sliding layers' table is made once: a rope that depends on the length is not applied there.
  if (s.has_local_rope && (s.rope_local.type == "longrope" || s.rope_local.type == "dynamic"))
    return "rope type '" + s.rope_local.type + "' on sliding layers is not served";
  if (backend == "cpu") return "";
  if (std::string shape = gpu_shape_refusal(s.heads, s.kv_heads, s.head_dim); !shape.empty()) return shape;
  if (s.hidden % 32 || s.intermediate % 32) return "hidden and intermediate sizes must be multiples of 32";
  // The 4-bit GEMV (gpu/int4.cu) dequantizes 32 weights of one group a 16-byte load.
  if (!s.quant.method.empty() && s.arch == "phi3") return "4-bit Phi-3 (fused projections) is not served on the GPU yet";
  if (!s.quant.method.empty() && s.quant.group_size != -1 && s.quant.group_size % 32)
    return "4-bit group_size must be a multiple of 32 on the GPU";
  return "";
}

}  // namespace quest
