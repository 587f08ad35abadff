// Each linear layer of a decode step timed alone: random weights on the device, the product
// of `rows` input rows replayed in a CUDA graph (median), each replay from DRAM (the L2
// flushed), by the kernels the engine's step runs (gpu_sequence.cu: linear() for one 16-bit
// row, linear_rows() for several, int4_gemv() after stage_input() for 4-bit layers). The input
// is a plain fp32 row: the step's norm or SwiGLU, built on the way, is not timed here.
#include "bench/linear_bench.h"

#include <algorithm>
#include <stdexcept>

#include "bench/graph_timing.cuh"
#include "gpu/int4.cuh"
#include "kernels/cuda_util.cuh"
#include "kernels/linear.cuh"

namespace quest {

namespace {

// An fp32 activation buffer of n values in [-1, 1): random halves widened.
__global__ void widen(const __half* h, float* f, size_t n) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) f[i] = __half2float(h[i]);
}

struct Layer {
  DeviceBuffer<__half> w;     // fp16 weights [out][in], or a 4-bit layer's (scale, zero) pairs
  DeviceBuffer<uint32_t> q;   // a 4-bit layer's packed words
  Int4Linear q4;
  DeviceLinear d;
};

// A layer's weight bytes from its shape alone (a 4-bit layer's as Int4Linear counts them).
double weight_bytes(const LinearShape& sh, int group) {
  if (!sh.int4) return 2.0 * sh.in * sh.out;
  Int4Linear q;
  q.in = sh.in;
  q.out = sh.out;
  q.group = group;
  return double(q.bytes());
}

Layer make_layer(const LinearShape& sh, int group, uint64_t seed, cudaStream_t s) {
  Layer l;
  if (sh.int4) {
    if (sh.in % group || group % 32) throw std::runtime_error("bench_linear: " + sh.name + "'s inputs must be whole groups of a multiple of 32");
    l.q.resize(size_t(sh.out) * sh.in / 8);
    l.w.resize(2 * size_t(sh.out) * (sh.in / group));
    fill_random_words(l.q.ptr, l.q.n, seed, s);
    fill_random(l.w.ptr, l.w.n, seed + 1, s);
    l.q4.qweight = l.q.ptr;
    l.q4.sz = reinterpret_cast<const __half2*>(l.w.ptr);
    l.q4.in = sh.in;
    l.q4.out = sh.out;
    l.q4.group = group;
    l.q4.mma = int4_gemv_on_tensor_cores(sh.in, sh.out, group);
  } else {
    l.w.resize(size_t(sh.out) * sh.in);
    fill_random(l.w.ptr, l.w.n, seed, s);
  }
  l.d = {l.w.ptr, nullptr, sh.in, sh.out};
  return l;
}

}  // namespace

