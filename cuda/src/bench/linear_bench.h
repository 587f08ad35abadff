// The decode step's linear layers timed alone on the GPU (issue #23's GEMV against the copy
// rate): plain C++, so the binding builds the same with or without nvcc.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace quest {

struct LinearShape {
  std::string name;  // qkv, o, gate_up, down, lm_head
  int in = 0, out = 0;
  bool int4 = false;  // 4-bit weights (AWQ's layout as the engine unpacks it), else fp16
  bool per_layer = true;  // one in each layer (not the LM head)
};

struct LinearBenchOptions {
  std::vector<LinearShape> shapes;
  std::vector<int> rows;  // decode batch sizes
  int group = 128;        // the 4-bit layers' quantization group
  int layers = 0;         // also every per-layer shape of this many layers, each its own weights, in one graph (0: not)
  int repeats = 50;
  uint64_t seed = 0;
};

struct LinearBenchRow {
  std::string name;  // a shape's, or "layers" for the per-layer shapes of every layer back to back
  int in = 0, out = 0, rows = 0;
  std::string kernel;   // which GEMV ran
  double us = 0;        // the layer's product alone (a 4-bit one's input already staged), median of replays
  double staged_us = 0; // 4-bit layers: with the staging launch of their input before them (a plain row to fp16); 16-bit: us
  double bytes = 0;     // weights (and a 4-bit layer's scales and zeros), input rows and output rows
};

struct LinearBenchResult {
  std::string device;
  double copy_gbps = 0;  // device-to-device copy, bytes read plus written, same run
  std::vector<LinearBenchRow> rows;
};

LinearBenchResult bench_linear(const LinearBenchOptions& o);

}  // namespace quest
