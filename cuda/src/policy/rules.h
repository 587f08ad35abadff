// The arithmetic of each policy's rule, stated once: the CPU policies (policy/) and their
// device versions (gpu/gpu_policies.cu) both call these, so the two cannot drift apart.
#pragma once
#include <cmath>
#include <cstdint>

namespace quest::rules {

// Whether a step at `pos` reads the whole cache because the budget already covers it
// (streaming, oracle top-k: B tokens; Quest compares pages, below).
inline bool budget_covers(int64_t budget, int64_t pos) { return pos + 1 <= budget; }

// Quest: pages a step reads, the current (partial) one included.
inline int64_t quest_pages(int64_t budget, int page_size) { return budget / page_size; }
// Quest reads everything while its other pages cover every full page before the current one.
inline bool quest_reads_all(int64_t budget, int page_size, int64_t pos) { return quest_pages(budget, page_size) - 1 >= pos / page_size; }

// H2O: tokens kept by accumulated attention; the other B - heavy are the most recent.
inline int64_t h2o_heavy(int64_t budget, double heavy_fraction) { return int64_t(std::floor(double(budget) * heavy_fraction)); }

// TOVA: tokens kept between steps; a step reads them and the new one, B in all.
inline int64_t tova_kept(int64_t budget) { return budget - 1; }

// SnapKV compresses only a prompt longer than the budget, keeping B - window of the tokens
// before its window, and the window; a later step reads those and every token decoded since.
inline bool snapkv_compresses(int64_t budget, int64_t prompt_end) { return prompt_end > budget; }
inline int64_t snapkv_chosen(int64_t budget, int window) { return budget - window; }
inline int64_t snapkv_reads(int64_t budget, int64_t prompt_end, int64_t pos) { return budget + (pos + 1 - prompt_end); }

}  // namespace quest::rules
