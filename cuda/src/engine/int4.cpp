#include "engine/int4.h"

#include "engine/thread_pool.h"

namespace quest {

// AWQ packs eight output columns a word, column 8j + r at nibble kAwqNibble[r]: the inverse of
// the order [0, 2, 4, 6, 1, 3, 5, 7] of casper-hansen/AutoAWQ awq/modules/linear/gemm.py
// (WQLinear_GEMM.from_linear); GPTQ packs index 8j + r at nibble r
// (AutoGPTQ auto_gptq/nn_modules/qlinear/qlinear_cuda_old.py, QuantLinear.pack).
static const int kAwqNibble[8] = {0, 4, 1, 5, 2, 6, 3, 7};

static int nibble(uint32_t word, int k) { return int((word >> (4 * k)) & 15u); }

Int4Rows int4_rows(const QuantSpec& q, const PackedLinear& p, const int (&slot)[8]) {
  const int words = p.in / 8, groups = p.in / p.group, packs = p.out / 8;
  const bool awq = q.method == "awq";
  // GPTQ v1 stores zero - 1 and its forward adds the 1 back (qlinear_cuda_old.py: "zeros -= 1"
  // in pack, "zeros = zeros + 1" in forward); gptq_v2 and AWQ store the zero itself.
  const int zero_offset = awq ? 0 : q.zero_offset;
  Int4Rows r;
  r.words.assign(size_t(p.out) * words, 0);
  r.zeros.resize(size_t(p.out) * groups);
  // Blocks of eight output rows b: AWQ's words each hold one input of those eight rows, GPTQ's
  // eight inputs of one row; both formats' zeros hold the eight rows' zeros of a group.
  cpu_pool().parallel_for(packs, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      uint32_t* rows = r.words.data() + size_t(8 * b) * words;
      for (int j = 0; j < words; ++j)
        for (int n = 0; n < 8; ++n) {
          const int i = 8 * j + n;
          if (awq) {
            const uint32_t word = p.qweight[size_t(i) * packs + b];
            for (int k = 0; k < 8; ++k) rows[size_t(k) * words + j] |= uint32_t(nibble(word, kAwqNibble[k])) << (4 * slot[n]);
          } else {
            for (int k = 0; k < 8; ++k) rows[size_t(k) * words + j] |= uint32_t(nibble(p.qweight[size_t(j) * p.out + 8 * b + k], n)) << (4 * slot[n]);
          }
        }
      for (int g = 0; g < groups; ++g) {
        const uint32_t word = p.qzeros[size_t(g) * packs + b];
        for (int k = 0; k < 8; ++k)
          r.zeros[size_t(8 * b + k) * groups + g] = uint8_t(nibble(word, awq ? kAwqNibble[k] : k) + zero_offset);
      }
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
