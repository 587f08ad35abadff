// Reads tensor bytes out of safetensors files (memory-mapped) into the engine's fp32 host
// copies, checking every claim the header makes against the file itself.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/int4.h"
#include "engine/model_spec.h"

namespace quest {

class WeightReader {
 public:
  explicit WeightReader(const ModelSpec& spec);
  ~WeightReader();
  // The tensor `name` as fp32, after checking it exists and has exactly `shape`.
  // Throws std::runtime_error naming the file and tensor when anything is off.
  std::vector<float> read(const std::string& name, const std::vector<int64_t>& shape);
  // The packed 4-bit tensors of the linear layer `prefix` (e.g. model.layers.0.mlp.down_proj)
  // under spec.quant, drawn at random for a random-weight preset; empty (no qweight) where the
  // layer is stored as `prefix`.weight.
  PackedLinear read_packed(const std::string& prefix, int64_t out, int64_t in);
  bool has(const std::string& name) const;

 private:
  struct Mapping;
  const Mapping& map(const std::string& file);
  // The tensor's bytes after checking its shape and extent against the file.
  const uint8_t* bytes(const std::string& name, const std::vector<int64_t>& shape, const TensorRef*& ref);
  std::vector<uint32_t> read_i32(const std::string& name, const std::vector<int64_t>& shape);
  uint64_t next_random();
  const ModelSpec& spec_;
  std::vector<std::unique_ptr<Mapping>> maps_;
  uint64_t random_state_;
};

float bf16_to_f32(uint16_t v);
float f16_to_f32(uint16_t v);
uint16_t f32_to_bf16(float v);
size_t dtype_size(DType t);
const char* dtype_name(DType t);

}  // namespace quest