LinearBenchResult bench_linear(const LinearBenchOptions& o) {
  if (o.repeats < 1) throw std::runtime_error("bench_linear: repeats must be positive");
  const BenchDevice dev;
  cudaStream_t s = dev.stream;
  LinearBenchResult res;
  res.device = dev.name;
  res.copy_gbps = dev.copy_gbps;
  int max_rows = 1;
  size_t max_in = 0, max_out = 0;
  for (int r : o.rows) {
    if (r < 1 || r > kInt4GemvRows) throw std::runtime_error("bench_linear: rows must be 1 to " + std::to_string(kInt4GemvRows));
    max_rows = std::max(max_rows, r);
  }
  for (const LinearShape& sh : o.shapes) max_in = std::max(max_in, size_t(sh.in)), max_out = std::max(max_out, size_t(sh.out));
  DeviceBuffer<__half> xh(max_rows * max_in), staged(2 * max_rows * max_in);
  DeviceBuffer<float> x(xh.n), y(max_rows * max_out);
  fill_random(xh.ptr, xh.n, o.seed + 7, s);
  widen<<<256, 256, 0, s>>>(xh.ptr, x.ptr, x.n);
  check(cudaGetLastError(), "widen");
  uint64_t seed = o.seed * 7919 + 11;
  // The product of `rows` rows through layer l, and with the step's staging of its input before it.
  auto product = [&](const LinearShape& sh, const Layer& l, int rows, bool stage) {
    const LinearInput in{x.ptr};
    if (sh.int4) {
      if (stage) stage_input(in, rows, sh.in, HalfType::F16, staged.ptr, s);
      int4_gemv(staged.ptr, rows, l.q4, nullptr, HalfType::F16, y.ptr, false, s);
    } else if (rows == 1) {
      // One 16-bit row builds its input in the GEMV's blocks; a batch's rows are staged by linear_rows.
      linear(in, 1, l.d, HalfType::F16, y.ptr, false, s);
    } else {
      linear_rows(in, rows, l.d, HalfType::F16, y.ptr, false, staged.ptr, s);
    }
  };
  // Weights, input rows (a 4-bit layer's staged in fp16, a 16-bit one's read in fp32) and fp32 output rows.
  auto bytes = [&](const LinearShape& sh, int rows) { return weight_bytes(sh, o.group) + (sh.int4 ? 2.0 : 4.0) * rows * sh.in + 4.0 * rows * sh.out; };
  auto kernel = [](const LinearShape& sh, const Layer& l) -> std::string {
    return sh.int4 ? (l.q4.mma ? "4-bit, tensor cores" : "4-bit, half2") : "fp16, tensor cores";
  };
  // A row's graph of `body` timed, and for 4-bit layers with their staging launches too (a
  // 16-bit layer builds its input in the GEMV: the same graph).
  auto timed = [&](LinearBenchRow row, bool int4, auto&& body) {
    Graph alone;
    // The 4-bit GEMVs' staged input, as a step leaves it.
    if (int4) stage_input({x.ptr}, row.rows, int(max_in), HalfType::F16, staged.ptr, s);
    capture(alone, s, [&] { body(false); });
    row.us = row.staged_us = dev.time(alone, o.repeats);
    if (int4) {
      Graph with_stage;
      capture(with_stage, s, [&] { body(true); });
      row.staged_us = dev.time(with_stage, o.repeats);
    }
    res.rows.push_back(row);
  };
  for (const LinearShape& sh : o.shapes) {
    const Layer l = make_layer(sh, o.group, seed += 2, s);
    for (int rows : o.rows) {
      LinearBenchRow row;
      row.name = sh.name;
      row.in = sh.in;
      row.out = sh.out;
      row.rows = rows;
      row.kernel = kernel(sh, l);
      row.bytes = bytes(sh, rows);
      timed(row, sh.int4, [&](bool stage) { product(sh, l, rows, stage); });
    }
  }
  // Every layer's projections back to back, each layer its own weights (as a step reads them):
  // the launches overlap as in a forward pass, no replay's start or end in any one kernel's time.
  if (o.layers > 0) {
    double need = 0;
    for (const LinearShape& sh : o.shapes)
      if (sh.per_layer) need += o.layers * weight_bytes(sh, o.group);
    size_t free = 0, total = 0;
    check(cudaMemGetInfo(&free, &total), "free memory");
    if (need > 0.95 * double(free))
      throw std::runtime_error("bench-linear: the layers row needs " + std::to_string(int(need / 1e9)) + " GB of weights, " + std::to_string(int(free / 1e9)) +
                               " GB of the GPU are free: --no-layers leaves it out");
    std::vector<std::pair<const LinearShape*, Layer>> all;
    for (int i = 0; i < o.layers; ++i)
      for (const LinearShape& sh : o.shapes)
        if (sh.per_layer) all.emplace_back(&sh, make_layer(sh, o.group, seed += 2, s));
    for (int rows : o.rows) {
      LinearBenchRow row;
      row.name = "layers";
      row.rows = rows;
      row.kernel = "every projection of " + std::to_string(o.layers) + " layers";
      for (const auto& e : all) row.bytes += bytes(*e.first, rows);
      timed(row, std::any_of(all.begin(), all.end(), [](const auto& e) { return e.first->int4; }), [&](bool stage) {
        for (const auto& [sh, l] : all) product(*sh, l, rows, stage);
      });
    }
  }
  check(cudaStreamSynchronize(s), "bench_linear");
  return res;
}

}  // namespace quest
