// node-addon-api glue: the only code that knows Node. Every heavy call runs on a worker
// thread (Napi::AsyncWorker) and settles a Promise; a C++ exception becomes its rejection.
#include <napi.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "bench/attention_bench.h"
#include "bench/linear_bench.h"
#include "cpu/cpu_sequence.h"
#include "engine/devices.h"
#include "engine/model.h"
#include "engine/thread_pool.h"
#include "gpu/gpu_engine.h"
#include "kernels/gpu_shapes.h"
#include "policy/one_layer.h"

namespace quest {
namespace {

// Runs `work` off the main thread and settles a Promise: `done` turns its result into a JS value.
class PromiseWorker : public Napi::AsyncWorker {
 public:
  PromiseWorker(Napi::Env env, std::function<void()> work, std::function<Napi::Value(Napi::Env)> done,
       std::function<void()> after = {})
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), work_(std::move(work)),
        done_(std::move(done)), after_(std::move(after)) {}
  Napi::Promise promise() { return deferred_.Promise(); }
  void Execute() override {
    try {
      work_();
    } catch (const std::exception& e) {
      SetError(e.what());
    } catch (...) {
      SetError("unknown native error");
    }
  }
  void OnOK() override {
    if (after_) after_();
    deferred_.Resolve(done_(Env()));
  }
  void OnError(const Napi::Error& e) override {
    if (after_) after_();
    deferred_.Reject(e.Value());
  }
  // Keeps a JS object (the sequence or model wrapper) alive while the work runs.
  void hold(Napi::Object o) { held_ = Napi::Persistent(o); }
  // Queues the work; the Promise settles when it is done (the task deletes itself).
  Napi::Value start() {
    Napi::Promise p = promise();
    Queue();
    return p;
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::function<void()> work_;
  std::function<Napi::Value(Napi::Env)> done_;
  std::function<void()> after_;
  Napi::ObjectReference held_;
};

DType parse_dtype(const std::string& s) {
  if (s == "F32") return DType::F32;
  if (s == "F16") return DType::F16;
  if (s == "BF16") return DType::BF16;
  if (s == "I32") return DType::I32;
  throw std::runtime_error("unknown dtype " + s);
}

int get_int(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) throw std::runtime_error(std::string("model spec: '") + key + "' must be a number");
  return v.As<Napi::Number>().Int32Value();
}

double get_num(const Napi::Object& o, const char* key, double fallback) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : fallback;
}

bool get_bool(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  return v.IsBoolean() && v.As<Napi::Boolean>().Value();
}

std::vector<double> get_nums(const Napi::Object& o, const char* key) {
  std::vector<double> out;
  Napi::Value v = o.Get(key);
  if (!v.IsArray()) return out;
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); ++i) out.push_back(a.Get(i).ToNumber().DoubleValue());
  return out;
}

RopeSpec parse_rope(const Napi::Object& rope) {
  RopeSpec r;
  r.theta = get_num(rope, "theta", 10000.0);
  r.type = rope.Get("type").ToString();
  r.factor = get_num(rope, "factor", 1.0);
  r.low_freq_factor = get_num(rope, "lowFreqFactor", 1.0);
  r.high_freq_factor = get_num(rope, "highFreqFactor", 4.0);
  r.original_max_position = get_num(rope, "originalMaxPositions", 8192.0);
  r.attention_factor = get_num(rope, "attentionFactor", 1.0);
  r.beta_fast = get_num(rope, "betaFast", 32.0);
  r.beta_slow = get_num(rope, "betaSlow", 1.0);
  r.truncate = !rope.Get("truncate").IsBoolean() || rope.Get("truncate").As<Napi::Boolean>().Value();
  r.short_factor = get_nums(rope, "shortFactor");
  r.long_factor = get_nums(rope, "longFactor");
  return r;
}

