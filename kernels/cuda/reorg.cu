// CUDA space-to-depth and its inverse (CPU twin: kernels/cpu/reorg.cpp). A pure permutation:
// one thread per packed element, 16-byte words when C allows, else one element per step.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "core/cuda_check.h"
#include "core/cuda_state.h"
#include "kernels/reorg.h"

namespace yolo {
namespace {

constexpr int kThreads = 256;

// Word w of packed tensor (N, OH, OW, 4 * CW) <-> full tensor (N, 2 OH, 2 OW, CW) words.
template <typename Word, bool kForward>
__global__ void move_kernel(Word* full, Word* packed, int64_t total, int OH, int OW, int64_t CW) {
  const int64_t step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total; e += step) {
    const int64_t c = e % CW;
    int64_t r = e / CW;
    const int b = int(r % 4);
    r /= 4;
    const int64_t j = r % OW;
    r /= OW;
    const int64_t i = r % OH;
    const int64_t n = r / OH;
    const int dh = b & 1, dw = b >> 1;  // blocks (0,0), (1,0), (0,1), (1,1)
    const int64_t f = ((n * 2 * OH + 2 * i + dh) * 2 * OW + 2 * j + dw) * CW + c;
    if (kForward) {
      packed[e] = full[f];
    } else {
      full[f] = packed[e];
    }
  }
}

template <bool kForward>
void launch(Context& ctx, const Tensor& full, const Tensor& packed) {
  const int OH = int(full.dim(1) / 2), OW = int(full.dim(2) / 2);
  const int64_t row_bytes = full.dim(3) * int64_t(dtype_size(full.dtype()));
  const bool aligned = row_bytes % 16 == 0 && reinterpret_cast<uintptr_t>(full.raw()) % 16 == 0 &&
                       reinterpret_cast<uintptr_t>(packed.raw()) % 16 == 0;
  const int64_t word = aligned ? 16 : int64_t(dtype_size(full.dtype()));
  const int64_t CW = row_bytes / word;
  const int64_t total = packed.nbytes() / word;
  if (total == 0) return;
  const int64_t blocks64 = (total + kThreads - 1) / kThreads;
  const int blocks = int(blocks64 < 65535 * 16 ? blocks64 : 65535 * 16);
  cudaStream_t s = ctx.cuda().stream;
  if (aligned) {
    move_kernel<uint4, kForward><<<blocks, kThreads, 0, s>>>(
        static_cast<uint4*>(full.raw()), static_cast<uint4*>(packed.raw()), total, OH, OW, CW);
  } else if (word == 4) {
    move_kernel<uint32_t, kForward><<<blocks, kThreads, 0, s>>>(
        static_cast<uint32_t*>(full.raw()), static_cast<uint32_t*>(packed.raw()), total, OH, OW, CW);
  } else {
    move_kernel<uint16_t, kForward><<<blocks, kThreads, 0, s>>>(
        static_cast<uint16_t*>(full.raw()), static_cast<uint16_t*>(packed.raw()), total, OH, OW, CW);
  }
  YOLO_LAUNCH_CHECK();
}

}  // namespace

void space_to_depth_fwd_cuda(Context& ctx, const Tensor& x, const Tensor& y) {
  launch<true>(ctx, x, y);
}

void space_to_depth_bwd_cuda(Context& ctx, const Tensor& dy, const Tensor& dx) {
  launch<false>(ctx, dx, dy);
}

}  // namespace yolo
