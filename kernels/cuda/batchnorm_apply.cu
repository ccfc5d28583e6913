// CUDA batch-norm element-wise passes and the public launchers of kernels/batchnorm.h (twin of
// kernels/cpu/batchnorm.cpp): the fused normalise + affine + SiLU forward (training and eval) and
// the dx pass of backward. x, y, dy, dx: (M, C) row-major in f32/f16/bf16, 16-byte vector access
// along C when C and the pointers allow; per-channel tensors (C) f32; maths in f32. The column
// reductions they need live in kernels/cuda/batchnorm_stats.cu (bn_detail, declared below).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>

#include "core/cuda_check.h"
#include "core/cuda_state.h"
#include "kernels/batchnorm.h"

namespace yolo {
namespace bn_detail {
// Defined in kernels/cuda/batchnorm_stats.cu.
// Batch mean and biased variance of x (M, C) -> save_mean, save_invstd (C); updates running_mean
// and running_var (C) in place with the unbiased variance and momentum.
void batch_stats_cuda(Context& ctx, const Tensor& x, const Tensor& running_mean,
                      const Tensor& running_var, const Tensor& save_mean,
                      const Tensor& save_invstd, double momentum, double eps);
// sums (2, C) f32 <- [sum dz, sum dz * x_hat] over rows; dbeta, dgamma (C) <- (or +=) the same.
void grad_sums_cuda(Context& ctx, const Tensor& x, const Tensor& dy, const Tensor& gamma,
                    const Tensor& beta, const Tensor& save_mean, const Tensor& save_invstd,
                    const Tensor& sums, const Tensor& dgamma, const Tensor& dbeta, Activation act,
                    bool accumulate_params);
}  // namespace bn_detail

namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ float to_f32(float v) { return v; }
__device__ __forceinline__ float to_f32(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_f32(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T>
__device__ __forceinline__ T from_f32(float v);
template <>
__device__ __forceinline__ float from_f32<float>(float v) { return v; }
template <>
__device__ __forceinline__ __half from_f32<__half>(float v) { return __float2half_rn(v); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

// V consecutive elements: one 16-byte access when V * sizeof(T) == 16, else V scalar ones.
template <typename T, int V>
struct alignas(V * sizeof(T) == 16 ? 16 : alignof(T)) Pack {
  T v[V];
};
template <typename T, int V>
__device__ __forceinline__ void load(const T* p, float* out) {
  const Pack<T, V> k = *reinterpret_cast<const Pack<T, V>*>(p);
#pragma unroll
  for (int j = 0; j < V; ++j) out[j] = to_f32(k.v[j]);
}
template <typename T, int V>
__device__ __forceinline__ void store(T* p, const float* in) {
  Pack<T, V> k;
#pragma unroll
  for (int j = 0; j < V; ++j) k.v[j] = from_f32<T>(in[j]);
  *reinterpret_cast<Pack<T, V>*>(p) = k;
}

__device__ __forceinline__ float sigmoidf(float z) { return 1.0f / (1.0f + expf(-z)); }

// Per-channel inputs of the forward apply: invstd[c] directly (training), or 1 / sqrt(var[c] + eps)
// from the running variance (eval, var_not_invstd).
struct ApplyParams {
  const float* mean;
  const float* invstd_or_var;
  const float* gamma;
  const float* beta;
  bool var_not_invstd;
  float eps;
  bool silu;
};

// y = act(gamma * (x - mean) * invstd + beta), V elements (all in one row) per step, grid-stride.
// y may alias x.
template <typename T, int V>
__global__ void apply_kernel(const T* x, T* y, int64_t n, int c, ApplyParams p) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) * V; i < n; i += stride * V) {
    const int c0 = int(i % c);
    float v[V];
    load<T, V>(x + i, v);
#pragma unroll
    for (int j = 0; j < V; ++j) {
      const int ch = c0 + j;
      const float s = p.invstd_or_var[ch];
      const float invstd = p.var_not_invstd ? rsqrtf(s + p.eps) : s;
      const float z = (v[j] - p.mean[ch]) * (p.gamma[ch] * invstd) + p.beta[ch];
      v[j] = p.silu ? z * sigmoidf(z) : z;
    }
    store<T, V>(y + i, v);
  }
}

// dx = gamma * invstd * (dz - sum_dz / M - x_hat * sum_dz_xhat / M), dz recomputed as in
// grad_sums_kernel. sums: (2, C) from bn_detail::grad_sums_cuda. dx may alias dy.
template <typename T, int V>
__global__ void dx_kernel(const T* x, const T* dy, T* dx, int64_t n, int c, float inv_m,
                          const float* __restrict__ mean, const float* __restrict__ invstd,
                          const float* __restrict__ gamma, const float* __restrict__ beta,
                          const float* __restrict__ sums, bool silu) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) * V; i < n; i += stride * V) {
    const int c0 = int(i % c);
    float xv[V], g[V];
    load<T, V>(x + i, xv);
    load<T, V>(dy + i, g);
#pragma unroll
    for (int j = 0; j < V; ++j) {
      const int ch = c0 + j;
      const float xhat = (xv[j] - mean[ch]) * invstd[ch];
      float dz = g[j];
      if (silu) {
        const float z = gamma[ch] * xhat + beta[ch];
        const float s = sigmoidf(z);
        dz *= s * (1.0f + z * (1.0f - s));
      }
      g[j] = gamma[ch] * invstd[ch] * (dz - inv_m * sums[ch] - xhat * (inv_m * sums[c + ch]));
    }
    store<T, V>(dx + i, g);
  }
}

