// The GPU attention kernels measured and checked from Node (plain C++: no CUDA types), so
// the binding builds the same with or without nvcc.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace quest {

struct AttentionShape {
  int heads = 32, kv_heads = 32, head_dim = 128, page_size = 16;
};

struct AttentionBenchOptions {
  AttentionShape shape;
  std::vector<int> lengths;
  std::vector<int> budgets;
  int repeats = 50;
  uint64_t seed = 0;
  bool prefill = false;  // also time one layer's causal prefill attention at each length
};

struct AttentionBenchRow {
  int length = 0;
  std::string policy;      // dense | quest | prefill (total_us: every position of the length, in the engine's chunks)
  int budget = 0;          // 0 for dense
  double estimate_us = 0;  // medians of replayed CUDA graphs
  double topk_us = 0;
  double attention_us = 0;
  double total_us = 0;     // the whole step in one graph
  double tokens_read = 0;  // per KV head
  double kv_bytes = 0;     // K and V bytes the step reads
  double meta_bytes = 0;   // page min/max bytes the step must read at least (one of each channel's two)
};

struct AttentionBenchResult {
  std::string device;
  double copy_gbps = 0;  // device-to-device copy, bytes read plus written, same run
  std::vector<AttentionBenchRow> rows;
};

AttentionBenchResult bench_attention(const AttentionBenchOptions& opts);

struct AttentionParityOptions {
  AttentionShape shape;
  int length = 1000;
  int budget = 256;
  uint64_t seed = 0;
  float softcap = 0;  // every kernel's scores soft-capped at this, and the CPU's (0: none)
};

// Each GPU kernel against the CPU backend on the same fp16-rounded inputs. Quest's fields
// cover page sizes 8, 16 and 32, per KV head and per query head.
struct AttentionParityResult {
  double append_minmax_max_abs = 0;  // page min/max after appending every token, and recomputed
  double dense_max_abs = 0, dense_ref_max = 0;
  double estimate_max_abs = 0, estimate_ref_max = 0;
  int topk_mismatches = 0;  // GPU page lists vs the CPU top-k of the same scores (also at 3,000 and 20,000 pages), and per-query-head union counts
  double sparse_max_abs = 0, sparse_ref_max = 0;
  double token_max_abs = 0, token_ref_max = 0;    // attention over random token lists
  double probs_max_abs = 0, probs_ref_max = 0;    // their per-KV-head probabilities (the report)
  int selection_mismatches = 0;                   // top-k, both evictions, pooling vs the CPU rules
  double prefill_max_abs = 0, prefill_ref_max = 0;  // a prefill chunk's flash attention
  double colsum_max_abs = 0, colsum_ref_max = 0;    // its column sums of probabilities
};

AttentionParityResult parity_attention(const AttentionParityOptions& opts);

}  // namespace quest
