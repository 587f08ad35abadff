#include <algorithm>
#include <stdexcept>
#include <string>

#include "kernels/cuda_util.cuh"
#include "kernels/decode_attention.cuh"
#include "kernels/decode_common.cuh"
#include "kernels/decode_plan.cuh"
#include "kernels/gpu_shapes.h"
#include "kernels/quest_select.cuh"
#include "kernels/quest_step.cuh"

namespace quest {
namespace {

// The split count that gives about four blocks per SM, with a page for each of a block's
// warps: a split of fewer leaves warps idle, and a batch's lanes (a Quest list of 128 pages
// over 8 lists took 64 splits) need more waves of blocks.
int splits_for(int pages, int lists, int sms) {
  return std::max(1, std::min((4 * sms + lists - 1) / lists, std::max(1, pages / kWarps)));
}

// No more splits for `lists` lists than one wave of `wave` blocks holds: a block left for a
// second wave waits for a first one to finish, and the step waits for it.
int one_wave(int splits, int wave, int lists) { return std::max(1, std::min(splits, wave / lists)); }

}  // namespace

DecodePlan::DecodePlan(HalfType type, int head_dim, int heads, int kv_heads) : heads_(heads) {
  if (const std::string why = gpu_shape_refusal(heads, kv_heads, head_dim); !why.empty()) throw std::runtime_error("decode plan: " + why);
  group_ = heads / kv_heads;
  int dev = 0;
  check(cudaGetDevice(&dev), "cudaGetDevice");
  check(cudaDeviceGetAttribute(&sms_, cudaDevAttrMultiProcessorCount, dev), "device attributes");
  max_splits_ = std::max(1, (4 * sms_ + kv_heads - 1) / kv_heads);
  grouped_ = decode_fit(type, head_dim, group_);
  single_ = decode_fit(type, head_dim, 1);
  step_lists_ = quest_step_clusters(type, head_dim);
}

int DecodePlan::page_splits(int pages, int lists) const { return std::min(max_splits_, splits_for(pages, lists, sms_)); }

int DecodePlan::token_splits(int count, int lists) const { return page_splits((count + kGpuPage - 1) / kGpuPage, lists); }

PageLaunch DecodePlan::pages(int splits, int longest, bool per_head) const {
  const int G = per_head ? 1 : group_, lists = heads_ / G;
  const DecodeFit& fit = G == 1 ? single_ : grouped_;
  PageLaunch p;
  p.ahead = longest > 0 && (longest + splits - 1) / splits <= 16;
  p.cluster = G == 1 && p.ahead && lists <= fit.cluster_lists;
  p.splits = p.cluster ? kClusterSplits : one_wave(splits, p.ahead ? fit.ahead : fit.plain, lists);
  return p;
}

int DecodePlan::tokens(int splits, bool per_head) const {
  const int G = per_head ? 1 : group_;
  return one_wave(splits, (G == 1 ? single_ : grouped_).tokens, heads_ / G);
}

QuestLaunch DecodePlan::quest(const PagedKv& kv, int pages, int splits, bool per_head) const {
  const int G = per_head ? 1 : group_;
  QuestLaunch q;
  q.fused = G == 1 && quest_step_fits(kv, pages) && heads_ / G <= step_lists_;
  if (!q.fused) q.attention = this->pages(splits, listed_pages(kv, pages), per_head);
  return q;
}

}  // namespace quest
