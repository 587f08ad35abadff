#include "engine/int4.h"

namespace quest {

// AWQ packs eight output columns a word, column 8j + r at nibble kAwqNibble[r]: the inverse of
// the order [0, 2, 4, 6, 1, 3, 5, 7] of casper-hansen/AutoAWQ awq/modules/linear/gemm.py
// (WQLinear_GEMM.from_linear); GPTQ packs index 8j + r at nibble r
// (AutoGPTQ auto_gptq/nn_modules/qlinear/qlinear_cuda_old.py, QuantLinear.pack).
static const int kAwqNibble[8] = {0, 4, 1, 5, 2, 6, 3, 7};

static int nibble(uint32_t word, int k) { return int((word >> (4 * k)) & 15u); }

int int4_weight(const QuantSpec& q, const PackedLinear& p, int o, int i) {
  if (q.method == "awq") return nibble(p.qweight[size_t(i) * (p.out / 8) + o / 8], kAwqNibble[o % 8]);
  return nibble(p.qweight[size_t(i / 8) * p.out + o], i % 8);  // GPTQ: packed along the input
}

int int4_zero(const QuantSpec& q, const PackedLinear& p, int g, int o) {
  const uint32_t word = p.qzeros[size_t(g) * (p.out / 8) + o / 8];
  // GPTQ v1 stores zero - 1 and its forward adds the 1 back (qlinear_cuda_old.py: "zeros -= 1"
  // in pack, "zeros = zeros + 1" in forward); gptq_v2 and AWQ store the zero itself.
  return q.method == "awq" ? nibble(word, kAwqNibble[o % 8]) : nibble(word, o % 8) + q.zero_offset;
}

std::vector<float> dequantize(const QuantSpec& q, const PackedLinear& p) {
  std::vector<float> w(size_t(p.out) * p.in);
  for (int o = 0; o < p.out; ++o)
    for (int i = 0; i < p.in; ++i) {
      const int g = i / p.group;
      // A small integer times an fp16 scale: the fp32 product is exact.
      w[size_t(o) * p.in + i] = float(int4_weight(q, p, o, i) - int4_zero(q, p, g, o)) * p.scales[size_t(g) * p.out + o];
    }
  return w;
}

}  // namespace quest