ModelSpec parse_spec(const Napi::Object& o) {
  ModelSpec s;
  s.arch = o.Get("arch").ToString();
  s.vocab = get_int(o, "vocabSize");
  s.hidden = get_int(o, "hiddenSize");
  s.layers = get_int(o, "numLayers");
  s.heads = get_int(o, "numHeads");
  s.kv_heads = get_int(o, "numKvHeads");
  s.head_dim = get_int(o, "headDim");
  s.intermediate = get_int(o, "intermediateSize");
  s.rms_eps = get_num(o, "rmsNormEps", 1e-5);
  s.max_positions = get_int(o, "maxPositions");
  s.tie_embeddings = get_bool(o, "tieEmbeddings");
  s.attention_bias = get_bool(o, "attentionBias");
  s.o_bias = get_bool(o, "outputBias");
  s.mlp_bias = get_bool(o, "mlpBias");
  s.random_weights = get_bool(o, "randomWeights");
  s.random_seed = uint64_t(get_num(o, "randomSeed", 0));
  s.rope = parse_rope(o.Get("rope").As<Napi::Object>());
  s.has_local_rope = o.Get("ropeLocal").IsObject();
  if (s.has_local_rope) s.rope_local = parse_rope(o.Get("ropeLocal").As<Napi::Object>());
  s.query_pre_attn_scalar = get_num(o, "queryPreAttnScalar", 0);
  s.attn_softcap = get_num(o, "attnSoftcap", 0);
  s.final_softcap = get_num(o, "finalSoftcap", 0);
  s.sliding_window = o.Get("slidingWindow").IsNumber() ? get_int(o, "slidingWindow") : 0;
  Napi::Value layers = o.Get("slidingLayers");
  if (layers.IsArray())
    for (uint32_t i = 0; i < layers.As<Napi::Array>().Length(); ++i)
      s.sliding_layers.push_back(layers.As<Napi::Array>().Get(i).ToBoolean().Value());
  if (o.Get("quant").IsObject()) {
    Napi::Object q = o.Get("quant").As<Napi::Object>();
    s.quant.method = q.Get("method").ToString();
    if (get_int(q, "bits") != 4) throw std::runtime_error("model spec: only 4-bit quantization is served");
    s.quant.group_size = get_int(q, "groupSize");
    s.quant.zero_offset = get_int(q, "zeroOffset");
  }
  Napi::Value tv = o.Get("tensors");
  if (tv.IsArray()) {
    Napi::Array arr = tv.As<Napi::Array>();
    for (uint32_t i = 0; i < arr.Length(); ++i) {
      Napi::Object t = arr.Get(i).As<Napi::Object>();
      TensorRef ref;
      ref.file = t.Get("file").ToString();
      ref.offset = uint64_t(get_num(t, "offset", 0));
      ref.nbytes = uint64_t(get_num(t, "nbytes", 0));
      ref.dtype = parse_dtype(t.Get("dtype").ToString());
      Napi::Array shape = t.Get("shape").As<Napi::Array>();
      for (uint32_t j = 0; j < shape.Length(); ++j) ref.shape.push_back(shape.Get(j).As<Napi::Number>().Int64Value());
      s.tensors[t.Get("name").ToString()] = ref;
    }
  }
  return s;
}

// A sequence's settings from `o`, each checked against its declaration (policy/policy.h);
// a key that no setting declares (nor `extra`, the call's own keys) is refused.
PolicyOptions parse_policy(const Napi::Object& o, const std::vector<std::string>& extra = {}) {
  const std::vector<const PolicyParam*> params = all_params();
  std::vector<std::string> known = {"policy", "budget", "recordSelections", "diagnostics"};
  for (const auto* p : params) known.push_back(p->key);
  known.insert(known.end(), extra.begin(), extra.end());
  Napi::Array keys = o.GetPropertyNames();
  for (uint32_t i = 0; i < keys.Length(); ++i) {
    const std::string k = keys.Get(i).ToString();
    if (std::find(known.begin(), known.end(), k) != known.end()) continue;
    std::string list;
    for (const auto& x : known) list += (list.empty() ? "" : ", ") + x;
    throw std::runtime_error("unknown sequence option '" + k + "' (known: " + list + ")");
  }
  PolicyOptions opts = policy_defaults();
  if (o.Has("policy")) opts.name = o.Get("policy").ToString();
  opts.budget = int64_t(get_num(o, "budget", 0));
  opts.record_selections = get_bool(o, "recordSelections");
  opts.diagnostics = get_bool(o, "diagnostics");
  for (const auto* p : params) {
    const Napi::Value v = o.Get(p->key);
    if (v.IsUndefined()) continue;
    if (p->type == PolicyParam::Choice) set_choice(opts, *p, v.ToString());
    else if (v.IsNumber()) set_param(opts, *p, v.As<Napi::Number>().DoubleValue());
    else throw std::runtime_error("'" + p->key + "' must be a number");
  }
  return opts;
}

Napi::Object param_to_js(Napi::Env env, const PolicyParam& p) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("key", p.key);
  o.Set("type", p.type == PolicyParam::Int ? "int" : p.type == PolicyParam::Number ? "number" : "choice");
  if (p.type == PolicyParam::Choice) {
    Napi::Array c = Napi::Array::New(env, p.choices.size());
    for (size_t i = 0; i < p.choices.size(); ++i) c.Set(uint32_t(i), p.choices[i]);
    o.Set("choices", c);
    o.Set("default", p.choices[size_t(p.def)]);
    o.Set("arg", p.arg);
    Napi::Object refuses = Napi::Object::New(env);
    for (const auto& [value, why] : p.gpu_refuses) refuses.Set(value, why);
    o.Set("gpuRefuses", refuses);
  } else {
    o.Set("default", p.def);
    o.Set("min", p.min);
    o.Set("max", p.max < kUnbounded ? Napi::Value(Napi::Number::New(env, p.max)) : env.Null());
    if (!p.gpu_refuses_other.empty()) o.Set("gpuRefusesOther", p.gpu_refuses_other);
  }
  o.Set("help", p.help);
  o.Set("budgetExceeds", p.budget_exceeds);
  return o;
}

