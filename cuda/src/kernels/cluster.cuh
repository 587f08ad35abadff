// Moving data between the blocks of a thread-block cluster (Hopper) without a cluster-wide
// release. cluster.sync()'s arrive is a release, a MEMBAR.ALL.GPU in SASS (docs/quest-step.md; so is
// fence.acq_rel.cluster), which waits for the block's memory traffic to drain. Instead a
// block sends its data into the peers' shared memory through the async proxy, and each peer
// waits on an mbarrier of its own for the bytes to land: for the fused Quest step's scores,
// 28.9-29.4 us at 32K against 30.9-31.0 with cluster.sync() and reads of the peers' shared
// memory (H100). Below sm_90 the calls are empty: the kernels that use them launch in
// clusters on Hopper only.
#pragma once
#include <cstdint>

namespace quest {

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define QUEST_CLUSTER_ASM(...) asm volatile(__VA_ARGS__)
#else
#define QUEST_CLUSTER_ASM(...) \
  do {                         \
  } while (0)
#endif

__device__ inline uint32_t smem_addr(const void* p) { return static_cast<uint32_t>(__cvta_generic_to_shared(p)); }

// The address of the same shared variable in the cluster's block `rank`.
__device__ inline uint32_t peer_addr(const void* p, int rank) {
  uint32_t out = 0;
  QUEST_CLUSTER_ASM("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(out) : "r"(smem_addr(p)), "r"(rank));
  return out;
}

// One thread: an mbarrier whose one phase completes once `bytes` have been sent to this
// block. The fence makes it visible to the peers at the cluster barrier that comes before any
// of them sends.
__device__ inline void expect_bytes(uint64_t* bar, uint32_t bytes) {
  QUEST_CLUSTER_ASM("mbarrier.init.shared::cta.b64 [%0], 1;" ::"r"(smem_addr(bar)));
  QUEST_CLUSTER_ASM("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(smem_addr(bar)), "r"(bytes) : "memory");
  QUEST_CLUSTER_ASM("fence.mbarrier_init.release.cluster;" ::: "memory");
}

__device__ inline void wait_bytes(uint64_t* bar) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  uint32_t done = 0;
  while (!done)
    asm volatile("{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], 0;\nselp.u32 %0, 1, 0, p;\n}"
                 : "=r"(done)
                 : "r"(smem_addr(bar))
                 : "memory");
#endif
}

// Every thread of every block of the cluster: an arrival that orders no memory (the mbarriers
// order the data), and later the wait for all of them.
__device__ inline void cluster_arrive_relaxed() { QUEST_CLUSTER_ASM("barrier.cluster.arrive.relaxed.aligned;" ::: "memory"); }
__device__ inline void cluster_wait() { QUEST_CLUSTER_ASM("barrier.cluster.wait.aligned;" ::: "memory"); }

// Each thread that wrote shared memory that send_bytes will read, then a block barrier.
__device__ inline void shared_to_async() { QUEST_CLUSTER_ASM("fence.proxy.async.shared::cta;" ::: "memory"); }

// `bytes` (a multiple of 16, both ends 16-byte aligned) from this block's `src` to the
// variable `dst` of block `rank`, counted by that block's mbarrier `bar`.
__device__ inline void send_bytes(const void* src, void* dst, uint64_t* bar, int rank, uint32_t bytes) {
  QUEST_CLUSTER_ASM("cp.async.bulk.shared::cluster.shared::cta.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];" ::"r"(peer_addr(dst, rank)),
                    "r"(smem_addr(src)), "r"(bytes), "r"(peer_addr(bar, rank))
                    : "memory");
}

// One float from a register to `dst` of block `rank`, counted by that block's mbarrier `bar`.
__device__ inline void send_float(float* dst, float v, uint64_t* bar, int rank) {
  QUEST_CLUSTER_ASM("st.async.shared::cluster.mbarrier::complete_tx::bytes.b32 [%0], %1, [%2];" ::"r"(peer_addr(dst, rank)),
                    "r"(__float_as_uint(v)), "r"(peer_addr(bar, rank))
                    : "memory");
}

#undef QUEST_CLUSTER_ASM

}  // namespace quest
