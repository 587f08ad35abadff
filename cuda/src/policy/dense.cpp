#include <stdexcept>

#include "policy/policy.h"

namespace quest {
namespace {

class DensePolicy final : public Policy {
 public:
  void select(int, int64_t, const float*, int, const PagedKvCache&, Selection& sel) override {
    for (auto& s : sel) s.clear();
  }
};

}  // namespace

std::unique_ptr<Policy> make_policy(const PolicyOptions& opts, int /*layers*/, int /*kv_heads*/) {
  if (opts.name == "dense") return std::make_unique<DensePolicy>();
  throw std::runtime_error("unknown policy '" + opts.name + "'");
}

}  // namespace quest