// The policies as registered, and every setting in all_params() order with the policy it
// belongs to (null: the sequence's): what the CLI builds its flags, schema and checks from.
Napi::Value DescribePolicies(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<std::pair<const PolicyParam*, std::string>> owned;
  for (const auto* p : all_params()) {
    std::string owner;
    for (const auto& d : policy_registry())
      for (const auto& q : d.params)
        if (&q == p) owner = d.name;
    owned.emplace_back(p, owner);
  }
  Napi::Array settings = Napi::Array::New(env, owned.size());
  for (size_t i = 0; i < owned.size(); ++i) {
    Napi::Object o = param_to_js(env, *owned[i].first);
    o.Set("policy", owned[i].second.empty() ? env.Null() : Napi::Value(Napi::String::New(env, owned[i].second)));
    settings.Set(uint32_t(i), o);
  }
  Napi::Array policies = Napi::Array::New(env, policy_registry().size());
  for (size_t i = 0; i < policy_registry().size(); ++i) {
    const PolicyDescriptor& d = policy_registry()[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", d.name);
    o.Set("help", d.help);
    o.Set("prefill", d.prefill);
    o.Set("gpu", d.gpu);
    policies.Set(uint32_t(i), o);
  }
  Napi::Object r = Napi::Object::New(env);
  r.Set("policies", policies);
  r.Set("settings", settings);
  return r;
}

std::vector<float> floats_field(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw std::runtime_error(std::string("'") + key + "' must be a Float32Array");
  auto a = v.As<Napi::Float32Array>();
  return std::vector<float>(a.Data(), a.Data() + a.ElementLength());
}

// The typed array of each element type the engine hands to JavaScript.
template <typename T>
struct JsTyped;
template <>
struct JsTyped<float> { using type = Napi::Float32Array; };
template <>
struct JsTyped<double> { using type = Napi::Float64Array; };
template <>
struct JsTyped<int32_t> { using type = Napi::Int32Array; };

template <typename T>
typename JsTyped<T>::type to_js(Napi::Env env, const std::vector<T>& v) {
  auto a = JsTyped<T>::type::New(env, v.size());
  std::copy(v.begin(), v.end(), a.Data());
  return a;
}

// One typed array a list.
template <typename T>
Napi::Array lists_to_js(Napi::Env env, const std::vector<std::vector<T>>& v) {
  Napi::Array a = Napi::Array::New(env, v.size());
  for (size_t i = 0; i < v.size(); ++i) a.Set(uint32_t(i), to_js(env, v[i]));
  return a;
}

std::vector<int32_t> tokens_arg(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || !info[i].IsTypedArray() ||
      info[i].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    throw Napi::TypeError::New(info.Env(), "tokens must be an Int32Array");
  auto a = info[i].As<Napi::Int32Array>();
  return std::vector<int32_t>(a.Data(), a.Data() + a.ElementLength());
}

class SequenceWrap : public Napi::ObjectWrap<SequenceWrap> {
 public:
  static Napi::FunctionReference ctor;
  static void Init(Napi::Env env) {
    Napi::Function f = DefineClass(env, "Sequence",
                                   {InstanceMethod("prefill", &SequenceWrap::Prefill),
                                    InstanceMethod("feed", &SequenceWrap::Feed),
                                    InstanceMethod("generate", &SequenceWrap::Generate),
                                    InstanceMethod("nll", &SequenceWrap::Nll),
                                    InstanceMethod("stats", &SequenceWrap::Stats),
                                    InstanceMethod("selections", &SequenceWrap::Selections),
                                    InstanceMethod("diagnostics", &SequenceWrap::Diagnostics),
                                    InstanceMethod("cacheStats", &SequenceWrap::CacheStatsJs),
                                    InstanceMethod("close", &SequenceWrap::Close),
                                    InstanceAccessor("length", &SequenceWrap::Length, nullptr)});
    ctor = Napi::Persistent(f);
  }
  explicit SequenceWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SequenceWrap>(info) {}
  std::shared_ptr<Decoder> seq;

  // The sequences of a batch call (each live, none named twice, none busy), marked busy
  // together; `release` clears them once the call settles.
  static std::vector<std::shared_ptr<Decoder>> claim(Napi::Env env, const Napi::Value& arg, std::function<void()>& release) {
    if (!arg.IsArray() || arg.As<Napi::Array>().Length() == 0) throw Napi::TypeError::New(env, "seqs must be a non-empty array of sequences");
    Napi::Array a = arg.As<Napi::Array>();
    std::vector<SequenceWrap*> wraps;
    for (uint32_t i = 0; i < a.Length(); ++i) {
      Napi::Value v = a.Get(i);
      if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(ctor.Value())) throw Napi::TypeError::New(env, "seqs must hold sequences only");
      SequenceWrap* w = Unwrap(v.As<Napi::Object>());
      if (!w->seq) throw Napi::Error::New(env, "sequence is closed");
      if (std::find(wraps.begin(), wraps.end(), w) != wraps.end()) throw Napi::Error::New(env, "a sequence is named twice in one batch");
      if (w->busy_->load()) throw Napi::Error::New(env, "sequence is busy with another call");
      wraps.push_back(w);
    }
    std::vector<std::shared_ptr<std::atomic<bool>>> flags;
    std::vector<std::shared_ptr<Decoder>> seqs;
    for (SequenceWrap* w : wraps) {
      w->busy_->store(true);
      flags.push_back(w->busy_);
      seqs.push_back(w->seq);
    }
    release = [flags] {
      for (auto& f : flags) f->store(false);
    };
    return seqs;
  }

 private:
  // One call at a time: the engine's sequence is not re-entrant.
  Napi::Value run(const Napi::CallbackInfo& info, std::function<void()> work,
                  std::function<Napi::Value(Napi::Env)> done) {
    live(info);
    if (busy_->exchange(true)) throw Napi::Error::New(info.Env(), "sequence is busy with another call");
    auto busy = busy_;
    auto* task = new PromiseWorker(info.Env(), std::move(work), std::move(done), [busy] { busy->store(false); });
    task->hold(info.This().As<Napi::Object>());
    return task->start();
  }
  Napi::Value Prefill(const Napi::CallbackInfo& info) {
    auto tokens = std::make_shared<std::vector<int32_t>>(tokens_arg(info, 0));
    bool all = info.Length() > 1 && info[1].ToBoolean();
    auto out = std::make_shared<std::vector<float>>();
    auto s = seq;
    return run(info, [=] { *out = s->prefill(tokens->data(), int64_t(tokens->size()), all); },
               [out](Napi::Env env) { return to_js(env, *out); });
  }
  Napi::Value Feed(const Napi::CallbackInfo& info) {
    auto tokens = std::make_shared<std::vector<int32_t>>(tokens_arg(info, 0));
    auto out = std::make_shared<std::vector<float>>();
    auto s = seq;
    return run(info, [=] { *out = s->feed(tokens->data(), int64_t(tokens->size())); },
               [out](Napi::Env env) { return to_js(env, *out); });
  }
  Napi::Value Nll(const Napi::CallbackInfo& info) {
    auto tokens = std::make_shared<std::vector<int32_t>>(tokens_arg(info, 0));
    auto out = std::make_shared<std::vector<double>>();
    auto s = seq;
    return run(info, [=] { *out = s->nll(tokens->data(), int64_t(tokens->size())); },
               [out](Napi::Env env) { return to_js(env, *out); });
  }
  Napi::Value Generate(const Napi::CallbackInfo& info) {
    int max_new = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 0;
    if (max_new <= 0) throw Napi::RangeError::New(info.Env(), "maxNewTokens must be a positive integer");
    auto stop = std::make_shared<std::vector<int32_t>>(tokens_arg(info, 1));
    auto out = std::make_shared<std::vector<int32_t>>();
    auto s = seq;
    return run(info, [=] { *out = s->generate(max_new, *stop); },
               [out](Napi::Env env) { return to_js(env, *out); });
  }
  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (busy_->load()) throw Napi::Error::New(info.Env(), "sequence is busy with another call");
    seq.reset();
    return info.Env().Undefined();
  }
  Napi::Value Stats(const Napi::CallbackInfo& info) {
    const SequenceStats& st = live(info).stats();
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("prefillTokens", double(st.prefill_tokens));
    o.Set("decodeSteps", double(st.decode_steps));
    o.Set("prefillMs", st.prefill_ms);
    o.Set("decodeMs", st.decode_ms);
    o.Set("selectMs", st.select_ms);
    o.Set("tokensRead", st.tokens_read);
    o.Set("policySamples", double(st.policy_samples));
    o.Set("kvBytesRead", st.kv_bytes_read);
    o.Set("metaBytesRead", st.meta_bytes_read);
    o.Set("issueMs", st.issue_ms);
    return o;
  }
  Napi::Value Selections(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const Decoder& seq = live(info);
    if (busy_->load()) throw Napi::Error::New(env, "sequence is busy with another call");
    const std::vector<StepSelection>* steps = nullptr;
    try {
      steps = &seq.selections();
    } catch (const std::runtime_error& e) {
      throw Napi::Error::New(env, e.what());
    }
    Napi::Array out = Napi::Array::New(env, steps->size());
    for (size_t i = 0; i < steps->size(); ++i) {
      const StepSelection& st = (*steps)[i];
      Napi::Array lists = Napi::Array::New(env, st.lists.size()), margins = Napi::Array::New(env, st.margins.size());
      for (size_t l = 0; l < st.lists.size(); ++l) {
        lists.Set(uint32_t(l), lists_to_js(env, st.lists[l]));
        margins.Set(uint32_t(l), to_js(env, st.margins[l]));
      }
      Napi::Object o = Napi::Object::New(env);
      o.Set("lists", lists);
      o.Set("margins", margins);
      out.Set(uint32_t(i), o);
    }
    return out;
  }
  Napi::Value Diagnostics(const Napi::CallbackInfo& info) {
    const SequenceStats& st = live(info).stats();
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("l2", to_js(info.Env(), st.diag_l2));
    o.Set("recall", to_js(info.Env(), st.diag_recall));
    o.Set("ms", st.diag_ms);
    return o;
  }
  Napi::Value CacheStatsJs(const Napi::CallbackInfo& info) {
    const CacheStats cs = live(info).cache_stats();
    if (!cs.known) return info.Env().Null();
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("pages", double(cs.pages));
    o.Set("ownPages", double(cs.own_pages));
    o.Set("familyPages", double(cs.family_pages));
    o.Set("pageBytes", double(cs.page_bytes));
    o.Set("boundBytes", double(cs.bound_bytes));
    return o;
  }
  Napi::Value Length(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), double(live(info).length())); }
  Decoder& live(const Napi::CallbackInfo& info) {
    if (!seq) throw Napi::Error::New(info.Env(), "sequence is closed");
    return *seq;
  }

  std::shared_ptr<std::atomic<bool>> busy_ = std::make_shared<std::atomic<bool>>(false);
};
Napi::FunctionReference SequenceWrap::ctor;

