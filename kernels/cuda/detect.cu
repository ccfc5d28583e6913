// CUDA Detect decode (CPU twin: kernels/cpu/detect.cpp). One thread per output element, reading
// x in f32 whatever its storage type and writing f32 rows in the reference's (anchor, y, x) order.
// Anchors are read from the device buffer, so a captured graph sees updated anchors.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "core/cuda_check.h"
#include "core/cuda_state.h"
#include "kernels/cuda/convert.cuh"
#include "kernels/detect.h"

namespace yolo {
namespace {

constexpr int kThreads = 256;

// out element e = ((n * na + a) * ny + y) * nx + x) * no + k of this level's block of rows.
template <typename T>
__global__ void decode_kernel(const T* x, const float* anchors, float stride, float* out,
                              int64_t total, int ny, int nx, int na, int no, int64_t rows_out,
                              int64_t row_offset) {
  const int64_t step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total; e += step) {
    const int k = int(e % no);
    int64_t r = e / no;
    const int xi = int(r % nx);
    r /= nx;
    const int y = int(r % ny);
    r /= ny;
    const int a = int(r % na);
    const int64_t n = r / na;
    const float v = cuda::to_f32(x[(((n * ny + y) * nx + xi) * na + a) * no + k]);
    float s = 1.0f / (1.0f + expf(-v));
    if (k < 2) {
      const float cell = float(k == 0 ? xi : y) - 0.5f;
      s = (s * 2.0f + cell) * stride;
    } else if (k < 4) {
      const float t = s * 2.0f;
      s = (t * t) * (anchors[2 * a + (k - 2)] * stride);
    }
    out[(n * rows_out + row_offset + (int64_t(a) * ny + y) * nx + xi) * no + k] = s;
  }
}

template <typename T>
void launch(Context& ctx, const Tensor& x, const Tensor& anchors, double stride, const Tensor& out,
            int64_t row_offset) {
  const int ny = int(x.dim(1)), nx = int(x.dim(2));
  const int na = int(anchors.dim(0)), no = int(out.dim(2));
  const int64_t total = x.numel();
  if (total == 0) return;
  const int64_t blocks64 = (total + kThreads - 1) / kThreads;
  const int blocks = int(blocks64 < 65535 * 16 ? blocks64 : 65535 * 16);
  decode_kernel<T><<<blocks, kThreads, 0, ctx.cuda().stream>>>(
      static_cast<const T*>(x.raw()), anchors.data<float>(), float(stride), out.data<float>(),
      total, ny, nx, na, no, out.dim(1), row_offset);
  YOLO_LAUNCH_CHECK();
}

}  // namespace

void detect_decode_cuda(Context& ctx, const Tensor& x, const Tensor& anchors, double stride,
                        const Tensor& out, int64_t row_offset) {
  switch (x.dtype()) {
    case DType::f16:
      launch<__half>(ctx, x, anchors, stride, out, row_offset);
      break;
    case DType::bf16:
      launch<__nv_bfloat16>(ctx, x, anchors, stride, out, row_offset);
      break;
    default:
      launch<float>(ctx, x, anchors, stride, out, row_offset);
      break;
  }
}

}  // namespace yolo
