// Decode attention for the cells of one shared prefill at one length (issue #20): their dense
// reads see the same prompt pages, so a block holds the query heads of several cells and loads
// each shared page once for all of them; a cell's own pages (its copy of the prompt's partial
// page, the tokens it generated) are read for its heads alone. Each head sees the same pages in
// the same warp, slot and order as in decode_attention.cu's decode_partial, and its split goes to
// the same place of the scratch, so a cell's output keeps the bits of the cell alone.
#include <algorithm>

#include "kernels/decode_attention.cuh"
#include "kernels/decode_common.cuh"

namespace quest {
namespace {

// Query heads a block holds, each lane keeping its eighth of every head's query and output in
// registers beside a page's loads: eight, or four at head_dim 256 (a lane loads twice the
// pieces of a page there).
template <int D>
constexpr int shared_rows() {
  return D == 256 ? 4 : 8;
}

// One block per (KV head, split, R / G cells): row r is cell c0 + r / G's query head g G + r % G.
template <int D, int G, int R, typename T>
__global__ void __launch_bounds__(kWarps * 32) decode_shared(const T* __restrict__ q, PagedKv kv, const __grid_constant__ SharedRun run,
                                                             int pages, int heads, float scale, SplitScratch sc) {
  constexpr int LT = token_lanes<D>(), TPW = 32 / LT, CELLS = R / G;
  const int g = blockIdx.x, split = blockIdx.y, c0 = blockIdx.z * CELLS;
  const int cells = min(CELLS, run.cells - c0), rows = cells * G;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, sub = lane % LT, slot = lane / LT;
  wait_for_previous();
  // decode_partial's split of a dense list of `pages` pages.
  const int per = (pages + sc.splits - 1) / sc.splits;
  const int p0 = split * per, p1 = min(pages, p0 + per);

  float qv[R][8], m[R], sum[R], acc[R][8];
#pragma unroll
  for (int r = 0; r < R; ++r)
    start_head<D, T>(q + (size_t(c0 + r / G) * heads + g * G + r % G) * D, r < rows, sub, scale, qv[r], m[r], sum[r], acc[r]);

  for (int p = p0 + warp; p < p1; p += kWarps) {
    if (p < run.shared) {
      attend_page<D, R, T, false>(kv, g, p, run.tables[0][p], sub, slot, qv, m, sum, acc, 0.0f, [] {}, 0, rows);
    } else {
      for (int c = 0; c < cells; ++c) attend_page<D, R, T, false>(kv, g, p, run.tables[c0 + c][p], sub, slot, qv, m, sum, acc, 0.0f, [] {}, c * G, c * G + G);
    }
  }

  merge_states<D, R, TPW>(m, sum, acc, warp, slot, sub, [&](int r, int j, float o, float lse) {
    if (r >= rows) return;
    const size_t at = (size_t(c0 + r / G) * heads + g * G + r % G) * sc.splits + split;
    sc.o[at * D + j] = o;
    if (j == 0) sc.lse[at] = lse;
  });
}

}  // namespace

int shared_cells_per_block(int head_dim, int group) {
  const int cells = (head_dim == 256 ? shared_rows<256>() : shared_rows<128>()) / std::max(group, 1);
  return cells >= 2 ? cells : 0;
}

cudaError_t decode_attention_shared(const DecodeArgs& a, const SharedRun& run, int pages, const PageLaunch& plan, cudaStream_t stream) {
  const PagedKv& kv = a.kv;
  if (!supported(kv, a.heads) || plan.cluster || a.softcap != 0 || run.cells < 1 || run.cells > kRunCells || pages < 1) return cudaErrorInvalidValue;
  const int group = a.heads / kv.kv_heads;
  if (shared_cells_per_block(kv.head_dim, group) == 0) return cudaErrorInvalidValue;
  SplitScratch sc = a.scratch;
  sc.splits = plan.splits;
  const cudaError_t err = with_instance(kv, group, [&](auto t, auto d, auto g) -> cudaError_t {
    using T = decltype(t);
    constexpr int kD = decltype(d)::value, kG = decltype(g)::value, kR = shared_rows<kD>();
    if constexpr (kR / kG >= 2) {
      const dim3 grid(kv.kv_heads, sc.splits, (run.cells + kR / kG - 1) / (kR / kG));
      return launch(decode_shared<kD, kG, kR, T>, grid, kWarps * 32, 0, stream, static_cast<const T*>(a.q), kv, run, pages, a.heads, a.scale,
                    sc);
    } else {
      return cudaErrorInvalidValue;
    }
  });
  if (err != cudaSuccess) return err;
  return merge_decode_splits(sc, run.cells * a.heads, kv.head_dim, a.out, nullptr, stream);
}

}  // namespace quest
