// H2O's setting, read by its device version too (gpu/gpu_policies.cu).
#pragma once
#include "policy/policy.h"

namespace quest {

// --h2o-heavy-fraction: the share of B kept by accumulated attention.
double h2o_heavy_fraction(const PolicyOptions& o);

}  // namespace quest
