#include "engine/weights.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <sstream>
#include <stdexcept>

namespace quest {

struct WeightReader::Mapping {
  std::string file;
  const uint8_t* data = nullptr;
  size_t size = 0;
  ~Mapping() {
    if (data) munmap(const_cast<uint8_t*>(data), size);
  }
};

size_t dtype_size(DType t) { return t == DType::F32 || t == DType::I32 ? 4 : 2; }
const char* dtype_name(DType t) {
  return t == DType::F32 ? "F32" : t == DType::F16 ? "F16" : t == DType::BF16 ? "BF16" : "I32";
}

float bf16_to_f32(uint16_t v) {
  uint32_t bits = static_cast<uint32_t>(v) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t f32_to_bf16(float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, 4);
  bits += 0x7fff + ((bits >> 16) & 1);  // round to nearest even
  return static_cast<uint16_t>(bits >> 16);
}

float f16_to_f32(uint16_t h) {
  uint32_t sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      exp = 127 - 15 + 1;
      while (!(mant & 0x400)) {
        mant <<= 1;
        --exp;
      }
      bits = sign | (exp << 23) | ((mant & 0x3ff) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

static std::string shape_str(const std::vector<int64_t>& s) {
  std::ostringstream o;
  o << "[";
  for (size_t i = 0; i < s.size(); ++i) o << (i ? ", " : "") << s[i];
  o << "]";
  return o.str();
}

WeightReader::WeightReader(const ModelSpec& spec) : spec_(spec), random_state_(spec.random_seed * 2654435761u + 1) {}
WeightReader::~WeightReader() = default;

bool WeightReader::has(const std::string& name) const {
  return spec_.random_weights || spec_.tensors.count(name) > 0;
}

const WeightReader::Mapping& WeightReader::map(const std::string& file) {
  for (auto& m : maps_)
    if (m->file == file) return *m;
  int fd = ::open(file.c_str(), O_RDONLY);
  if (fd < 0) throw std::runtime_error(file + ": cannot open: " + std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    ::close(fd);
    throw std::runtime_error(file + ": cannot stat");
  }
  auto m = std::make_unique<Mapping>();
  m->file = file;
  m->size = static_cast<size_t>(st.st_size);
  if (m->size > 0) {
    void* p = mmap(nullptr, m->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      ::close(fd);
      throw std::runtime_error(file + ": mmap failed: " + std::strerror(errno));
    }
    m->data = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
  maps_.push_back(std::move(m));
  return *maps_.back();
}

// Whether a 32- or 16-bit float's bits hold NaN or Inf (all exponent bits set).
static bool nonfinite32(uint32_t bits) { return (bits & 0x7f800000u) == 0x7f800000u; }
static bool nonfinite16(uint16_t h, DType t) {
  return t == DType::BF16 ? (h & 0x7f80u) == 0x7f80u : (h & 0x7c00u) == 0x7c00u;
}

const uint8_t* WeightReader::bytes(const std::string& name, const std::vector<int64_t>& shape, const TensorRef*& ref) {
  int64_t count = 1;
  for (auto d : shape) count *= d;
  auto it = spec_.tensors.find(name);
  if (it == spec_.tensors.end()) throw std::runtime_error("missing tensor " + name);
  const TensorRef& t = it->second;
  // Shape and extent are checked before anything is allocated: a config.json that claims a
  // huge shape then fails on the mismatch, not on the allocation.
  if (t.shape != shape)
    throw std::runtime_error(t.file + ": tensor " + name + " has shape " + shape_str(t.shape) + ", expected " +
                             shape_str(shape));
  if (t.nbytes != static_cast<uint64_t>(count) * dtype_size(t.dtype))
    throw std::runtime_error(t.file + ": tensor " + name + " spans " + std::to_string(t.nbytes) + " bytes, but " +
                             dtype_name(t.dtype) + shape_str(shape) + " needs " +
                             std::to_string(count * dtype_size(t.dtype)));
  const Mapping& m = map(t.file);
  if (t.offset > m.size || t.nbytes > m.size - t.offset)
    throw std::runtime_error(t.file + ": tensor " + name + " ends at byte " + std::to_string(t.offset + t.nbytes) +
                             ", past the end of the file (" + std::to_string(m.size) + " bytes)");
  ref = &t;
  return m.data + t.offset;
}

std::vector<uint32_t> WeightReader::read_i32(const std::string& name, const std::vector<int64_t>& shape) {
  const TensorRef* t = nullptr;
  const uint8_t* src = bytes(name, shape, t);
  if (t->dtype != DType::I32) throw std::runtime_error(t->file + ": tensor " + name + " is " + dtype_name(t->dtype) + ", expected packed I32");
  std::vector<uint32_t> out(t->nbytes / 4);
  std::memcpy(out.data(), src, t->nbytes);
  return out;
}

PackedLinear WeightReader::read_packed(const std::string& prefix, int64_t out, int64_t in) {
  const QuantSpec& q = spec_.quant;
  PackedLinear p;
  if (q.method.empty() || (!spec_.random_weights && !spec_.tensors.count(prefix + ".qweight"))) return p;
  p.in = int(in);
  p.out = int(out);
  p.group = q.group_size == -1 ? p.in : q.group_size;
  if (p.group <= 0 || in % p.group || in % 8 || out % 8)
    throw std::runtime_error(prefix + ": a " + std::to_string(out) + "x" + std::to_string(in) +
                             " layer does not split into groups of " + std::to_string(p.group) + " and words of 8");
  const int64_t groups = in / p.group;
  if (spec_.random_weights) {
    // Random nibbles around a zero of 8 and one fp16 scale: the uniform spread of read()'s
    // random weights (+-0.035), in the packed bytes a decode step streams.
    p.qweight.resize(size_t(in) * out / 8);
    for (auto& w : p.qweight) w = uint32_t(next_random() >> 32);
    p.qzeros.assign(size_t(groups) * out / 8, q.method == "awq" || q.zero_offset == 0 ? 0x88888888u : 0x77777777u);
    p.scales.assign(size_t(groups) * out, f16_to_f32(0x1CBBu));  // fp16 0.00462: 0.02 * sqrt(3) / 7.5
    return p;
  }
  p.qweight = read_i32(prefix + ".qweight", q.method == "awq" ? std::vector<int64_t>{in, out / 8} : std::vector<int64_t>{in / 8, out});
  p.qzeros = read_i32(prefix + ".qzeros", {groups, out / 8});
  p.scales = read(prefix + ".scales", {groups, out});
  if (q.method == "gptq") {
    // desc_act false: input i is in group i / group_size; any other g_idx is act-order.
    std::vector<uint32_t> g_idx = read_i32(prefix + ".g_idx", {in});
    for (int64_t i = 0; i < in; ++i)
      if (g_idx[i] != uint32_t(i / p.group))
        throw std::runtime_error(spec_.tensors.at(prefix + ".g_idx").file + ": tensor " + prefix + ".g_idx[" + std::to_string(i) + "] is " +
                                 std::to_string(int32_t(g_idx[i])) + ", not " + std::to_string(i / p.group) +
                                 ": act-order (desc_act) checkpoints are not served");
  }
  return p;
}

uint64_t WeightReader::next_random() {
  random_state_ ^= random_state_ << 13;
  random_state_ ^= random_state_ >> 7;
  random_state_ ^= random_state_ << 17;
  return random_state_;
}

std::vector<float> WeightReader::read(const std::string& name, const std::vector<int64_t>& shape) {
  int64_t count = 1;
  for (auto d : shape) count *= d;
  if (spec_.random_weights) {
    std::vector<float> out(static_cast<size_t>(count));
    // Norm weights at one, everything else small and random (xorshift + Box-Muller):
    // enough for timing, never meant to mean anything.
    bool is_norm = name.find("norm") != std::string::npos;
    for (auto& v : out) {
      if (is_norm) {
        v = 1.0f;
        continue;
      }
      double u = ((next_random() >> 11) + 0.5) / 9007199254740992.0;
      v = static_cast<float>(0.02 * (2.0 * u - 1.0) * 1.7320508);
    }
    return out;
  }
  const TensorRef* ref = nullptr;
  const uint8_t* src = bytes(name, shape, ref);
  const TensorRef& t = *ref;
  if (t.dtype == DType::I32) throw std::runtime_error(t.file + ": tensor " + name + " is I32, not a float tensor");
  std::vector<float> out(static_cast<size_t>(count));
  // NaN/Inf weights are caught here, in the one pass over the bytes, rather than as a run
  // that scores 0.
  bool bad = false;
  for (int64_t i = 0; i < count; ++i) {
    if (t.dtype == DType::F32) {
      uint32_t bits;
      std::memcpy(&bits, src + 4 * i, 4);
      bad |= nonfinite32(bits);
      std::memcpy(&out[i], &bits, 4);
    } else {
      uint16_t h;
      std::memcpy(&h, src + 2 * i, 2);
      bad |= nonfinite16(h, t.dtype);
      out[i] = t.dtype == DType::BF16 ? bf16_to_f32(h) : f16_to_f32(h);
    }
  }
  if (bad) {
    int64_t first = 0;
    while (first < count && std::isfinite(out[first])) ++first;
    throw std::runtime_error(t.file + ": tensor " + name + " holds NaN or Inf values (the first at element " +
                             std::to_string(first) + " of " + std::to_string(count) + ")");
  }
  return out;
}

}  // namespace quest
