// Each linear layer of a decode step timed alone: random weights on the device, the product
// of `rows` input rows replayed in a CUDA graph (median), each replay from DRAM (the L2
// flushed), as the engine's step runs it (gpu_sequence.cu: linear() for one 16-bit row,
// linear_rows() for several, int4_gemv() after stage_input() for 4-bit layers).
#include "bench/linear_bench.h"

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
  cudaDeviceProp prop;
  check(cudaGetDeviceProperties(&prop, 0), "device properties");
  cudaStream_t s;
  check(cudaStreamCreate(&s), "stream");
  LinearBenchResult res;
  res.device = prop.name;
  res.copy_gbps = copy_bandwidth_gbps(s);
  const L2Flush flush(prop);
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
  for (const LinearShape& sh : o.shapes) {
    const Layer l = make_layer(sh, o.group, seed += 2, s);
    for (int rows : o.rows) {
      LinearBenchRow row;
      row.name = sh.name;
      row.in = sh.in;
      row.out = sh.out;
      row.rows = rows;
      const LinearInput in{x.ptr};
      Graph alone, with_stage;
      if (sh.int4) {
        row.kernel = l.q4.mma ? "4-bit, tensor cores" : "4-bit, half2";
        row.bytes = double(l.q4.bytes()) + 2.0 * rows * sh.in + 4.0 * rows * sh.out;
        stage_input(in, rows, sh.in, HalfType::F16, staged.ptr, s);
        capture(alone, s, [&] { int4_gemv(staged.ptr, rows, l.q4, nullptr, HalfType::F16, y.ptr, false, s); });
        capture(with_stage, s, [&] {
          stage_input(in, rows, sh.in, HalfType::F16, staged.ptr, s);
          int4_gemv(staged.ptr, rows, l.q4, nullptr, HalfType::F16, y.ptr, false, s);
        });
      } else {
        // One 16-bit row builds its input in the GEMV's blocks; a batch's rows are staged by linear_rows.
        row.kernel = "fp16, tensor cores";
        row.bytes = 2.0 * sh.in * sh.out + 4.0 * rows * sh.in + 4.0 * rows * sh.out;
        auto product = [&] {
          if (rows == 1) linear(in, 1, l.d, HalfType::F16, y.ptr, false, s);
          else linear_rows(in, rows, l.d, HalfType::F16, y.ptr, false, staged.ptr, s);
        };
        capture(alone, s, product);
      }
      row.us = time_graph(alone, flush, s, o.repeats);
      row.staged_us = sh.int4 ? time_graph(with_stage, flush, s, o.repeats) : row.us;
      res.rows.push_back(row);
    }
  }
  check(cudaStreamSynchronize(s), "bench_linear");
  cudaStreamDestroy(s);
  return res;
}

}  // namespace quest
