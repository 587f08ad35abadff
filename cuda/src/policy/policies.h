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

}  // namespace quest
