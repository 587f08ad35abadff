// Dense: every decode step reads the whole cache; the baseline every policy is measured against.
#include "policy/policies.h"

namespace quest {
namespace {

class DensePolicy final : public Policy {
 public:
  void select(int, int64_t, const float*, int, const PagedKvCache&, Selection& sel) override {
    for (auto& s : sel) s.clear();
  }
};

const bool registered = register_policy({
    "dense", 0, "every step reads the whole cache", {}, "nothing", "every shape the GPU forward pass runs",
    [](const PolicyOptions&, int, int) -> std::unique_ptr<Policy> { return std::make_unique<DensePolicy>(); },
});

}  // namespace
}  // namespace quest
