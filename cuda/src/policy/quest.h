// Quest's setting, read by its device version too (gpu/gpu_policies.cu).
#pragma once
#include "policy/policy.h"

namespace quest {

// --quest-gqa per-query-head: each query head selects its own pages (the paper's MHA rule).
bool quest_per_query_head(const PolicyOptions& o);

}  // namespace quest
