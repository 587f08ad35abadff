// Reads tensor bytes out of safetensors files (memory-mapped) into the engine's fp32 host
// copies, checking every claim the header makes against the file itself.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/model_spec.h"

namespace quest {

class WeightReader {
 public:
  explicit WeightReader(const ModelSpec& spec);
  ~WeightReader();
  // The tensor `name` as fp32, after checking it exists and has exactly `shape`.
  // Throws std::runtime_error naming the file and tensor when anything is off.
  std::vector<float> read(const std::string& name, const std::vector<int64_t>& shape);
  bool has(const std::string& name) const;

 private:
  struct Mapping;
  const Mapping& map(const std::string& file);
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