class ModelWrap : public Napi::ObjectWrap<ModelWrap> {
 public:
  static Napi::FunctionReference ctor;
  static void Init(Napi::Env env) {
    Napi::Function f = DefineClass(env, "Model",
                                   {InstanceMethod("createSequence", &ModelWrap::CreateSequence),
                                    InstanceMethod("prefillShared", &ModelWrap::PrefillShared),
                                    InstanceMethod("feedBatch", &ModelWrap::FeedBatch),
                                    InstanceMethod("nllBatch", &ModelWrap::NllBatch),
                                    InstanceMethod("generateBatch", &ModelWrap::GenerateBatch),
                                    InstanceAccessor("weightBytes", &ModelWrap::WeightBytes, nullptr),
                                    InstanceAccessor("backend", &ModelWrap::BackendName, nullptr)});
    ctor = Napi::Persistent(f);
  }
  explicit ModelWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModelWrap>(info) {}
  std::shared_ptr<const Model> model;  // the CPU backend's; null when the model runs on the GPU
  std::shared_ptr<GpuModel> gpu;

 private:
  Napi::Value CreateSequence(const Napi::CallbackInfo& info) {
    Napi::Object obj = SequenceWrap::ctor.New({});
    try {
      const PolicyOptions opts = info.Length() > 0 && info[0].IsObject() ? parse_policy(info[0].As<Napi::Object>()) : policy_defaults();
      SequenceWrap::Unwrap(obj)->seq = make_sequence(opts);
    } catch (const std::exception& e) {
      throw Napi::Error::New(info.Env(), e.what());
    }
    return obj;
  }
  // Runs `work` over the claimed sequences of a batch call, holding their JS objects.
  static Napi::Value run_batch(const Napi::CallbackInfo& info, std::function<void(const std::vector<Decoder*>&)> work,
                               std::function<Napi::Value(Napi::Env)> done) {
    std::function<void()> release;
    auto seqs = SequenceWrap::claim(info.Env(), info[0], release);
    auto* task = new PromiseWorker(
        info.Env(),
        [seqs, work] {
          std::vector<Decoder*> raw;
          for (auto& s : seqs) raw.push_back(s.get());
          work(raw);
        },
        std::move(done), release);
    task->hold(info[0].As<Napi::Object>());
    return task->start();
  }
  std::shared_ptr<Decoder> make_sequence(const PolicyOptions& opts) const {
    if (gpu && opts.diagnostics) throw std::runtime_error("diagnostics: the attention diagnostics are computed on the CPU backend only");
    return gpu ? std::shared_ptr<Decoder>(make_gpu_sequence(gpu, opts)) : std::make_shared<CpuSequence>(model, opts, cpu_backend());
  }
  // Fresh sequences, one for each options object, all started from one dense prefill.
  Napi::Value PrefillShared(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto tokens = std::make_shared<std::vector<int32_t>>(tokens_arg(info, 0));
    if (info.Length() < 2 || !info[1].IsArray() || info[1].As<Napi::Array>().Length() == 0)
      throw Napi::TypeError::New(env, "prefillShared(tokens, cells) needs a non-empty array of sequence options");
    Napi::Array cells = info[1].As<Napi::Array>();
    Napi::Array objs = Napi::Array::New(env, cells.Length());
    auto seqs = std::make_shared<std::vector<std::shared_ptr<Decoder>>>();
    try {
      for (uint32_t i = 0; i < cells.Length(); ++i) {
        if (!cells.Get(i).IsObject()) throw std::runtime_error("prefillShared: every cell must be a sequence options object");
        seqs->push_back(make_sequence(parse_policy(cells.Get(i).As<Napi::Object>())));
      }
    } catch (const std::exception& e) {
      throw Napi::Error::New(env, e.what());
    }
    for (uint32_t i = 0; i < cells.Length(); ++i) {
      Napi::Object obj = SequenceWrap::ctor.New({});
      SequenceWrap::Unwrap(obj)->seq = (*seqs)[i];
      objs.Set(i, obj);
    }
    std::function<void()> release;
    SequenceWrap::claim(env, objs, release);
    auto objs_ref = std::make_shared<Napi::ObjectReference>(Napi::Persistent(objs.As<Napi::Object>()));
    auto* task = new PromiseWorker(
        env,
        [seqs, tokens, on_gpu = bool(gpu)] {
          if (on_gpu) {
            std::vector<Decoder*> raw;
            for (auto& s : *seqs) raw.push_back(s.get());
            gpu_prefill_shared(raw, tokens->data(), int64_t(tokens->size()));
            return;
          }
          std::vector<CpuSequence*> raw;
          for (auto& s : *seqs) raw.push_back(static_cast<CpuSequence*>(s.get()));
          CpuSequence::prefill_shared(raw, tokens->data(), int64_t(tokens->size()));
        },
        [objs_ref](Napi::Env) { return objs_ref->Value(); }, release);
    return task->start();
  }
  Napi::Value FeedBatch(const Napi::CallbackInfo& info) {
    auto tokens = std::make_shared<std::vector<int32_t>>(tokens_arg(info, 1));
    return run_batch(info, [tokens](const std::vector<Decoder*>& s) { Decoder::feed_batch(s, tokens->data(), int64_t(tokens->size())); },
                     [](Napi::Env env) { return env.Undefined(); });
  }
  Napi::Value NllBatch(const Napi::CallbackInfo& info) {
    auto tokens = std::make_shared<std::vector<int32_t>>(tokens_arg(info, 1));
    auto out = std::make_shared<std::vector<std::vector<double>>>();
    return run_batch(info, [tokens, out](const std::vector<Decoder*>& s) { *out = Decoder::nll_batch(s, tokens->data(), int64_t(tokens->size())); },
                     [out](Napi::Env env) { return lists_to_js(env, *out); });
  }
  Napi::Value GenerateBatch(const Napi::CallbackInfo& info) {
    int max_new = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : 0;
    if (max_new <= 0) throw Napi::RangeError::New(info.Env(), "maxNewTokens must be a positive integer");
    auto stop = std::make_shared<std::vector<int32_t>>(tokens_arg(info, 2));
    auto out = std::make_shared<std::vector<std::vector<int32_t>>>();
    return run_batch(info, [=](const std::vector<Decoder*>& s) { *out = Decoder::generate_batch(s, max_new, *stop); },
                     [out](Napi::Env env) { return lists_to_js(env, *out); });
  }
  Napi::Value WeightBytes(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), double(gpu ? gpu_weight_bytes(*gpu) : model->weight_bytes()));
  }
  Napi::Value BackendName(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), gpu ? "cuda" : "cpu"); }
};
Napi::FunctionReference ModelWrap::ctor;

