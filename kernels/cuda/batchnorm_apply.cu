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
                      const Tensor& running_var, const Tensor& save_mean, const Tensor& save_invstd,
                      double momentum, double eps);
// sums (2, C) f32 <- [sum dz, sum dz * x_hat] over rows; dbeta, dgamma (C) <- (or +=) the same.
void grad_sums_cuda(Context& ctx, const Tensor& x, const Tensor& dy, const Tensor& gamma,
                    const Tensor& beta, const Tensor& save_mean, const Tensor& save_invstd,
                    const Tensor& sums, const Tensor& dgamma, const Tensor& dbeta, Activation act,
                    bool accumulate_params);
}  // namespace bn_detail

namespace {

constexpr int kThreads = 256;

// V consecutive elements: one 16-byte access when V * sizeof(T) == 16, else V scalar ones.
template <typename T, int V>
struct alignas(V * sizeof(T) == 16 ? 16 : alignof(T)) Pack {
  T v[V];
};
template <typename T, int V>
__device__ __forceinline__ void load(const T* p, float* out) {
  const Pack<T, V> k = *reinterpret_cast<const Pack<T, V>*>(p);
#pragma unroll
  for (int j = 0; j < V; ++j) out[j] = float(k.v[j]);
}
template <typename T, int V>
__device__ __forceinline__ void store(T* p, const float* in) {
  Pack<T, V> k;
#pragma unroll
  for (int j = 0; j < V; ++j) k.v[j] = T(in[j]);
  *reinterpret_cast<Pack<T, V>*>(p) = k;
}

__device__ __forceinline__ float sigmoidf(float z) {
  return 1.0f / (1.0f + expf(-z));
}

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

// Both element-wise kernels run on a 2-D grid: x in channel groups of V (blockIdx.x, threadIdx.x),
// y in rows (grid-stride), so each thread loads its channels' parameters once.

// y = act(gamma * (x - mean) * invstd + beta) for x, y: (M, C). y may alias x.
template <typename T, int V>
__global__ void apply_kernel(const T* x, T* y, int64_t m, int c, ApplyParams p) {
  const int c0 = (blockIdx.x * blockDim.x + threadIdx.x) * V;
  if (c0 >= c) return;
  float mu[V], scale[V], shift[V];
#pragma unroll
  for (int j = 0; j < V; ++j) {
    const float s = p.invstd_or_var[c0 + j];
    mu[j] = p.mean[c0 + j];
    scale[j] = p.gamma[c0 + j] * (p.var_not_invstd ? rsqrtf(s + p.eps) : s);
    shift[j] = p.beta[c0 + j];
  }
  const int64_t step = int64_t(gridDim.y) * blockDim.y;
  for (int64_t r = int64_t(blockIdx.y) * blockDim.y + threadIdx.y; r < m; r += step) {
    float v[V];
    load<T, V>(x + r * c + c0, v);
#pragma unroll
    for (int j = 0; j < V; ++j) {
      const float z = (v[j] - mu[j]) * scale[j] + shift[j];
      v[j] = p.silu ? z * sigmoidf(z) : z;
    }
    store<T, V>(y + r * c + c0, v);
  }
}

// dx = gamma * invstd * (dz - sum_dz / M - x_hat * sum_dz_xhat / M), dz recomputed as in
// grad_sums_kernel. sums: (2, C) from bn_detail::grad_sums_cuda. dx may alias dy.
template <typename T, int V>
__global__ void dx_kernel(const T* x, const T* dy, T* dx, int64_t m, int c, float inv_m,
                          const float* __restrict__ mean, const float* __restrict__ invstd,
                          const float* __restrict__ gamma, const float* __restrict__ beta,
                          const float* __restrict__ sums, bool silu) {
  const int c0 = (blockIdx.x * blockDim.x + threadIdx.x) * V;
  if (c0 >= c) return;
  float mu[V], is[V], g[V], b[V], mean_dz[V], mean_dzx[V];
#pragma unroll
  for (int j = 0; j < V; ++j) {
    mu[j] = mean[c0 + j];
    is[j] = invstd[c0 + j];
    g[j] = gamma[c0 + j];
    b[j] = beta[c0 + j];
    mean_dz[j] = inv_m * sums[c0 + j];
    mean_dzx[j] = inv_m * sums[c + c0 + j];
  }
  const int64_t step = int64_t(gridDim.y) * blockDim.y;
  for (int64_t r = int64_t(blockIdx.y) * blockDim.y + threadIdx.y; r < m; r += step) {
    float xv[V], dv[V];
    load<T, V>(x + r * c + c0, xv);
    load<T, V>(dy + r * c + c0, dv);
#pragma unroll
    for (int j = 0; j < V; ++j) {
      const float xhat = (xv[j] - mu[j]) * is[j];
      float dz = dv[j];
      if (silu) {
        const float z = g[j] * xhat + b[j];
        const float s = sigmoidf(z);
        dz *= s * (1.0f + z * (1.0f - s));
      }
      dv[j] = g[j] * is[j] * (dz - mean_dz[j] - xhat * mean_dzx[j]);
    }
    store<T, V>(dx + r * c + c0, dv);
  }
}

// True when C is a multiple of 16 / sizeof(T) and every pointer is 16-byte aligned.
template <typename T>
bool vectorisable(int64_t c, std::initializer_list<const void*> ptrs) {
  if (c % (16 / sizeof(T)) != 0) return false;
  return std::all_of(ptrs.begin(), ptrs.end(),
                     [](const void* q) { return reinterpret_cast<uintptr_t>(q) % 16 == 0; });
}

// Grid and block of the element-wise kernels. blockDim.x is the largest divisor of the channel
// group count up to 32 (so no lane idles) unless that is small; blockDim.y fills kThreads.
void elementwise_shape(Context& ctx, int64_t m, int c, int vec, dim3& grid, dim3& block) {
  const int groups = (c + vec - 1) / vec;
  int bx = std::min(32, groups);
  while (groups % bx != 0) --bx;
  if (bx < 8) bx = std::min(32, groups);
  const int by = kThreads / bx;
  const int gx = (groups + bx - 1) / bx;
  const int64_t cap = std::max<int64_t>(1, int64_t(ctx.cuda().props.multiProcessorCount) * 16 / gx);
  const int64_t gy = std::clamp<int64_t>(std::min((m + by - 1) / by, cap), 1, 65535);
  grid = dim3(gx, unsigned(gy));
  block = dim3(bx, by);
}

template <typename T>
void apply_typed(Context& ctx, const Tensor& x, const Tensor& y, const ApplyParams& p) {
  const int c = int(x.dim(-1));
  const int64_t m = x.numel() / c;
  const T* px = static_cast<const T*>(x.raw());
  T* py = static_cast<T*>(y.raw());
  constexpr int kVec = 16 / sizeof(T);
  const bool vec = vectorisable<T>(c, {px, py});
  dim3 grid, block;
  elementwise_shape(ctx, m, c, vec ? kVec : 1, grid, block);
  cudaStream_t stream = ctx.cuda().stream;
  if (vec)
    apply_kernel<T, kVec><<<grid, block, 0, stream>>>(px, py, m, c, p);
  else
    apply_kernel<T, 1><<<grid, block, 0, stream>>>(px, py, m, c, p);
  YOLO_LAUNCH_CHECK();
}

void apply(Context& ctx, const Tensor& x, const Tensor& y, const ApplyParams& p) {
  if (x.numel() == 0) return;
  switch (x.dtype()) {
    case DType::f32:
      apply_typed<float>(ctx, x, y, p);
      break;
    case DType::f16:
      apply_typed<__half>(ctx, x, y, p);
      break;
    case DType::bf16:
      apply_typed<__nv_bfloat16>(ctx, x, y, p);
      break;
    default:
      YOLO_FAIL("batchnorm (cuda): unsupported dtype " << dtype_name(x.dtype()));
  }
}

template <typename T>
void dx_typed(Context& ctx, const Tensor& x, const Tensor& dy, const Tensor& dx,
              const Tensor& gamma, const Tensor& beta, const Tensor& save_mean,
              const Tensor& save_invstd, const Tensor& sums, bool silu) {
  const int c = int(x.dim(-1));
  const int64_t m = x.numel() / c;
  const float inv_m = float(1.0 / double(m));
  const T* px = static_cast<const T*>(x.raw());
  const T* pdy = static_cast<const T*>(dy.raw());
  T* pdx = static_cast<T*>(dx.raw());
  const float *mean = save_mean.data<float>(), *invstd = save_invstd.data<float>();
  const float *g = gamma.data<float>(), *b = beta.data<float>(), *s = sums.data<float>();
  constexpr int kVec = 16 / sizeof(T);
  const bool vec = vectorisable<T>(c, {px, pdy, pdx});
  dim3 grid, block;
  elementwise_shape(ctx, m, c, vec ? kVec : 1, grid, block);
  cudaStream_t stream = ctx.cuda().stream;
  if (vec)
    dx_kernel<T, kVec>
        <<<grid, block, 0, stream>>>(px, pdy, pdx, m, c, inv_m, mean, invstd, g, b, s, silu);
  else
    dx_kernel<T, 1>
        <<<grid, block, 0, stream>>>(px, pdy, pdx, m, c, inv_m, mean, invstd, g, b, s, silu);
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

void batchnorm_fwd_eval_cuda(Context& ctx, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                             const Tensor& running_mean, const Tensor& running_var, const Tensor& y,
                             double eps, Activation act) {
  apply(ctx, x, y,
        ApplyParams{running_mean.data<float>(), running_var.data<float>(), gamma.data<float>(),
                    beta.data<float>(), true, float(eps), act == Activation::silu});
}

void batchnorm_bwd_cuda(Context& ctx, const Tensor& x, const Tensor& dy, const Tensor& gamma,
                        const Tensor& beta, const Tensor& save_mean, const Tensor& save_invstd,
                        const Tensor& dx, const Tensor& dgamma, const Tensor& dbeta, Activation act,
                        bool accumulate_params) {
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
    default:
      YOLO_FAIL("batchnorm (cuda): unsupported dtype " << dtype_name(x.dtype()));
  }
}

}  // namespace yolo
