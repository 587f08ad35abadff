#include "engine/int4.h"

#include "engine/thread_pool.h"

namespace quest {

// AWQ packs eight output columns a word, column 8j + r at nibble kAwqNibble[r]: the inverse of
// the order [0, 2, 4, 6, 1, 3, 5, 7] of casper-hansen/AutoAWQ awq/modules/linear/gemm.py
// (WQLinear_GEMM.from_linear); GPTQ packs index 8j + r at nibble r
// (AutoGPTQ auto_gptq/nn_modules/qlinear/qlinear_cuda_old.py, QuantLinear.pack).
static const int kAwqNibble[8] = {0, 4, 1, 5, 2, 6, 3, 7};

static int nibble(uint32_t word, int k) { return int((word >> (4 * k)) & 15u); }

static int int4_zero(const QuantSpec& q, const PackedLinear& p, int g, int o) {
  const uint32_t word = p.qzeros[size_t(g) * (p.out / 8) + o / 8];
  // GPTQ v1 stores zero - 1 and its forward adds the 1 back (qlinear_cuda_old.py: "zeros -= 1"
  // in pack, "zeros = zeros + 1" in forward); gptq_v2 and AWQ store the zero itself.
  return q.method == "awq" ? nibble(word, kAwqNibble[o % 8]) : nibble(word, o % 8) + q.zero_offset;
}

Int4Rows int4_rows(const QuantSpec& q, const PackedLinear& p, const int (&slot)[8]) {
  const int words = p.in / 8, groups = p.in / p.group;
  const bool awq = q.method == "awq";
  Int4Rows r;
  r.words.assign(size_t(p.out) * words, 0);
  r.zeros.resize(size_t(p.out) * groups);
  // Blocks of eight output rows: AWQ's words each hold one input of those eight rows, GPTQ's
  // eight inputs of one row.
  cpu_pool().parallel_for(p.out / 8, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      for (int j = 0; j < words; ++j)
        for (int n = 0; n < 8; ++n) {
          const int i = 8 * j + n;
          for (int k = 0; k < 8; ++k) {
            const int o = int(8 * b) + k;
            const int v = awq ? nibble(p.qweight[size_t(i) * (p.out / 8) + b], kAwqNibble[k]) : nibble(p.qweight[size_t(j) * p.out + o], n);
            r.words[size_t(o) * words + j] |= uint32_t(v) << (4 * slot[n]);
          }
        }
      for (int k = 0; k < 8; ++k)
        for (int g = 0; g < groups; ++g) r.zeros[size_t(8 * b + k) * groups + g] = uint8_t(int4_zero(q, p, g, int(8 * b) + k));
    }
  });
  return r;
}

std::vector<float> dequantize(const QuantSpec& q, const PackedLinear& p) {
  static const int in_order[8] = {0, 1, 2, 3, 4, 5, 6, 7};
  const Int4Rows r = int4_rows(q, p, in_order);
  const int words = p.in / 8, groups = p.in / p.group;
  std::vector<float> w(size_t(p.out) * p.in);
  cpu_pool().parallel_for(p.out, [&](int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; ++o)
      for (int i = 0; i < p.in; ++i) {
        const int g = i / p.group, v = nibble(r.words[size_t(o) * words + i / 8], i % 8);
        // A small integer times an fp16 scale: the fp32 product is exact.
        w[size_t(o) * p.in + i] = float(v - r.zeros[size_t(o) * groups + g]) * p.scales[size_t(g) * p.out + o];
      }
  });
  return w;
}

}  // namespace quest