// Per backend, why it does not serve the spec ('' when it does): `quest models check`.
Napi::Value ServedBy(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(info.Env(), "servedBy(spec) needs a spec object");
  try {
    const ModelSpec spec = parse_spec(info[0].As<Napi::Object>());
    Napi::Object out = Napi::Object::New(info.Env());
    for (const char* b : {"cpu", "cuda"}) out.Set(b, unserved(spec, b));
    return out;
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), e.what());
  }
}

Napi::Value LoadModel(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(info.Env(), "loadModel(spec) needs a spec object");
  std::shared_ptr<ModelSpec> spec;
  bool on_gpu = false;
  try {
    spec = std::make_shared<ModelSpec>(parse_spec(info[0].As<Napi::Object>()));
    if (info.Length() > 1 && info[1].IsObject()) {
      const std::string backend = info[1].As<Napi::Object>().Get("backend").ToString();
      if (backend != "cpu" && backend != "cuda") throw std::runtime_error("backend must be 'cpu' or 'cuda', not '" + backend + "'");
      on_gpu = backend == "cuda";
    }
    // Refused before any weight is read.
    if (std::string why = unserved(*spec, on_gpu ? "cuda" : "cpu"); !why.empty())
      throw std::runtime_error(std::string("the ") + (on_gpu ? "CUDA" : "CPU") + " backend does not serve this model: " + why);
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), e.what());
  }
  auto model = std::make_shared<std::shared_ptr<const Model>>();
  auto gpu = std::make_shared<std::shared_ptr<GpuModel>>();
  auto* task = new PromiseWorker(
      info.Env(),
      [=] {
        *model = std::make_shared<const Model>(*spec, !on_gpu);  // the GPU's 4-bit layers stay packed
        if (on_gpu) {
          *gpu = upload_model(**model, 0);
          model->reset();  // the fp32 host weights are not needed once the GPU holds its own
        }
      },
      [model, gpu](Napi::Env) {
        Napi::Object obj = ModelWrap::ctor.New({});
        ModelWrap* w = ModelWrap::Unwrap(obj);
        w->model = *model;
        w->gpu = *gpu;
        return obj;
      });
  return task->start();
}

