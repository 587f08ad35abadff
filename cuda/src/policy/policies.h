// Constructors of the policies, one file each.
#pragma once
#include "policy/policy.h"

namespace quest {

std::unique_ptr<Policy> make_quest(const PolicyOptions& o, int kv_heads);
std::unique_ptr<Policy> make_streaming(const PolicyOptions& o);
std::unique_ptr<Policy> make_h2o(const PolicyOptions& o, int layers, int kv_heads);
std::unique_ptr<Policy> make_tova(const PolicyOptions& o, int layers, int kv_heads);
std::unique_ptr<Policy> make_snapkv(const PolicyOptions& o, int layers, int kv_heads);
std::unique_ptr<Policy> make_oracle(const PolicyOptions& o, int kv_heads);

// Quest's page score for KV head `kv_head` of `layer`, summed over query heads [h0, h1) of
// q ([heads][head_dim]), for the first `pages` pages: the one formula the CPU policy and the
// GPU kernel's parity check share.
void quest_page_scores(const PagedKvCache& cache, int layer, int kv_head, const float* q, int h0, int h1, int64_t pages, float* out);

}  // namespace quest
