// CUDA SiLU and sigmoid, forward and backward (twin of kernels/cpu/activation.cpp).
// One grid-stride element-wise kernel over the flat tensor, f32/f16/bf16 storage with f32 maths,
// 16-byte vector loads when every pointer is 16-byte aligned (4 f32 or 8 f16/bf16 per load) and a
// scalar loop for the tail. Launched on ctx.cuda().stream; capture-safe (no allocation, no sync).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "core/cuda_check.h"
#include "core/cuda_state.h"
#include "kernels/activation.h"
#include "kernels/cuda/common.cuh"

namespace yolo {
namespace {

using cuda::aligned16;

// N elements of T in one 16-byte load/store.
template <typename T>
struct alignas(16) Pack {
  static constexpr int N = 16 / sizeof(T);
  T v[N];
};

__device__ __forceinline__ float sigmoidf(float v) {
  return 1.0f / (1.0f + expf(-v));
}

struct SiluFwd {
  __device__ float operator()(float x, float) const { return x * sigmoidf(x); }
};
struct SiluBwd {  // (x, dy) -> dx
  __device__ float operator()(float x, float g) const {
    const float s = sigmoidf(x);
    return g * s * (1.0f + x * (1.0f - s));
  }
};
struct SigmoidFwd {
  __device__ float operator()(float x, float) const { return sigmoidf(x); }
};
struct SigmoidBwd {  // (y, dy) -> dx
  __device__ float operator()(float y, float g) const { return g * y * (1.0f - y); }
};

// out[i] = op(a[i], b[i]) for i < n; b is read only when kBinary. out may alias a or b.
// vectorised: every pointer is 16-byte aligned, so element blocks of Pack<T>::N are loaded whole.
template <typename T, bool kBinary, typename Op>
__global__ void map_kernel(const T* a, const T* b, T* out, int64_t n, bool vectorised, Op op) {
  constexpr int N = Pack<T>::N;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  const int64_t tid = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  int64_t done = 0;
  if (vectorised) {
    const int64_t packs = n / N;
    for (int64_t p = tid; p < packs; p += stride) {
      const Pack<T> va = reinterpret_cast<const Pack<T>*>(a)[p];
      Pack<T> vb;
      if (kBinary) vb = reinterpret_cast<const Pack<T>*>(b)[p];
      Pack<T> vo;
#pragma unroll
      for (int j = 0; j < N; ++j) vo.v[j] = T(op(float(va.v[j]), kBinary ? float(vb.v[j]) : 0.0f));
      reinterpret_cast<Pack<T>*>(out)[p] = vo;
    }
    done = packs * N;
  }
  for (int64_t i = done + tid; i < n; i += stride)
    out[i] = T(op(float(a[i]), kBinary ? float(b[i]) : 0.0f));
}

template <typename T, bool kBinary, typename Op>
void launch_typed(Context& ctx, const Tensor& a, const Tensor& b, const Tensor& out, Op op) {
  const int64_t n = a.numel();
  if (n == 0) return;
  const bool vectorised = aligned16(a.raw()) && aligned16(b.raw()) && aligned16(out.raw());
  const int64_t work = vectorised ? (n + Pack<T>::N - 1) / Pack<T>::N : n;
  constexpr int kThreads = 256;
  const int64_t max_blocks = int64_t(ctx.cuda().props.multiProcessorCount) * 16;
  int64_t blocks = (work + kThreads - 1) / kThreads;
  if (blocks > max_blocks) blocks = max_blocks;
  map_kernel<T, kBinary><<<int(blocks), kThreads, 0, ctx.cuda().stream>>>(
      static_cast<const T*>(a.raw()), static_cast<const T*>(b.raw()), static_cast<T*>(out.raw()), n,
      vectorised, op);
  YOLO_LAUNCH_CHECK();
}

template <bool kBinary, typename Op>
void launch(Context& ctx, const Tensor& a, const Tensor& b, const Tensor& out, Op op) {
  switch (a.dtype()) {
    case DType::f32:
      launch_typed<float, kBinary>(ctx, a, b, out, op);
      break;
    case DType::f16:
      launch_typed<__half, kBinary>(ctx, a, b, out, op);
      break;
    case DType::bf16:
      launch_typed<__nv_bfloat16, kBinary>(ctx, a, b, out, op);
      break;
    default:
      YOLO_FAIL("activation (cuda): unsupported dtype " << dtype_name(a.dtype()));
  }
}

}  // namespace

void silu_fwd_cuda(Context& ctx, const Tensor& x, const Tensor& y) {
  launch<false>(ctx, x, x, y, SiluFwd{});
}

void silu_bwd_cuda(Context& ctx, const Tensor& x, const Tensor& dy, const Tensor& dx) {
  launch<true>(ctx, x, dy, dx, SiluBwd{});
}

void sigmoid_fwd_cuda(Context& ctx, const Tensor& x, const Tensor& y) {
  launch<false>(ctx, x, x, y, SigmoidFwd{});
}

void sigmoid_bwd_cuda(Context& ctx, const Tensor& y, const Tensor& dy, const Tensor& dx) {
  launch<true>(ctx, y, dy, dx, SigmoidBwd{});
}

}  // namespace yolo
