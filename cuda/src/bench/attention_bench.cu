// Timing and parity of the GPU attention kernels: random fp16 caches on the device, CUDA
// graphs replayed and timed with events (median), and every kernel checked against the CPU
// backend on the same inputs.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/attention_bench.h"
#include "bench/graph_timing.cuh"
#include "engine/backend.h"
#include "engine/kv_cache.h"
#include "kernels/cuda_util.cuh"
#include "kernels/decode_attention.cuh"
#include "kernels/kv_append.cuh"
#include "kernels/page_lists.cuh"
#include "kernels/prefill_attention.cuh"
#include "kernels/quest_select.cuh"
#include "kernels/quest_step.cuh"
#include "kernels/selection.cuh"
#include "policy/policies.h"

namespace quest {
namespace {

struct Cache {
  DeviceBuffer<__half> k, v, kmin, kmax;
  size_t pages;
  Cache(size_t pages, const AttentionShape& s)
      : k(pages * s.kv_heads * s.page_size * s.head_dim), v(k.n), kmin(bound_pages(pages) * s.kv_heads * s.head_dim), kmax(kmin.n), pages(pages) {
    // Finite everywhere, as the engine's pool is: the wgmma prefill copies whole pages.
    check(cudaMemset(k.ptr, 0, k.n * sizeof(__half)), "cache");
    check(cudaMemset(v.ptr, 0, v.n * sizeof(__half)), "cache");
  }
  // The kernels' view of this cache holding `length` tokens.
  PagedKv view(const int* page_table, const AttentionShape& s, int length) const {
    PagedKv kv;
    kv.k = k.ptr;
    kv.v = v.ptr;
    kv.kmin = kmin.ptr;
    kv.kmax = kmax.ptr;
    kv.page_table = page_table;
    kv.kv_heads = s.kv_heads;
    kv.head_dim = s.head_dim;
    kv.page_size = s.page_size;
    kv.current_page = (length - 1) / s.page_size;
    kv.current_len = length - kv.current_page * s.page_size;
    kv.capacity = int64_t(pages);
    return kv;
  }
};

}  // namespace

AttentionBenchResult bench_attention(const AttentionBenchOptions& o) {
  const AttentionShape& sh = o.shape;
  if (o.repeats < 1) throw std::runtime_error("repeats must be positive");
  const BenchDevice dev;
  cudaStream_t s = dev.stream;
  AttentionBenchResult res;
  res.device = dev.name;
  res.copy_gbps = dev.copy_gbps;
  const float scale = 1.0f / std::sqrt(float(sh.head_dim));
  const DecodePlan plan(HalfType::F16, sh.head_dim, sh.heads, sh.kv_heads);  // as a sequence of this shape makes it
  DeviceBuffer<__half> q(size_t(sh.heads) * sh.head_dim);
  fill_random(q.ptr, q.n, o.seed + 1, s);

  for (int L : o.lengths) {
    const int pages = (L + sh.page_size - 1) / sh.page_size;
    std::vector<int> table(pages);
    std::iota(table.begin(), table.end(), 0);
    DeviceBuffer<int> page_table(pages);
    page_table.upload(table);
    Cache cache(pages, sh);
    fill_random(cache.k.ptr, cache.k.n, o.seed * 7919, s);
    fill_random(cache.v.ptr, cache.v.n, o.seed * 7919 + 1, s);
    check(cudaGetLastError(), "fill");
    const PagedKv kv = cache.view(page_table.ptr, sh, L);
    check(page_minmax(kv, 0, pages - 1, L, s), "page min/max");
    const int current = (L - 1) / sh.page_size;
    const int current_len = L - current * sh.page_size;

    // Dense: every page of every KV head.
    std::vector<int> indptr(sh.kv_heads + 1), all;
    for (int g = 0; g <= sh.kv_heads; ++g) indptr[g] = g * pages;
    for (int g = 0; g < sh.kv_heads; ++g)
      for (int p = 0; p < pages; ++p) all.push_back(p);
    DeviceBuffer<int> d_indptr(indptr.size()), d_all(all.size());
    d_indptr.upload(indptr);
    d_all.upload(all);
    const int dense_splits = plan.page_splits(pages, sh.kv_heads);
    DeviceBuffer<float> dense_o(size_t(sh.heads) * dense_splits * sh.head_dim), dense_lse(size_t(sh.heads) * dense_splits),
        out(size_t(sh.heads) * sh.head_dim);
    {
      Graph graph;
      capture(graph, s, [&] {
        check(decode_attention({q.ptr, kv, sh.heads, scale, {dense_o.ptr, dense_lse.ptr, 0}, out.ptr}, {d_indptr.ptr, d_all.ptr, false, pages},
                               plan.pages(dense_splits, pages, false), s),
              "dense attention");
      });
      AttentionBenchRow row;
      row.length = L;
      row.policy = "dense";
      row.attention_us = row.total_us = dev.time(graph, o.repeats);
      row.tokens_read = L;
      row.kv_bytes = double(L) * sh.kv_heads * sh.head_dim * 2 * sizeof(__half);
      res.rows.push_back(row);
    }

    if (o.prefill) {
      // One layer's prefill attention over all L positions, chunked as the engine runs it.
      const size_t width = size_t(sh.heads) * sh.head_dim;
      DeviceBuffer<__half> pq(size_t(L) * width);
      DeviceBuffer<float> pout(pq.n);
      fill_random(pq.ptr, pq.n, o.seed * 7919 + 2, s);
      auto prefill = [&] {
        for (int c = 0; c < L; c += kPrefillChunk) {
          const int rows = std::min(kPrefillChunk, L - c);
          prefill_attention({pq.ptr + c * width, cache.view(page_table.ptr, sh, c + rows), sh.heads, rows, c, scale, pout.ptr + c * width, nullptr}, s);
        }
      };
      prefill();  // outside the capture: the kernel's shared-memory limit is raised on first use
      check(cudaStreamSynchronize(s), "prefill attention");
      Graph graph;
      capture(graph, s, prefill);
      AttentionBenchRow row;
      row.length = L;
      row.policy = "prefill";
      row.attention_us = row.total_us = dev.time(graph, std::min(o.repeats, 10));
      row.tokens_read = L;
      row.kv_bytes = double(L) * sh.kv_heads * sh.head_dim * 2 * sizeof(__half);
      res.rows.push_back(row);
    }

    for (int B : o.budgets) {
      const int sel = B / sh.page_size;
      if (sel < 1) throw std::runtime_error("budget " + std::to_string(B) + " is smaller than a page");
      const int listed = std::min(sel, current + 1);
      DeviceBuffer<float> scores(size_t(sh.kv_heads) * std::max(1, current));
      DeviceBuffer<int> q_indptr(sh.kv_heads + 1), q_indices(size_t(sh.kv_heads) * listed);
      const int splits = plan.page_splits(listed, sh.kv_heads);
      DeviceBuffer<float> qo(size_t(sh.heads) * splits * sh.head_dim), qlse(size_t(sh.heads) * splits);
      const PageLists lists{q_indptr.ptr, q_indices.ptr, false, listed};
      auto estimate = [&] { check(quest_estimate(q.ptr, kv, sh.heads, false, scores.ptr, s), "estimate"); };
      auto topk = [&] { check(quest_topk(scores.ptr, kv, sel, sh.kv_heads, q_indptr.ptr, q_indices.ptr, s), "top-k"); };
      const DecodeArgs args{q.ptr, kv, sh.heads, scale, {qo.ptr, qlse.ptr, 0}, out.ptr};
      auto attend = [&] { check(decode_attention(args, lists, plan.pages(splits, listed, false), s), "sparse attention"); };
      estimate();
      topk();
      check(cudaStreamSynchronize(s), "selection");
      Graph ge, gt, ga, gall;
      capture(ge, s, estimate);
      capture(gt, s, topk);
      capture(ga, s, attend);
      // The whole step as the engine runs it: one fused launch where quest_step can.
      capture(gall, s, [&] {
        check(quest_step({args, false, sel, plan.quest(kv, sel, splits, false), scores.ptr, q_indptr.ptr, q_indices.ptr}, s), "Quest step");
      });
      AttentionBenchRow row;
      row.length = L;
      row.policy = "quest";
      row.budget = B;
      row.estimate_us = dev.time(ge, o.repeats);
      row.topk_us = dev.time(gt, o.repeats);
      row.attention_us = dev.time(ga, o.repeats);
      row.total_us = dev.time(gall, o.repeats);
      row.tokens_read = double(listed - 1) * sh.page_size + current_len;
      row.kv_bytes = row.tokens_read * sh.kv_heads * sh.head_dim * 2 * sizeof(__half);
      // One of each channel's two bounds: the lines the estimate must read at least.
      row.meta_bytes = double(current) * sh.kv_heads * sh.head_dim * sizeof(__half);
      res.rows.push_back(row);
    }
  }
  return res;
}

namespace {

// Keeps, of the outputs compared into one (max_abs, ref_max) pair, the one whose max |got - ref|
// over its own max |ref| is largest: each output is judged relative to its own scale.
void compare(const std::vector<float>& got, const std::vector<float>& ref, double& max_abs, double& ref_max) {
  double diff = 0, scale = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    diff = std::max<double>(diff, std::fabs(got[i] - ref[i]));
    scale = std::max<double>(scale, std::fabs(ref[i]));
  }
  // diff / scale > max_abs / ref_max, without dividing by a zero scale.
  if (diff * ref_max > max_abs * scale || (ref_max == 0 && max_abs == 0)) {
    max_abs = diff;
    ref_max = scale;
  }
}

// The largest difference between a GPU cache's key bounds (laid out as `kv` says) and the
// CPU cache's, over `pages` pages.
double bounds_diff(const std::vector<__half>& kmin, const std::vector<__half>& kmax, const PagedKv& kv, const PagedKvCache& cpu,
                   int pages) {
  const int kvh = cpu.kv_heads(), d = cpu.head_dim();
  double worst = 0;
  for (int p = 0; p < pages; ++p)
    for (int g = 0; g < kvh; ++g)
      for (int i = 0; i < d; ++i) {
        const size_t at = kv.bound_at(p, g, i);
        worst = std::max<double>(worst, std::fabs(__half2float(kmin[at]) - cpu.page_min(0, g, p)[i]));
        worst = std::max<double>(worst, std::fabs(__half2float(kmax[at]) - cpu.page_max(0, g, p)[i]));
      }
  return worst;
}

// The CPU's attention options of the parity: its soft cap, every other option the default.
AttendOptions capped(const AttentionParityOptions& o) {
  AttendOptions how;
  how.softcap = o.softcap;
  return how;
}

// Quest at pages 8, 16 and 32 (the bounds recomputed as a prefill does), per KV head and per
// query head, against a CPU cache of that page size holding the same keys and values: the
// bounds, the estimate, the selection, the tokens a KV head serves and the attention over
// the selection.
void quest_parity(const AttentionParityOptions& o, const AttentionShape& sh, const PagedKv& base, const __half* q,
                    const std::vector<float>& qf, const std::vector<float>& kf, const std::vector<float>& vf, cudaStream_t s,
                    AttentionParityResult& r) {
  const int L = base.length(), d = sh.head_dim, kvh = sh.kv_heads, H = sh.heads, G = H / kvh;
  const float scale = 1.0f / std::sqrt(float(d));
  const DecodePlan plan(HalfType::F16, d, H, kvh);
  const int64_t pos = L - 1;
  for (const int P : {8, 16, 32}) {
    const int current = (L - 1) / P, sel = o.budget / P;
    if (sel - 1 >= current) continue;  // the policy reads everything
    PagedKvCache cpu(1, kvh, d, P);
    cpu.reserve(L);
    for (int t = 0; t < L; ++t) cpu.write(0, t, &kf[size_t(t) * kvh * d], &vf[size_t(t) * kvh * d]);
    cpu.commit(L);
    DeviceBuffer<__half> kmin(bound_pages(current + 1) * kvh * d), kmax(kmin.n);
    PagedKv kv = base;
    kv.meta_page = P;
    kv.kmin = kmin.ptr;
    kv.kmax = kmax.ptr;
    check(page_minmax(kv, 0, current, L, s), "page min/max");
    check(cudaStreamSynchronize(s), "page min/max");
    r.append_minmax_max_abs = std::max(r.append_minmax_max_abs, bounds_diff(kmin.download(), kmax.download(), kv, cpu, current + 1));
    for (const bool per_head : {false, true}) {
      const int lists = per_head ? H : kvh, count = (sel - 1) * P + (L - current * P);
      DeviceBuffer<float> scores(size_t(lists) * current);
      DeviceBuffer<int> indptr(lists + 1), indices(size_t(lists) * sel), tokens(size_t(lists) * sel * P);
      DeviceBuffer<unsigned long long> served(1);
      check(cudaMemsetAsync(served.ptr, 0, sizeof(unsigned long long), s), "counter");
      check(quest_estimate(q, kv, H, per_head, scores.ptr, s), "estimate");
      check(quest_topk(scores.ptr, kv, sel, lists, indptr.ptr, indices.ptr, s), "top-k");
      // Short lists: the attention that looks a page ahead (the dense check runs the other).
      const PageLists pages{indptr.ptr, indices.ptr, per_head, sel};
      const TokenLists toks{tokens.ptr, sel * P, count, per_head};
      if (P != 16) check(quest_pages_to_tokens(pages, kv, sel, lists, toks, s), "token lists");
      if (per_head) check(quest_union_tokens(pages, kv, H, sel, served.ptr, s), "union");
      const int splits = 3;
      DeviceBuffer<float> so(size_t(H) * splits * d), slse(size_t(H) * splits), out(size_t(H) * d);
      const DecodeArgs args{q, kv, H, scale, {so.ptr, slse.ptr, 0}, out.ptr, o.softcap};
      if (P == 16) check(decode_attention(args, pages, plan.pages(splits, pages.longest, per_head), s), "attention");
      else check(decode_attention_tokens(args, toks, plan.tokens(splits, per_head), {}, s), "attention");
      // The whole step as one call (fused where it can be) must give the same lists and output.
      DeviceBuffer<int> step_indptr(lists + 1), step_indices(size_t(lists) * sel);
      DeviceBuffer<float> step_scores(scores.n), step_out(out.n);
      if (P == 16)
        check(quest_step({{q, kv, H, scale, {so.ptr, slse.ptr, 0}, step_out.ptr, o.softcap}, per_head, sel, plan.quest(kv, sel, splits, per_head),
                          step_scores.ptr, step_indptr.ptr, step_indices.ptr},
                         s),
              "Quest step");
      check(cudaStreamSynchronize(s), "quest variant");
      const auto gs = scores.download();
      const auto gi = indices.download();
      const auto si = P == 16 ? step_indices.download() : gi;
      const auto sp = P == 16 ? step_indptr.download() : indptr.download();
      for (int l = 0; l <= lists; ++l) r.topk_mismatches += sp[l] != l * sel;
      Selection selection(lists);
      std::vector<float> want_scores(current);
      for (int l = 0; l < lists; ++l) {
        const int g = per_head ? l / G : l, h0 = per_head ? l : l * G;
        quest_page_scores(cpu, 0, g, qf.data(), h0, per_head ? h0 + 1 : h0 + G, current, want_scores.data());
        const std::vector<float> mine(gs.begin() + size_t(l) * current, gs.begin() + size_t(l + 1) * current);
        compare(mine, want_scores, r.estimate_max_abs, r.estimate_ref_max);
        std::vector<int32_t> want = top_k_sorted(mine, sel - 1);
        want.push_back(current);
        for (int j = 0; j < sel; ++j) r.topk_mismatches += (gi[size_t(l) * sel + j] != want[j]) + (si[size_t(l) * sel + j] != want[j]);
        for (int32_t p : want) append_range(selection[l], int64_t(p) * P, std::min<int64_t>(int64_t(p + 1) * P, L));
      }
      if (per_head) {
        int64_t union_tokens = 0;
        for (int g = 0; g < kvh; ++g) union_tokens += tokens_served(selection, g, kvh, G, L);
        r.topk_mismatches += int64_t(served.download()[0]) != union_tokens;
      }
      std::vector<float> ref(size_t(H) * d);
      cpu_backend().attend(cpu, 0, qf.data(), 1, H, &pos, &selection, ref.data(), nullptr, capped(o));
      compare(out.download(), ref, r.sparse_max_abs, r.sparse_ref_max);
      if (P == 16) compare(step_out.download(), ref, r.sparse_max_abs, r.sparse_ref_max);
    }
  }
}

// Quest's top-k on more pages than the parity's cache has: 3,000 (keys in registers) and
// 20,000 (past what registers hold), one-token pages with scores of a few levels drawn from
// `uniform` (in [-1, 1)), so ties happen, against the CPU's rule.
template <typename Uniform>
void wide_topk_parity(const PagedKv& base, Uniform& uniform, cudaStream_t s, AttentionParityResult& r) {
  for (const int n : {3000, 20000}) {
    const int lists = 2, sel = 300;
    std::vector<float> sc(size_t(lists) * n);
    for (auto& v : sc) v = std::floor((uniform() * 0.5f + 0.5f) * 64.0f);
    DeviceBuffer<float> dsc(sc.size());
    dsc.upload(sc);
    DeviceBuffer<int> ip(lists + 1), ix(size_t(lists) * sel);
    PagedKv wide = base;  // n + 1 tokens: n full Quest pages and the current one
    wide.meta_page = 1;
    wide.current_page = n / kGpuPage;
    wide.current_len = n % kGpuPage + 1;
    check(quest_topk(dsc.ptr, wide, sel, lists, ip.ptr, ix.ptr, s), "top-k");
    check(cudaStreamSynchronize(s), "top-k");
    const auto gi = ix.download(), gp = ip.download();
    for (int l = 0; l < lists; ++l) {
      std::vector<int32_t> want = top_k_sorted(std::vector<float>(sc.begin() + size_t(l) * n, sc.begin() + size_t(l + 1) * n), sel - 1);
      want.push_back(n);
      for (int j = 0; j < sel; ++j) r.topk_mismatches += gi[size_t(l) * sel + j] != want[j];
    }
    for (int l = 0; l <= lists; ++l) r.topk_mismatches += gp[l] != l * sel;
  }
}

}  // namespace