// True when C is a multiple of 16 / sizeof(T) and every pointer is 16-byte aligned.
template <typename T>
bool vectorisable(int64_t c, std::initializer_list<const void*> ptrs) {
  if (c % (16 / sizeof(T)) != 0) return false;
  return std::all_of(ptrs.begin(), ptrs.end(),
                     [](const void* q) { return reinterpret_cast<uintptr_t>(q) % 16 == 0; });
}

int elementwise_blocks(Context& ctx, int64_t n, int vec) {
  const int64_t steps = (n + vec - 1) / vec;
  const int64_t cap = int64_t(ctx.cuda().props.multiProcessorCount) * 16;
  return int(std::clamp<int64_t>((steps + kThreads - 1) / kThreads, 1, cap));
}

template <typename T>
void apply_typed(Context& ctx, const Tensor& x, const Tensor& y, const ApplyParams& p) {
  const int64_t n = x.numel();
  const int c = int(x.dim(-1));
  const T* px = static_cast<const T*>(x.raw());
  T* py = static_cast<T*>(y.raw());
  constexpr int kVec = 16 / sizeof(T);
  cudaStream_t stream = ctx.cuda().stream;
  if (vectorisable<T>(c, {px, py}))
    apply_kernel<T, kVec><<<elementwise_blocks(ctx, n, kVec), kThreads, 0, stream>>>(px, py, n,
                                                                                      c, p);
  else
    apply_kernel<T, 1><<<elementwise_blocks(ctx, n, 1), kThreads, 0, stream>>>(px, py, n, c, p);
  YOLO_LAUNCH_CHECK();
}

void apply(Context& ctx, const Tensor& x, const Tensor& y, const ApplyParams& p) {
  if (x.numel() == 0) return;
  switch (x.dtype()) {
    case DType::f32: apply_typed<float>(ctx, x, y, p); break;
    case DType::f16: apply_typed<__half>(ctx, x, y, p); break;
    case DType::bf16: apply_typed<__nv_bfloat16>(ctx, x, y, p); break;
    default: YOLO_FAIL("batchnorm (cuda): unsupported dtype " << dtype_name(x.dtype()));
  }
}

