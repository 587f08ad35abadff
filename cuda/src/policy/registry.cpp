#include <algorithm>
#include <cctype>
#include <cmath>
#include <numeric>
#include <stdexcept>

#include "policy/policies.h"

namespace quest {

std::vector<int32_t> top_k_sorted(const std::vector<float>& scores, int64_t k) {
  std::vector<int32_t> idx(scores.size());
  std::iota(idx.begin(), idx.end(), 0);
  k = std::min<int64_t>(k, int64_t(idx.size()));
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int32_t a, int32_t b) {
    return scores[a] > scores[b] || (scores[a] == scores[b] && a < b);
  });
  idx.resize(k);
  std::sort(idx.begin(), idx.end());
  return idx;
}

void append_range(std::vector<int32_t>& out, int64_t lo, int64_t hi) {
  for (int64_t t = lo; t < hi; ++t) out.push_back(int32_t(t));
}

int64_t tokens_served(const Selection& sel, int kv_head, int kv_heads, int group, int64_t all) {
  if (int(sel.size()) == kv_heads) return sel[kv_head].empty() ? all : int64_t(sel[kv_head].size());
  std::vector<int32_t> u;
  for (int h = kv_head * group; h < (kv_head + 1) * group; ++h) {
    if (sel[h].empty()) return all;
    u.insert(u.end(), sel[h].begin(), sel[h].end());
  }
  std::sort(u.begin(), u.end());
  return int64_t(std::unique(u.begin(), u.end()) - u.begin());
}

std::vector<float> Policy::take_margins(int layer, size_t lists) {
  std::vector<float> out(lists, INFINITY);
  auto& noted = margins_[layer];
  std::copy_n(noted.begin(), std::min(lists, noted.size()), out.begin());
  noted.clear();
  return out;
}

void Policy::note_cut(int layer, size_t list, const std::vector<float>& scores, const std::vector<int32_t>& taken, bool signed_scores) {
  if (!recording()) return;
  double least = INFINITY, best_left = -INFINITY, largest = 0;
  size_t j = 0;
  for (size_t i = 0; i < scores.size(); ++i) {
    if (j < taken.size() && size_t(taken[j]) == i) {
      least = std::min(least, double(scores[i]));
      ++j;
    } else {
      best_left = std::max(best_left, double(scores[i]));
    }
    largest = std::max(largest, std::fabs(double(scores[i])));
  }
  double margin = INFINITY;  // nothing taken or nothing left out: no choice was made
  if (!taken.empty() && best_left > -INFINITY) {
    const double gap = least - best_left, scale = signed_scores ? largest : std::fabs(least);
    margin = scale > 0 ? gap / scale : (gap > 0 ? INFINITY : 0);
  }
  auto& noted = margins_[layer];
  if (noted.size() <= list) noted.resize(list + 1, INFINITY);
  noted[list] = float(margin);
}

namespace {

std::vector<PolicyDescriptor>& registry() {
  static std::vector<PolicyDescriptor> r;
  return r;
}

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (const auto& x : v) out += (out.empty() ? "" : sep) + x;
  return out;
}

void store(PolicyOptions& o, const PolicyParam& p, double v) {
  if (p.set) p.set(o, v);
  else o.values[p.key] = v;
}

double read(const PolicyOptions& o, const PolicyParam& p) { return p.get ? p.get(o) : o.value(p); }

std::string number(double v) {
  std::string s = std::to_string(v);
  s.erase(s.find_last_not_of('0') + 1);
  if (s.back() == '.') s.pop_back();
  return s;
}

}  // namespace

bool register_policy(PolicyDescriptor d) {
  auto& r = registry();
  r.insert(std::upper_bound(r.begin(), r.end(), d.listed, [](int l, const PolicyDescriptor& e) { return l < e.listed; }), std::move(d));
  return true;
}

const std::vector<PolicyDescriptor>& policy_registry() { return registry(); }

const std::vector<PolicyParam>& sequence_params() {
  static const std::vector<PolicyParam> params = {
      {"pageSize", PolicyParam::Int, 16, 1, kUnbounded, {}, "", "KV cache page size (a power of two)", false,
       [](PolicyOptions& o, double v) { o.page_size = int(v); }, [](const PolicyOptions& o) { return double(o.page_size); }},
      {"denseLayers", PolicyParam::Int, 2, 0, kUnbounded, {}, "", "layers below this always read everything", false,
       [](PolicyOptions& o, double v) { o.dense_layers = int(v); }, [](const PolicyOptions& o) { return double(o.dense_layers); }},
  };
  return params;
}