Napi::Value RunOneLayer(const Napi::CallbackInfo& info) {
  auto in = std::make_shared<OneLayerInput>();
  try {
    if (info.Length() < 1 || !info[0].IsObject()) throw std::runtime_error("runOneLayer(input) needs an object");
    Napi::Object o = info[0].As<Napi::Object>();
    in->opts = parse_policy(o, {"heads", "kvHeads", "headDim", "promptLength", "steps", "keys", "values", "queries"});
    in->heads = get_int(o, "heads");
    in->kv_heads = get_int(o, "kvHeads");
    in->head_dim = get_int(o, "headDim");
    in->prompt_len = get_int(o, "promptLength");
    in->steps = get_int(o, "steps");
    in->keys = floats_field(o, "keys");
    in->values = floats_field(o, "values");
    in->queries = floats_field(o, "queries");
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), e.what());
  }
  auto out = std::make_shared<OneLayerRun>();
  auto* task = new PromiseWorker(
      info.Env(), [=] { *out = run_one_layer(*in); },
      [out, diagnostics = in->opts.diagnostics](Napi::Env env) {
        Napi::Object r = Napi::Object::New(env);
        Napi::Object pre = Napi::Object::New(env);
        pre.Set("sums", lists_to_js(env, out->prefill.sums));
        pre.Set("last", lists_to_js(env, out->prefill.last));
        pre.Set("window", lists_to_js(env, out->prefill.window));
        r.Set("prefill", pre);
        Napi::Array steps = Napi::Array::New(env, out->steps.size());
        for (size_t i = 0; i < out->steps.size(); ++i) {
          const OneLayerStep& st = out->steps[i];
          Napi::Object so = Napi::Object::New(env);
          so.Set("selection", lists_to_js(env, st.sel));
          so.Set("probs", lists_to_js(env, st.probs));
          so.Set("metaBytes", st.meta_bytes);
          so.Set("margins", to_js(env, st.margins));
          if (diagnostics) {
            so.Set("l2", to_js(env, st.l2));
            so.Set("recall", to_js(env, st.recall));
          }
          steps.Set(uint32_t(i), so);
        }
        r.Set("steps", steps);
        r.Set("pageMin", to_js(env, out->page_min));
        r.Set("pageMax", to_js(env, out->page_max));
        return r;
      });
  return task->start();
}

