// 4-bit checkpoints (issue #23): the packed tensors of one linear layer, as AWQ and GPTQ
// write them, and their exact fp32 dequantization (the CPU reference and the GPU's source).
#pragma once
#include <cstdint>
#include <vector>

#include "engine/model_spec.h"

namespace quest {

struct PackedLinear {
  int in = 0, out = 0, group = 0;  // group: input features per scale and zero
  std::vector<uint32_t> qweight;   // AWQ: [in][out/8]; GPTQ: [in/8][out]
  std::vector<uint32_t> qzeros;    // [in/group][out/8], both formats
  std::vector<float> scales;       // [in/group][out]
};

// The 4-bit value of weight (o, i) and the zero of its group, by the format's packing rules.
int int4_weight(const QuantSpec& q, const PackedLinear& p, int o, int i);
int int4_zero(const QuantSpec& q, const PackedLinear& p, int g, int o);
// w[o][i] = (q - zero) * scale, [out][in] as nn.Linear stores it; exact in fp32.
std::vector<float> dequantize(const QuantSpec& q, const PackedLinear& p);

}  // namespace quest
