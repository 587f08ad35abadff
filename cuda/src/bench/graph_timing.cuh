// What the GPU benchmarks (bench/) share: random device data, CUDA graphs replayed and timed
// with events (median), each replay started with L2 holding none of its bytes, and the copy
// rate that every floor divides by.
#pragma once
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "kernels/cuda_util.cuh"

namespace quest {

// x[i] uniform in [-1, 1), a function of (i, seed) alone.
void fill_random(__half* x, size_t n, uint64_t seed, cudaStream_t s);
// Random 32-bit words (packed 4-bit weights), likewise.
void fill_random_words(uint32_t* x, size_t n, uint64_t seed, cudaStream_t s);

struct Graph {
  cudaGraphExec_t exec = nullptr;
  Graph() = default;
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;
  ~Graph() {
    if (exec) cudaGraphExecDestroy(exec);
  }
};

template <typename F>
void capture(Graph& g, cudaStream_t s, F&& body) {
  cudaGraph_t graph;
  check(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal), "begin capture");
  body();
  check(cudaStreamEndCapture(s, &graph), "end capture");
  check(cudaGraphInstantiate(&g.exec, graph, 0), "instantiate graph");
  cudaGraphDestroy(graph);
}

// Reads a buffer twice the L2's size, so the next replay finds its own bytes in DRAM, as a
// layer's kernels do in a forward pass (the other layers' bytes pass through L2 in between).
class L2Flush {
 public:
  explicit L2Flush(const cudaDeviceProp& prop);
  void operator()(cudaStream_t s) const;

 private:
  DeviceBuffer<uint4> buf_;
};

// Median microseconds of one replay, each started with L2 holding none of its bytes.
double time_graph(const Graph& graph, const L2Flush& flush, cudaStream_t s, int repeats);

// GPU 0 as a benchmark uses it: its name, a stream of its own, the copy rate measured on
// creation (every floor's divisor) and the L2 flush.
struct BenchDevice {
  BenchDevice();
  ~BenchDevice();
  BenchDevice(const BenchDevice&) = delete;
  BenchDevice& operator=(const BenchDevice&) = delete;
  double time(const Graph& g, int repeats) const { return time_graph(g, *flush, stream, repeats); }
  std::string name;
  cudaStream_t stream = nullptr;
  double copy_gbps = 0;
  std::unique_ptr<L2Flush> flush;
};

}  // namespace quest