const std::vector<PolicyParam>& cache_params() {
  static const std::vector<PolicyParam> params = {
      {"kvDtype", PolicyParam::Choice, 0, 0, 0, {"auto", "fp32", "fp16", "bf16"}, "type",  // in KvDtype's order
       "KV cache element type: auto (fp32 on the CPU, fp16 on the GPU), fp32, fp16 or bf16 (the CPU rounds what it stores)", false,
       [](PolicyOptions& o, double v) { o.kv_dtype = KvDtype(int(v)); }, [](const PolicyOptions& o) { return double(int(o.kv_dtype)); },
       {{"fp32", "the GPU caches 16-bit keys and values"}}},
  };
  return params;
}

const PolicyDescriptor& find_policy(const std::string& name) {
  std::vector<std::string> known;
  for (const auto& d : registry()) {
    if (d.name == name) return d;
    known.push_back(d.name);
  }
  throw std::runtime_error("unknown policy '" + name + "' (known: " + join(known, ", ") + ")");
}

std::vector<const PolicyParam*> all_params() {
  std::vector<const PolicyParam*> out;
  for (const auto& p : sequence_params()) out.push_back(&p);
  for (const auto& d : registry())
    for (const auto& p : d.params) out.push_back(&p);
  for (const auto& p : cache_params()) out.push_back(&p);
  return out;
}

double PolicyOptions::value(const PolicyParam& p) const {
  const auto it = values.find(p.key);
  if (it == values.end()) throw std::logic_error("setting '" + p.key + "' was never set (options not made by policy_defaults)");
  return it->second;
}

PolicyOptions policy_defaults() {
  PolicyOptions o;
  for (const auto* p : all_params()) store(o, *p, p->def);
  return o;
}

void set_param(PolicyOptions& o, const PolicyParam& p, double v) {
  if (p.type == PolicyParam::Choice) throw std::runtime_error("'" + p.key + "' must be one of " + join(p.choices, ", "));
  if (!(v >= p.min && v <= p.max) || (p.type == PolicyParam::Int && v != std::floor(v)))
    throw std::runtime_error("'" + p.key + "' must be " + (p.type == PolicyParam::Int ? "an integer" : "a number") + " in [" + number(p.min) +
                             ", " + (p.max < kUnbounded ? number(p.max) : "inf") + "], not " + number(v));
  store(o, p, v);
}

void set_choice(PolicyOptions& o, const PolicyParam& p, const std::string& v) {
  const auto it = std::find(p.choices.begin(), p.choices.end(), v);
  if (p.type != PolicyParam::Choice || it == p.choices.end())
    throw std::runtime_error(p.key + ": unknown value '" + v + "' (" + join(p.choices, ", ") + ")");
  store(o, p, double(it - p.choices.begin()));
}

std::string gpu_refusal(const PolicyOptions& o) {
  for (const auto* p : all_params()) {
    std::string flag = "--";
    for (char c : p->key) flag += std::isupper(static_cast<unsigned char>(c)) ? std::string("-") + char(std::tolower(c)) : std::string(1, c);
    for (const auto& [value, why] : p->gpu_refuses)
      if (p->choices[size_t(read(o, *p))] == value) return flag + " " + value + ": " + why;
    if (!p->gpu_refuses_other.empty() && read(o, *p) != p->def) return flag + " " + number(read(o, *p)) + ": " + p->gpu_refuses_other;
  }
  return "";
}

void validate_policy(const PolicyOptions& o) {
  const PolicyDescriptor& d = find_policy(o.name);
  if (o.page_size <= 0 || (o.page_size & (o.page_size - 1)) != 0) throw std::runtime_error("page size must be a power of two");
  if (o.dense_layers < 0) throw std::runtime_error("dense layers must be >= 0");
  if (o.name == "dense") return;
  if (o.budget <= 0) throw std::runtime_error("budget must be a positive integer");
  if (o.budget < o.page_size) throw std::runtime_error("budget " + std::to_string(o.budget) + " is smaller than a page (" + std::to_string(o.page_size) + ")");
  for (const auto& p : d.params)
    if (p.budget_exceeds && double(o.budget) <= read(o, p))
      throw std::runtime_error(o.name + " needs a budget above its " + p.key + " (" + number(read(o, p)) + ")");
}

std::unique_ptr<Policy> make_policy(const PolicyOptions& o, int layers, int kv_heads) {
  validate_policy(o);
  return find_policy(o.name).make(o, layers, kv_heads);
}

}  // namespace quest
