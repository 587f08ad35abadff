// StreamingLLM's setting, read by its device version too (gpu/gpu_policies.cu).
#pragma once
#include "policy/policy.h"

namespace quest {

// --streaming-sinks: the attention sink tokens always read.
int streaming_sinks(const PolicyOptions& o);

}  // namespace quest
