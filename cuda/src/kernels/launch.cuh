// Programmatic dependent launch (Hopper): each kernel of a decode step may be scheduled
// while the one before it in the stream still runs, and waits in wait_for_previous() before
// reading what that one wrote, so launch latency and block ramp-up hide behind the previous
// kernel. On older GPUs the launches are ordinary and both calls are no-ops.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>

namespace quest {

// First in every kernel launched through launch(): nothing before it may read the previous
// kernel's output. It also lets the next kernel be scheduled, which is safe because that one
// waits here in turn for this one to finish.
__device__ inline void wait_for_previous() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  cudaGridDependencySynchronize();
  cudaTriggerProgrammaticLaunchCompletion();
#endif
}

inline bool hopper() {
  static const bool yes = [] {
    int dev = 0, major = 0;
    cudaGetDevice(&dev);
    cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev);
    return major >= 9;
  }();
  return yes;
}

// The launch, with `cluster` consecutive blocks along y forming a thread-block cluster
// (Hopper) when above 1.
template <typename... KArgs, typename... Args>
cudaError_t launch_in_clusters(unsigned cluster, void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                               Args... args) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cudaLaunchAttribute attr[2];
  unsigned n = 0;
  if (hopper()) {
    attr[n].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[n++].val.programmaticStreamSerializationAllowed = 1;
  }
  if (cluster > 1) {
    attr[n].id = cudaLaunchAttributeClusterDimension;
    attr[n++].val.clusterDim = {1, cluster, 1};
  }
  cfg.attrs = attr;
  cfg.numAttrs = n;
  return cudaLaunchKernelEx(&cfg, kernel, static_cast<KArgs>(args)...);
}

// Lets the kernel K take Bytes of dynamic shared memory (past the 48 KiB a launch gets
// unasked), asked once per kernel and size; the error, if any, again at each call.
template <auto K, size_t Bytes>
cudaError_t allow_shared_memory() {
  static const cudaError_t err = cudaFuncSetAttribute(K, cudaFuncAttributeMaxDynamicSharedMemorySize, int(Bytes));
  return err;
}

// Blocks of 256 threads for a grid-stride loop over n elements, at most 8192.
inline int blocks_for(size_t n) { return int(std::min<size_t>((n + 255) / 256, 8192)); }

template <typename... KArgs, typename... Args>
cudaError_t launch(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream, Args... args) {
  return launch_in_clusters(1, kernel, grid, block, smem, stream, args...);
}

}  // namespace quest
