// What the policies' files share beyond policy.h (each registers itself: register_policy).
#pragma once
#include "policy/policy.h"

namespace quest {

// Quest's page score for KV head `kv_head` of `layer`, summed over query heads [h0, h1) of
// q ([heads][head_dim]), for the first `pages` pages: the one formula the CPU policy and the
// GPU kernel's parity check share.
void quest_page_scores(const PagedKvCache& cache, int layer, int kv_head, const float* q, int h0, int h1, int64_t pages, float* out);

}  // namespace quest