AttentionShape parse_shape(const Napi::Object& o) {
  AttentionShape s;
  s.heads = int(get_num(o, "heads", 32));
  s.kv_heads = int(get_num(o, "kvHeads", s.heads));
  s.head_dim = int(get_num(o, "headDim", 128));
  s.page_size = int(get_num(o, "pageSize", 16));
  return s;
}

std::vector<int> int_list(const Napi::Object& o, const char* key) {
  std::vector<int> out;
  Napi::Value v = o.Get(key);
  if (!v.IsArray()) throw std::runtime_error(std::string("'") + key + "' must be a list of integers");
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); ++i) out.push_back(a.Get(i).As<Napi::Number>().Int32Value());
  return out;
}

// A benchmark run in the background, its result {device, copyGBps, rows} with each row as
// `row` makes it.
template <typename Result, typename Row>
Napi::Value bench_promise(Napi::Env env, std::function<Result()> run, Row row) {
  auto res = std::make_shared<Result>();
  auto* task = new PromiseWorker(
      env, [=] { *res = run(); },
      [res, row](Napi::Env env) {
        Napi::Object r = Napi::Object::New(env);
        r.Set("device", res->device);
        r.Set("copyGBps", res->copy_gbps);
        Napi::Array rows = Napi::Array::New(env, res->rows.size());
        for (size_t i = 0; i < res->rows.size(); ++i) rows.Set(uint32_t(i), row(env, res->rows[i]));
        r.Set("rows", rows);
        return r;
      });
  return task->start();
}

Napi::Value BenchAttention(const Napi::CallbackInfo& info) {
  auto opts = std::make_shared<AttentionBenchOptions>();
  try {
    if (info.Length() < 1 || !info[0].IsObject()) throw std::runtime_error("benchAttention(options) needs an object");
    Napi::Object o = info[0].As<Napi::Object>();
    opts->shape = parse_shape(o);
    opts->lengths = int_list(o, "lengths");
    opts->budgets = int_list(o, "budgets");
    opts->repeats = int(get_num(o, "repeats", 50));
    opts->seed = uint64_t(get_num(o, "seed", 0));
    opts->prefill = get_bool(o, "prefill");
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), e.what());
  }
  return bench_promise<AttentionBenchResult>(info.Env(), [opts] { return bench_attention(*opts); }, [](Napi::Env env, const AttentionBenchRow& x) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("length", x.length);
    o.Set("policy", x.policy);
    o.Set("budget", x.budget);
    o.Set("estimateUs", x.estimate_us);
    o.Set("topkUs", x.topk_us);
    o.Set("attentionUs", x.attention_us);
    o.Set("totalUs", x.total_us);
    o.Set("tokensRead", x.tokens_read);
    o.Set("kvBytes", x.kv_bytes);
    o.Set("metaBytes", x.meta_bytes);
    return o;
  });
}

Napi::Value BenchLinear(const Napi::CallbackInfo& info) {
  auto opts = std::make_shared<LinearBenchOptions>();
  try {
    if (info.Length() < 1 || !info[0].IsObject()) throw std::runtime_error("benchLinear(options) needs an object");
    Napi::Object o = info[0].As<Napi::Object>();
    Napi::Value shapes = o.Get("shapes");
    if (!shapes.IsArray()) throw std::runtime_error("benchLinear: 'shapes' must be a list");
    Napi::Array a = shapes.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); ++i) {
      Napi::Object x = a.Get(i).As<Napi::Object>();
      opts->shapes.push_back({x.Get("name").As<Napi::String>().Utf8Value(), int(get_num(x, "in", 0)), int(get_num(x, "out", 0)), get_bool(x, "int4"),
                              get_bool(x, "perLayer")});
    }
    opts->rows = int_list(o, "rows");
    opts->group = int(get_num(o, "group", 128));
    opts->layers = int(get_num(o, "layers", 0));
    opts->repeats = int(get_num(o, "repeats", 50));
    opts->seed = uint64_t(get_num(o, "seed", 0));
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), e.what());
  }
  return bench_promise<LinearBenchResult>(info.Env(), [opts] { return bench_linear(*opts); }, [](Napi::Env env, const LinearBenchRow& x) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", x.name);
    o.Set("in", x.in);
    o.Set("out", x.out);
    o.Set("rows", x.rows);
    o.Set("kernel", x.kernel);
    o.Set("us", x.us);
    o.Set("stagedUs", x.staged_us);
    o.Set("bytes", x.bytes);
    return o;
  });
}