AttentionParityResult parity_attention(const AttentionParityOptions& opts) {
  const AttentionShape& sh = opts.shape;
  const int L = opts.length, d = sh.head_dim, kvh = sh.kv_heads, H = sh.heads, P = sh.page_size;
  const int pages = (L + P - 1) / P;
  uint64_t state = opts.seed * 6364136223846793005ull + 1442695040888963407ull;
  auto uniform = [&] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return float((state >> 11) * (1.0 / 9007199254740992.0) * 2.0 - 1.0);
  };
  // fp16 inputs; the CPU reference gets exactly the same values in fp32.
  auto draw = [&](size_t n, float scale, std::vector<__half>& h, std::vector<float>& f) {
    h.resize(n);
    f.resize(n);
    for (size_t i = 0; i < n; ++i) {
      h[i] = __float2half(uniform() * scale);
      f[i] = __half2float(h[i]);
    }
  };
  std::vector<__half> qh, kh, vh;
  std::vector<float> qf, kf, vf;
  draw(size_t(H) * d, 1.0f, qh, qf);
  draw(size_t(L) * kvh * d, 1.0f, kh, kf);
  draw(size_t(L) * kvh * d, 1.0f, vh, vf);

  // A shuffled page table, so logical and physical pages differ.
  std::vector<int> table(pages);
  std::iota(table.begin(), table.end(), 0);
  for (int i = pages - 1; i > 0; --i) std::swap(table[i], table[int((uniform() * 0.5f + 0.5f) * i) % (i + 1)]);

  cudaStream_t s;
  check(cudaStreamCreate(&s), "stream");
  Cache gpu(pages, sh);
  DeviceBuffer<int> page_table(pages);
  page_table.upload(table);
  DeviceBuffer<__half> tok_k(size_t(kvh) * d), tok_v(size_t(kvh) * d), q(size_t(H) * d);
  q.upload(qh);
  PagedKvCache cpu(1, kvh, d, P);
  for (int t = 0; t < L; ++t) {
    check(cudaMemcpyAsync(tok_k.ptr, &kh[size_t(t) * kvh * d], kvh * d * sizeof(__half), cudaMemcpyHostToDevice, s), "token");
    check(cudaMemcpyAsync(tok_v.ptr, &vh[size_t(t) * kvh * d], kvh * d * sizeof(__half), cudaMemcpyHostToDevice, s), "token");
    check(append_kv(gpu.view(page_table.ptr, sh, t + 1), t, tok_k.ptr, tok_v.ptr, s), "append");
    check(cudaStreamSynchronize(s), "append");
    cpu.reserve(t + 1);
    cpu.write(0, t, &kf[size_t(t) * kvh * d], &vf[size_t(t) * kvh * d]);
    cpu.commit(t + 1);
  }
  const PagedKv kv = gpu.view(page_table.ptr, sh, L);
  AttentionParityResult r;
  r.append_minmax_max_abs = bounds_diff(gpu.kmin.download(), gpu.kmax.download(), kv, cpu, pages);

  const float scale = 1.0f / std::sqrt(float(d));
  const int64_t pos = L - 1;
  const DecodePlan plan(HalfType::F16, d, H, kvh);
  auto gpu_attend = [&](const std::vector<int>& indptr, const std::vector<int>& indices) {
    DeviceBuffer<int> di(indptr.size()), dx(indices.size());
    di.upload(indptr);
    dx.upload(indices);
    const int splits = 3;  // several splits, so the log-sum-exp merge is exercised
    DeviceBuffer<float> o(size_t(H) * splits * d), lse(size_t(H) * splits), out(size_t(H) * d);
    check(decode_attention({q.ptr, kv, H, scale, {o.ptr, lse.ptr, 0}, out.ptr, opts.softcap}, {di.ptr, dx.ptr}, plan.pages(splits, 0, false), s),
          "attention");
    check(cudaStreamSynchronize(s), "attention");
    return out.download();
  };

  // Dense.
  std::vector<int> indptr(kvh + 1), all;
  for (int g = 0; g <= kvh; ++g) indptr[g] = g * pages;
  for (int g = 0; g < kvh; ++g)
    for (int p = 0; p < pages; ++p) all.push_back(p);
  std::vector<float> ref(size_t(H) * d);
  cpu_backend().attend(cpu, 0, qf.data(), 1, H, &pos, nullptr, ref.data(), nullptr, capped(opts));
  compare(gpu_attend(indptr, all), ref, r.dense_max_abs, r.dense_ref_max);

  quest_parity(opts, sh, kv, q.ptr, qf, kf, vf, s, r);

  wide_topk_parity(kv, uniform, s, r);

  // Token lists: `count` positions a KV head drawn at random, the newest always among them;
  // attention over them with the report, and each entry's probability summed over the group.
  const int count = std::min(opts.budget, L);
  Selection tokens(kvh);
  std::vector<int> flat(size_t(kvh) * count);
  for (int g = 0; g < kvh; ++g) {
    std::vector<int32_t> perm(L - 1);
    std::iota(perm.begin(), perm.end(), 0);
    for (int i = 0; i < count - 1; ++i) std::swap(perm[i], perm[i + int((uniform() * 0.5f + 0.5f) * (L - 1 - i)) % (L - 1 - i)]);
    std::vector<int32_t> chosen(perm.begin(), perm.begin() + (count - 1));
    chosen.push_back(L - 1);
    std::sort(chosen.begin(), chosen.end());
    std::copy(chosen.begin(), chosen.end(), flat.begin() + size_t(g) * count);
    tokens[g] = std::move(chosen);
  }
  DeviceBuffer<int> list(flat.size());
  list.upload(flat);
  const int splits = 3;
  DeviceBuffer<float> so(size_t(H) * splits * d), slse(size_t(H) * splits), tout(size_t(H) * d), logits(size_t(H) * count), lse(H),
      probs(size_t(kvh) * count);
  check(decode_attention_tokens({q.ptr, kv, H, scale, {so.ptr, slse.ptr, 0}, tout.ptr, opts.softcap}, {list.ptr, count, count}, plan.tokens(splits, false),
                                {logits.ptr, count, lse.ptr}, s),
        "token attention");
  GroupProbs summed;
  summed.logits = logits.ptr;
  summed.lse = lse.ptr;
  summed.stride = summed.count = count;
  summed.heads = H;
  summed.kv_heads = kvh;
  summed.lists = list.ptr;
  summed.probs = probs.ptr;
  check(group_probs(summed, s), "probabilities");
  check(cudaStreamSynchronize(s), "token attention");
  AttentionScores seen;
  seen.want_sums = true;
  cpu_backend().attend(cpu, 0, qf.data(), 1, H, &pos, &tokens, ref.data(), &seen, capped(opts));
  compare(tout.download(), ref, r.token_max_abs, r.token_ref_max);
  const auto gp = probs.download();
  std::vector<float> cpu_probs(flat.size());
  for (int g = 0; g < kvh; ++g)
    for (int e = 0; e < count; ++e) cpu_probs[size_t(g) * count + e] = seen.sums[g][flat[size_t(g) * count + e]];
  compare(gp, cpu_probs, r.probs_max_abs, r.probs_ref_max);

  // The selection steps on the same values as the CPU's rules: the top half of those
  // probabilities; TOVA's eviction (by entry, the first of equals goes); H2O's (by position,
  // the newest kept, the later of equals goes) over scores of a few levels, so ties happen;
  // SnapKV's pooling of them.
  const int k = std::max(1, count / 2), protect = std::min(4, count - 1);
  std::vector<float> acc(size_t(kvh) * L);
  for (auto& a : acc) a = std::floor((uniform() * 0.5f + 0.5f) * 8.0f);
  DeviceBuffer<float> dacc(acc.size()), pooled(acc.size());
  dacc.upload(acc);
  DeviceBuffer<int> picked(size_t(kvh) * count), tova(size_t(kvh) * count), h2o(size_t(kvh) * count);
  check(top_k_indices(probs.ptr, count, count, k, kvh, picked.ptr, count, s), "top-k");
  EvictOne tova_rule;
  tova_rule.in = list.ptr;
  tova_rule.count = tova_rule.in_stride = tova_rule.out_stride = count;
  tova_rule.scores = probs.ptr;
  tova_rule.score_stride = count;
  tova_rule.kv_heads = kvh;
  tova_rule.out = tova.ptr;
  EvictOne h2o_rule = tova_rule;
  h2o_rule.scores = dacc.ptr;
  h2o_rule.score_stride = L;
  h2o_rule.by_position = true;
  h2o_rule.protect = protect;
  h2o_rule.drop_later = true;
  h2o_rule.out = h2o.ptr;
  check(evict_one(tova_rule, s), "eviction");
  check(evict_one(h2o_rule, s), "eviction");
  check(max_pool(dacc.ptr, L, L, 3, kvh, pooled.ptr, s), "pooling");
  check(cudaStreamSynchronize(s), "selection steps");
  const auto gpicked = picked.download(), gtova = tova.download(), gh2o = h2o.download();
  const auto gpooled = pooled.download();
  for (int g = 0; g < kvh; ++g) {
    const int* mine = flat.data() + size_t(g) * count;
    const std::vector<float> pg(gp.begin() + size_t(g) * count, gp.begin() + size_t(g + 1) * count);
    const std::vector<int32_t> top = top_k_sorted(pg, k);
    for (int j = 0; j < k; ++j) r.selection_mismatches += gpicked[size_t(g) * count + j] != top[j];
    int first_min = 0, last_min = 0;
    for (int i = 1; i < count; ++i) first_min = pg[i] < pg[first_min] ? i : first_min;
    const float* ag = acc.data() + size_t(g) * L;
    for (int i = 1; i < count - protect; ++i) last_min = ag[mine[i]] <= ag[mine[last_min]] ? i : last_min;
    for (int i = 0, j = 0; i < count; ++i)
      if (i != first_min) r.selection_mismatches += gtova[size_t(g) * count + j++] != mine[i];
    for (int i = 0, j = 0; i < count; ++i)
      if (i != last_min) r.selection_mismatches += gh2o[size_t(g) * count + j++] != mine[i];
    for (int t = 0; t < L; ++t) {
      float m = -1.0f;
      for (int u = std::max(0, t - 3); u <= std::min(L - 1, t + 3); ++u) m = std::max(m, ag[u]);
      r.selection_mismatches += gpooled[size_t(g) * L + t] != m;
    }
  }

  // A prefill chunk: the last R positions as queries over the cache, with each row's
  // log-sum-exp, and the column sums of its attention probabilities (H2O's prefill scores);
  // 200 rows stream through both stages of the column sums' 128-row tiles.
  const int R = std::min(L, 200), start = L - R;
  std::vector<__half> qrh;
  std::vector<float> qrf;
  draw(size_t(R) * H * d, 1.0f, qrh, qrf);
  DeviceBuffer<__half> qr(qrh.size());
  qr.upload(qrh);
  DeviceBuffer<float> pout(size_t(R) * H * d), plse(size_t(R) * H), sums(size_t(kvh) * L);
  check(cudaMemsetAsync(sums.ptr, 0, sums.n * sizeof(float), s), "column sums");
  prefill_attention({qr.ptr, kv, H, R, start, scale, pout.ptr, plse.ptr, opts.softcap}, s);
  ColumnSums c;
  c.q = qr.ptr;
  c.kv = kv;
  c.heads = H;
  c.rows = R;
  c.start = start;
  c.scale = scale;
  c.softcap = opts.softcap;
  c.lse = plse.ptr;
  c.acc = sums.ptr;
  c.acc_stride = L;
  prefill_column_sums(c, s);
  check(cudaStreamSynchronize(s), "prefill");
  std::vector<int64_t> rows(R);
  std::iota(rows.begin(), rows.end(), int64_t(start));
  AttentionScores chunk;
  chunk.want_sums = true;
  std::vector<float> pref(size_t(R) * H * d), cref(size_t(kvh) * L, 0.0f);
  cpu_backend().attend(cpu, 0, qrf.data(), R, H, rows.data(), nullptr, pref.data(), &chunk, capped(opts));
  compare(pout.download(), pref, r.prefill_max_abs, r.prefill_ref_max);
  for (int g = 0; g < kvh; ++g) std::copy(chunk.sums[g].begin(), chunk.sums[g].end(), cref.begin() + size_t(g) * L);
  compare(sums.download(), cref, r.colsum_max_abs, r.colsum_ref_max);
  cudaStreamDestroy(s);
  return r;
}

}  // namespace quest
