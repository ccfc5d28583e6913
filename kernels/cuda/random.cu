// CUDA random fills; same element mapping as kernels/cpu/random.cpp, so the bits agree.
#include "core/cuda_check.h"
#include "core/cuda_state.h"
#include "core/philox.h"
#include "kernels/random.h"

namespace yolo {
namespace {

__global__ void fill_uniform_kernel(float* p, int64_t n, uint64_t seed, uint64_t offset, float lo,
                                    float hi) {
  const int64_t blocks = (n + 3) / 4;
  for (int64_t b = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; b < blocks;
       b += int64_t(gridDim.x) * blockDim.x) {
    const Philox4 r = philox_block(seed, offset, uint64_t(b));
#pragma unroll
    for (int j = 0; j < 4; ++j)
      if (b * 4 + j < n) p[b * 4 + j] = lo + (hi - lo) * philox_uniform(r.v[j]);
  }
}

__global__ void fill_normal_kernel(float* p, int64_t n, uint64_t seed, uint64_t offset, float mean,
                                   float std) {
  const int64_t blocks = (n + 3) / 4;
  for (int64_t b = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; b < blocks;
       b += int64_t(gridDim.x) * blockDim.x) {
    const Philox4 r = philox_block(seed, offset, uint64_t(b));
    float z[4];
    philox_normal2(r.v[0], r.v[1], z[0], z[1]);
    philox_normal2(r.v[2], r.v[3], z[2], z[3]);
#pragma unroll
    for (int j = 0; j < 4; ++j)
      if (b * 4 + j < n) p[b * 4 + j] = mean + std * z[j];
  }
}

int grid_for(int64_t work, int threads) {
  const int64_t g = (work + threads - 1) / threads;
  return static_cast<int>(g < 65535 * 16 ? (g > 0 ? g : 1) : 65535 * 16);
}

}  // namespace

void fill_uniform_cuda(Context& ctx, const Tensor& t, uint64_t seed, uint64_t offset, float lo,
                       float hi) {
  const int64_t n = t.numel();
  if (n == 0) return;
  fill_uniform_kernel<<<grid_for((n + 3) / 4, 256), 256, 0, ctx.cuda().stream>>>(
      t.data<float>(), n, seed, offset, lo, hi);
  YOLO_LAUNCH_CHECK();
}

void fill_normal_cuda(Context& ctx, const Tensor& t, uint64_t seed, uint64_t offset, float mean,
                      float std) {
  const int64_t n = t.numel();
  if (n == 0) return;
  fill_normal_kernel<<<grid_for((n + 3) / 4, 256), 256, 0, ctx.cuda().stream>>>(
      t.data<float>(), n, seed, offset, mean, std);
  YOLO_LAUNCH_CHECK();
}

}  // namespace yolo
