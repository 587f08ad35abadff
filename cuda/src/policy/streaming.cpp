// StreamingLLM (Xiao et al., 2024): the first `sinks` tokens and the most recent B - sinks.
#include "policy/streaming.h"

#include "policy/policies.h"
#include "policy/rules.h"

namespace quest {
namespace {

// StreamingLLM keeps 4 attention sinks (Xiao et al., 2024, section 3.3).
const PolicyParam kSinks{"streamingSinks", PolicyParam::Int, 4, 0, kUnbounded, {}, "", "StreamingLLM: attention sink tokens", true};

}  // namespace

int streaming_sinks(const PolicyOptions& o) { return int(o.value(kSinks)); }

namespace {

class StreamingPolicy final : public Policy {
 public:
  explicit StreamingPolicy(const PolicyOptions& o) : o_(o), sinks_(streaming_sinks(o)) {}
  void select(int, int64_t pos, const float*, int, const PagedKvCache&, Selection& sel) override {
    if (rules::budget_covers(o_.budget, pos)) {
      for (auto& s : sel) s.clear();
      return;
    }
    std::vector<int32_t> list;
    append_range(list, 0, sinks_);
    append_range(list, pos + 1 - (o_.budget - sinks_), pos + 1);
    for (auto& s : sel) s = list;
  }

 private:
  PolicyOptions o_;
  int sinks_;
};

const bool registered = register_policy({
    "streaming", 3, "attention sinks plus the most recent tokens (Xiao et al., 2024)",
    {kSinks},
    "nothing", "token lists on the device",
    [](const PolicyOptions& o, int, int) -> std::unique_ptr<Policy> { return std::make_unique<StreamingPolicy>(o); },
});

}  // namespace

}  // namespace quest
