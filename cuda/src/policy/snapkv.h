// SnapKV's settings, read by its device version too (gpu/gpu_policies.cu).
#pragma once
#include "policy/policy.h"

namespace quest {

// --snapkv-window: the last prompt tokens whose attention chooses; --snapkv-kernel: its pooling.
int snapkv_window(const PolicyOptions& o);
int snapkv_kernel(const PolicyOptions& o);

}  // namespace quest
