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

// The layer's 4-bit values and zeros by the format's packing rules, unpacked by output row (on
// the CPU's thread pool): words [out][in/8], input 8j + n of row o at nibble slot[n] of its
// word j; zeros [out][in/group].
struct Int4Rows {
  std::vector<uint32_t> words;
  std::vector<uint8_t> zeros;
};
Int4Rows int4_rows(const QuantSpec& q, const PackedLinear& p, const int (&slot)[8]);
// w[o][i] = (q - zero) * scale, [out][in] as nn.Linear stores it; exact in fp32.
std::vector<float> dequantize(const QuantSpec& q, const PackedLinear& p);

}  // namespace quest
