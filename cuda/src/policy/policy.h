// A KV-cache policy decides, at each decode step, layer and KV head, which cached
// positions attention reads. The dense prefill and layers below `dense_layers` always read
// everything; a policy only sees the layers it governs. Budget B counts every token read
// per KV head per layer per step: sinks, recent window and the current page included.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/backend.h"
#include "engine/kv_cache.h"

namespace quest {

struct PolicyParam;

// What a sequence runs under. Its settings have no defaults here: each is declared once, with
// its default and range, beside what reads it (a PolicyParam; policy_defaults() applies them).
struct PolicyOptions {
  std::string name = "dense";
  int64_t budget = 0;
  int page_size = 0;
  int dense_layers = 0;
  KvDtype kv_dtype = KvDtype::Auto;   // not a policy's but the sequence's: what its cache stores
  bool record_selections = false;     // the sequence's too: keep what each decode step read (a debug path)
  bool diagnostics = false;           // the sequence's too: attention diagnostics at each decode step (CPU; SequenceStats)
  AttendOptions attend;               // the model's: how it forms scores (scale, soft-cap), for a policy forming its own (the oracle)
  // The policies' own settings by key (a Choice holds its index): each policy file declares
  // its PolicyParams and reads them with value(), so a new policy adds no field here.
  std::map<std::string, double> values;
  double value(const PolicyParam& p) const;
};

class Policy {
 public:
  virtual ~Policy() = default;
  // Asks for the attention probabilities the policy needs from a prefill ending (exclusive)
  // at `prompt_end`, or from a decode step.
  virtual void request_prefill(int64_t /*prompt_end*/, AttentionScores& /*s*/) {}
  virtual void request_decode(AttentionScores& /*s*/) {}
  virtual void observe_prefill(int /*layer*/, const AttentionScores& /*s*/) {}
  // Fills `sel` for the query at `pos` ([heads][head_dim], after RoPE; the token at `pos` is
  // already cached): one sorted list per KV head, or per query head. Empty means all.
  virtual void select(int layer, int64_t pos, const float* q, int heads, const PagedKvCache& cache, Selection& sel) = 0;
  virtual void observe_decode(int /*layer*/, const AttentionScores& /*s*/) {}
  // Metadata bytes the last select() read (Quest's page min/max), at fp32.
  virtual double meta_bytes() const { return 0; }

  // Recording (off unless asked, for tests): every cut a policy makes notes its margin per list,
  // and take_margins hands over, for `layer`, those noted since its last call: +inf for a list
  // that no cut decided since (nothing ranked, or the cut was made at an earlier step).
  void record_margins(int layers) { margins_.assign(layers, {}); }
  std::vector<float> take_margins(int layer, size_t lists);

 protected:
  bool recording() const { return !margins_.empty(); }
  // Notes the cut that kept `taken` (ascending indices into `scores`) of list `list` at `layer`
  // and left the rest out: its margin is (least score taken - best score left out) / scale, the
  // scale being the least score taken, or with `signed_scores` (sums of both signs) the largest
  // |score|. Returns at once when not recording.
  void note_cut(int layer, size_t list, const std::vector<float>& scores, const std::vector<int32_t>& taken, bool signed_scores = false);

 private:
  std::vector<std::vector<float>> margins_;  // [layer][list] while recording
};

constexpr double kUnbounded = 1e300;  // a setting's max where it has none (JS sees null)

// One setting: its key as the addon and a config file take it (camelCase; the CLI flag is
// its kebab-case), type, default and range, and the field of PolicyOptions it sets.
struct PolicyParam {
  enum Type { Int, Number, Choice };
  std::string key;
  Type type = Int;
  double def = 0;                        // Choice: the default's index in `choices`
  double min = 0, max = kUnbounded;      // Int and Number, both inclusive
  std::vector<std::string> choices;      // Choice
  std::string arg;                       // the flag's placeholder in help (Choice; numbers say n or f)
  std::string help;
  bool budget_exceeds = false;           // the budget must exceed this setting (tokens it reserves)
  // The sequence's settings are typed fields of PolicyOptions, set and read through these; a
  // policy's (none given) live in PolicyOptions::values. Choice: the chosen index.
  void (*set)(PolicyOptions&, double) = nullptr;
  double (*get)(const PolicyOptions&) = nullptr;
  std::vector<std::pair<std::string, std::string>> gpu_refuses = {};  // Choice: values the GPU does not serve, and why
  std::string gpu_refuses_other = {};  // Int and Number: why the GPU serves only the default (empty: it serves every value)
};

// A policy as the rest of the engine and the CLI see it, declared once beside its
// implementation and registered at load (register_policy).
struct PolicyDescriptor {
  std::string name;
  int listed = 0;         // its place in lists users read (help, errors): the baseline first
  std::string help;
  std::vector<PolicyParam> params;
  std::string prefill;    // what it needs the dense prefill to report
  std::string gpu;        // how the CUDA backend serves it
  std::unique_ptr<Policy> (*make)(const PolicyOptions&, int layers, int kv_heads) = nullptr;
};

// Called from each policy's file at static initialisation; returns true to be kept in a const.
bool register_policy(PolicyDescriptor d);
// The registered policies in listing order.
const std::vector<PolicyDescriptor>& policy_registry();
// The settings every sequence takes whatever its policy (page size, dense layers), and its
// cache's element type (the backend's concern, not a policy's).
const std::vector<PolicyParam>& sequence_params();
const std::vector<PolicyParam>& cache_params();
// Every setting: the sequence's, each policy's in listing order, the cache's (the order run
// identities have always stored them in, so that older runs resume).
std::vector<const PolicyParam*> all_params();
// The named policy's descriptor; throws "unknown policy 'x' (known: ...)".
const PolicyDescriptor& find_policy(const std::string& name);
// Every setting at its declared default.
PolicyOptions policy_defaults();
// Sets `p` from a number (Int, Number) after checking it against the declared range.
void set_param(PolicyOptions& o, const PolicyParam& p, double value);
// Sets a Choice `p` from its name.
void set_choice(PolicyOptions& o, const PolicyParam& p, const std::string& value);

// Why the GPU cannot serve these settings ("--kv-dtype fp32: ..."), or "" when it can.
std::string gpu_refusal(const PolicyOptions& o);

// Throws std::runtime_error when the options make no sense for the named policy.
void validate_policy(const PolicyOptions& opts);
std::unique_ptr<Policy> make_policy(const PolicyOptions& opts, int layers, int kv_heads);

// Helpers the policies share.
// The `k` indices of the largest scores (ties to the lower index), in increasing order.
std::vector<int32_t> top_k_sorted(const std::vector<float>& scores, int64_t k);
// [lo, hi) as a list of positions.
void append_range(std::vector<int32_t>& out, int64_t lo, int64_t hi);
// Tokens KV head `kv_head` serves at one step under `sel`: its own list, or the union of its
// `group` query heads' lists; `all` where a list is empty (everything is read).
int64_t tokens_served(const Selection& sel, int kv_head, int kv_heads, int group, int64_t all);

}  // namespace quest