template <typename T>
void dx_typed(Context& ctx, const Tensor& x, const Tensor& dy, const Tensor& dx,
              const Tensor& gamma, const Tensor& beta, const Tensor& save_mean,
              const Tensor& save_invstd, const Tensor& sums, bool silu) {
  const int64_t n = x.numel();
  const int c = int(x.dim(-1));
  const float inv_m = float(1.0 / double(n / c));
  const T* px = static_cast<const T*>(x.raw());
  const T* pdy = static_cast<const T*>(dy.raw());
  T* pdx = static_cast<T*>(dx.raw());
  const float* mean = save_mean.data<float>();
  const float* invstd = save_invstd.data<float>();
  const float* g = gamma.data<float>();
  const float* b = beta.data<float>();
  const float* s = sums.data<float>();
  constexpr int kVec = 16 / sizeof(T);
  cudaStream_t stream = ctx.cuda().stream;
  if (vectorisable<T>(c, {px, pdy, pdx}))
    dx_kernel<T, kVec><<<elementwise_blocks(ctx, n, kVec), kThreads, 0, stream>>>(
        px, pdy, pdx, n, c, inv_m, mean, invstd, g, b, s, silu);
  else
    dx_kernel<T, 1><<<elementwise_blocks(ctx, n, 1), kThreads, 0, stream>>>(
        px, pdy, pdx, n, c, inv_m, mean, invstd, g, b, s, silu);
  YOLO_LAUNCH_CHECK();
}

}  // namespace

void batchnorm_fwd_train_cuda(Context& ctx, const Tensor& x, const Tensor& gamma,
                              const Tensor& beta, const Tensor& running_mean,
                              const Tensor& running_var, const Tensor& save_mean,
                              const Tensor& save_invstd, const Tensor& y, double momentum,
                              double eps, Activation act) {
  bn_detail::batch_stats_cuda(ctx, x, running_mean, running_var, save_mean, save_invstd, momentum,
                              eps);
  apply(ctx, x, y,
        ApplyParams{save_mean.data<float>(), save_invstd.data<float>(), gamma.data<float>(),
                    beta.data<float>(), false, float(eps), act == Activation::silu});
}

void batchnorm_fwd_eval_cuda(Context& ctx, const Tensor& x, const Tensor& gamma,
                             const Tensor& beta, const Tensor& running_mean,
                             const Tensor& running_var, const Tensor& y, double eps,
                             Activation act) {
  apply(ctx, x, y,
        ApplyParams{running_mean.data<float>(), running_var.data<float>(), gamma.data<float>(),
                    beta.data<float>(), true, float(eps), act == Activation::silu});
}

void batchnorm_bwd_cuda(Context& ctx, const Tensor& x, const Tensor& dy, const Tensor& gamma,
                        const Tensor& beta, const Tensor& save_mean, const Tensor& save_invstd,
                        const Tensor& dx, const Tensor& dgamma, const Tensor& dbeta,
                        Activation act, bool accumulate_params) {
  if (x.numel() == 0) {
    if (!accumulate_params) {
      ctx.zero_(dgamma);
      ctx.zero_(dbeta);
    }
    return;
  }
  const Tensor sums = ctx.empty({2, x.dim(-1)}, DType::f32);
  bn_detail::grad_sums_cuda(ctx, x, dy, gamma, beta, save_mean, save_invstd, sums, dgamma, dbeta,
                            act, accumulate_params);
  const bool silu = act == Activation::silu;
  switch (x.dtype()) {
    case DType::f32:
      dx_typed<float>(ctx, x, dy, dx, gamma, beta, save_mean, save_invstd, sums, silu);
      break;
    case DType::f16:
      dx_typed<__half>(ctx, x, dy, dx, gamma, beta, save_mean, save_invstd, sums, silu);
      break;
    case DType::bf16:
      dx_typed<__nv_bfloat16>(ctx, x, dy, dx, gamma, beta, save_mean, save_invstd, sums, silu);
      break;
    default: YOLO_FAIL("batchnorm (cuda): unsupported dtype " << dtype_name(x.dtype()));
  }
}

}  // namespace yolo
