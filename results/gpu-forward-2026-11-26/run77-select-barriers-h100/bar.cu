// The barrier forms whose SASS run 77 printed (sass-barriers.txt): nvcc -arch=sm_90 -cubin.
#include <cooperative_groups.h>
__global__ void __cluster_dims__(2,1,1) k_sync(float* o) {
  __shared__ float s[128];
  s[threadIdx.x] = threadIdx.x;
  cooperative_groups::this_cluster().sync();
  o[threadIdx.x] = *cooperative_groups::this_cluster().map_shared_rank(&s[threadIdx.x], 1);
}
__global__ void __cluster_dims__(2,1,1) k_fence(float* o) {
  __shared__ float s[128];
  s[threadIdx.x] = threadIdx.x;
  asm volatile("fence.acq_rel.cluster;\nbarrier.cluster.arrive.relaxed.aligned;\nbarrier.cluster.wait.aligned;" ::: "memory");
  o[threadIdx.x] = *cooperative_groups::this_cluster().map_shared_rank(&s[threadIdx.x], 1);
}
__global__ void __cluster_dims__(2,1,1) k_relax(float* o) {
  __shared__ float s[128];
  s[threadIdx.x] = threadIdx.x;
  __syncthreads();
  asm volatile("barrier.cluster.arrive.relaxed.aligned;\nbarrier.cluster.wait.aligned;" ::: "memory");
  o[threadIdx.x] = *cooperative_groups::this_cluster().map_shared_rank(&s[threadIdx.x], 1);
}
__global__ void __cluster_dims__(2,1,1) k_mbar_init(float* o) {
  __shared__ float s[128];
  s[threadIdx.x] = threadIdx.x;
  asm volatile("fence.mbarrier_init.release.cluster;\nbarrier.cluster.arrive.relaxed.aligned;\nbarrier.cluster.wait.aligned;" ::: "memory");
  o[threadIdx.x] = *cooperative_groups::this_cluster().map_shared_rank(&s[threadIdx.x], 1);
}
