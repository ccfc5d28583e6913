// Small helpers shared by the CUDA kernels: pointer alignment for 16-byte vector paths and a
// deterministic block-wide sum (the first stage of the two-stage reductions).
#pragma once

#include <cstdint>

namespace yolo::cuda {

// True when p may be read and written as 16-byte vectors.
inline bool aligned16(const void* p) {
  return (reinterpret_cast<uintptr_t>(p) & 15u) == 0;
}

// Sum of v over the block (blockDim.x a multiple of 32, at most 1024), in a fixed order; the
// result is valid in thread 0. Every thread of the block must call it; it may be called again in
// the same kernel (the closing barrier keeps the next call's writes after this call's reads).
__device__ __forceinline__ float block_sum(float v) {
  __shared__ float warp_sums[32];
  for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < int(blockDim.x >> 5) ? warp_sums[lane] : 0.0f;
    for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
  }
  __syncthreads();
  return v;
}

}  // namespace yolo::cuda