Napi::Value ParityAttention(const Napi::CallbackInfo& info) {
  auto opts = std::make_shared<AttentionParityOptions>();
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(info.Env(), "parityAttention(options) needs an object");
  Napi::Object o = info[0].As<Napi::Object>();
  opts->shape = parse_shape(o);
  opts->length = int(get_num(o, "length", 1000));
  opts->budget = int(get_num(o, "budget", 256));
  opts->seed = uint64_t(get_num(o, "seed", 0));
  opts->softcap = float(get_num(o, "softcap", 0));
  auto res = std::make_shared<AttentionParityResult>();
  auto* task = new PromiseWorker(
      info.Env(), [=] { *res = parity_attention(*opts); },
      [res](Napi::Env env) {
        Napi::Object r = Napi::Object::New(env);
        r.Set("appendMinMaxMaxAbs", res->append_minmax_max_abs);
        r.Set("denseMaxAbs", res->dense_max_abs);
        r.Set("denseRefMax", res->dense_ref_max);
        r.Set("estimateMaxAbs", res->estimate_max_abs);
        r.Set("estimateRefMax", res->estimate_ref_max);
        r.Set("topkMismatches", res->topk_mismatches);
        r.Set("sparseMaxAbs", res->sparse_max_abs);
        r.Set("sparseRefMax", res->sparse_ref_max);
        r.Set("tokenMaxAbs", res->token_max_abs);
        r.Set("tokenRefMax", res->token_ref_max);
        r.Set("probsMaxAbs", res->probs_max_abs);
        r.Set("probsRefMax", res->probs_ref_max);
        r.Set("selectionMismatches", res->selection_mismatches);
        r.Set("prefillMaxAbs", res->prefill_max_abs);
        r.Set("prefillRefMax", res->prefill_ref_max);
        r.Set("colsumMaxAbs", res->colsum_max_abs);
        r.Set("colsumRefMax", res->colsum_ref_max);
        return r;
      });
  return task->start();
}

Napi::Value CopyBandwidth(const Napi::CallbackInfo& info) {
  auto gbps = std::make_shared<double>(0);
  auto* task = new PromiseWorker(
      info.Env(), [=] { *gbps = gpu_copy_gbps(0); }, [gbps](Napi::Env env) { return Napi::Number::New(env, *gbps); });
  return task->start();
}

Napi::Value BackendInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CudaStatus cs = cuda_status();
  Napi::Object o = Napi::Object::New(env);
  o.Set("cpuThreads", cpu_pool().size());
  Napi::Object c = Napi::Object::New(env);
  c.Set("compiled", cs.compiled);
  c.Set("architectures", cs.architectures);
  c.Set("devices", cs.devices);
  c.Set("deviceName", cs.device_name);
  c.Set("memoryGiB", cs.memory_gib);
  c.Set("computeCapability", cs.compute_capability);
  c.Set("error", cs.error);
  c.Set("gemm", cs.gemm);
  c.Set("prefillAttention", cs.prefill_attention);
  c.Set("decodeBatch", cs.decode_batch);
  o.Set("cuda", c);
  Napi::Object shapes = Napi::Object::New(env);
  auto ints = [&](const auto& values) {
    Napi::Array a = Napi::Array::New(env);
    for (int v : values) a.Set(a.Length(), v);
    return a;
  };
  shapes.Set("headDims", ints(kGpuHeadDims));
  shapes.Set("groups", ints(kGpuGroups));
  shapes.Set("int4GemvRows", kInt4GemvRows);
  o.Set("gpuShapes", shapes);
  return o;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  ModelWrap::Init(env);
  SequenceWrap::Init(env);
  exports.Set("loadModel", Napi::Function::New(env, LoadModel));
  exports.Set("servedBy", Napi::Function::New(env, ServedBy));
  exports.Set("backendInfo", Napi::Function::New(env, BackendInfo));
  exports.Set("copyBandwidth", Napi::Function::New(env, CopyBandwidth));
  exports.Set("runOneLayer", Napi::Function::New(env, RunOneLayer));
  exports.Set("describePolicies", Napi::Function::New(env, DescribePolicies));
  exports.Set("benchAttention", Napi::Function::New(env, BenchAttention));
  exports.Set("parityAttention", Napi::Function::New(env, ParityAttention));
  exports.Set("benchLinear", Napi::Function::New(env, BenchLinear));
  return exports;
}

}  // namespace
}  // namespace quest

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return quest::Init(env, exports); }
NODE_API_MODULE(quest_engine, InitModule)
