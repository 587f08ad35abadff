// What the GPU code shares: errors turned into exceptions, owned device buffers, and the copy
// bandwidth every benchmark reports beside its times.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace quest {

inline void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear a sticky launch error so the next call reports its own
    throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(err));
  }
}

template <typename T>
struct DeviceBuffer {
  T* ptr = nullptr;
  size_t n = 0;
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t count) { resize(count); }
  ~DeviceBuffer() { cudaFree(ptr); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr(o.ptr), n(o.n) {
    o.ptr = nullptr;
    o.n = 0;
  }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    std::swap(ptr, o.ptr);
    std::swap(n, o.n);
    return *this;
  }
  // Drops the contents.
  void resize(size_t count) {
    cudaFree(ptr);
    ptr = nullptr;
    n = count;
    check(cudaMalloc(&ptr, std::max<size_t>(1, count) * sizeof(T)), "cudaMalloc");
  }
  void upload(const std::vector<T>& h) { check(cudaMemcpy(ptr, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice), "upload"); }
  std::vector<T> download() const {
    std::vector<T> h(n);
    check(cudaMemcpy(h.data(), ptr, n * sizeof(T), cudaMemcpyDeviceToHost), "download");
    return h;
  }
};

// Device-to-device copy of 1 GiB, bytes read plus written per second (median of 10).
double copy_bandwidth_gbps(cudaStream_t s);

}  // namespace quest
