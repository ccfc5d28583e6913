// CUDA batch-norm column reductions over x viewed as (M, C) row-major (NHWC activations), f32/f16/
// bf16 storage, f32 maths: the training statistics (Welford per thread, Chan merges) and the
// backward sums (sum dz, sum dz * x_hat, SiLU recomputed). Threads run along C (coalesced, 16-byte
// loads when C allows), a block's rows merge in shared memory, and several row blocks merge in a
// second small kernel in fixed order: deterministic, no float atomics, scratch from ctx.empty.
// Used by kernels/cuda/batchnorm_apply.cu through the two bn_detail functions at the end.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>

#include "core/cuda_check.h"
#include "core/cuda_state.h"
#include "kernels/batchnorm.h"

namespace yolo {
namespace {

constexpr int kThreads = 256;    // per block of the row reductions
constexpr int kMaxVec = 8;       // 16 bytes of f16/bf16
constexpr int kUnroll = 4;       // rows loaded before they are used (memory-level parallelism)
constexpr int kMergeRows = 32;   // blockDim.y of the merge kernel (blockDim.x = 32 channels)
constexpr int kBlocksPerSm = 4;  // row-reduction blocks per SM the grid aims for

// V consecutive elements: one 16-byte load when V * sizeof(T) == 16, else V scalar ones.
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

__device__ __forceinline__ float sigmoidf(float z) {
  return 1.0f / (1.0f + expf(-z));
}

// Chan's merge of Welford states (mean, m2, n) b into a.
__device__ __forceinline__ void welford_merge(float& mean, float& m2, float& n, float mean_b,
                                              float m2_b, float n_b) {
  const float total = n + n_b;
  if (total == 0.0f) return;
  const float d = mean_b - mean;
  mean += d * (n_b / total);
  m2 += m2_b + d * d * (n * n_b / total);
  n = total;
}

// Per-channel results of the statistics pass, applied by whichever kernel merges last.
struct StatsOut {
  float* save_mean;
  float* save_invstd;
  float* running_mean;
  float* running_var;
  float momentum;
  float eps;
  int64_t m;
};

__device__ void finish_stats(int ch, float mean, float m2, const StatsOut& o) {
  const float var = m2 / float(o.m);           // biased: normalises
  const float unbiased = m2 / float(o.m - 1);  // updates running_var (PyTorch)
  o.save_mean[ch] = mean;
  o.save_invstd[ch] = 1.0f / sqrtf(var + o.eps);
  o.running_mean[ch] = (1.0f - o.momentum) * o.running_mean[ch] + o.momentum * mean;
  o.running_var[ch] = (1.0f - o.momentum) * o.running_var[ch] + o.momentum * unbiased;
}

// Launch shape of the column reductions: blockDim (bx channel groups, by rows), grid (gx, gy);
// block row y owns rows [y * rows_per_block, min(M, (y + 1) * rows_per_block)).
struct ReduceShape {
  dim3 grid, block;
  int64_t rows_per_block;
};

ReduceShape reduce_shape(Context& ctx, int64_t m, int c, int vec) {
  const int groups = (c + vec - 1) / vec;
  const int bx = std::min(32, groups);
  const int by = std::max(1, kThreads / bx);
  const int gx = (groups + bx - 1) / bx;
  const int64_t target_blocks = int64_t(ctx.cuda().props.multiProcessorCount) * kBlocksPerSm;
  int64_t gy = std::min((m + int64_t(by) * 16 - 1) / (int64_t(by) * 16),
                        std::max<int64_t>(1, target_blocks / gx));
  gy = std::clamp<int64_t>(gy, 1, 65535);
  const int64_t rows = (m + gy - 1) / gy;
  gy = (m + rows - 1) / rows;
  return {dim3(gx, unsigned(gy)), dim3(bx, by), rows};
}

// Rows of block row y (the count every thread block's partial stands for).
__device__ __forceinline__ float block_rows(int y, int64_t m, int64_t rows_per_block) {
  const int64_t end = min(m, (y + 1) * rows_per_block);
  return float(end - min(m, y * rows_per_block));
}

// Tree merge over threadIdx.y in shared memory (any blockDim.y); slot = (ty * bx + tx) * V + j.
template <typename Merge>
__device__ void merge_rows(Merge merge) {
  int half = 1;
  while (half < int(blockDim.y)) half <<= 1;
  for (half >>= 1; half > 0; half >>= 1) {
    __syncthreads();
    const int ty = threadIdx.y;
    if (ty < half && ty + half < int(blockDim.y))
      merge(ty * blockDim.x + threadIdx.x, (ty + half) * blockDim.x + threadIdx.x);
  }
  __syncthreads();
}

// A block's merged results a[j], b[j] for channels c0 + j: finished directly when the grid has
// one block row, else stored as partials part[0 or 1, blockIdx.y, channel] for the merge kernel.
template <int V, typename Finish>
__device__ void finish_or_store(int c0, int c, const float* a, const float* b, float* part,
                                Finish finish) {
  for (int j = 0; j < V; ++j) {
    if (gridDim.y == 1) {
      finish(c0 + j, a[j], b[j]);
    } else {
      part[int64_t(blockIdx.y) * c + c0 + j] = a[j];
      part[int64_t(gridDim.y + blockIdx.y) * c + c0 + j] = b[j];
    }
  }
}

// Welford mean/M2 per channel over rows. part: (2, gy, C) partial mean and M2 when gy > 1.
template <typename T, int V>
__global__ void __launch_bounds__(kThreads)
    stats_kernel(const T* __restrict__ x, int64_t m, int c, int64_t rows_per_block,
                 float* __restrict__ part, StatsOut out) {
  __shared__ float s_mean[kThreads * kMaxVec], s_m2[kThreads * kMaxVec], s_n[kThreads];
  const int c0 = (blockIdx.x * blockDim.x + threadIdx.x) * V;
  const int slot = threadIdx.y * blockDim.x + threadIdx.x;
  float mean[V] = {}, m2[V] = {}, n = 0.0f;
  if (c0 < c) {
    const int64_t end = min(m, (blockIdx.y + 1) * rows_per_block);
    const int64_t step = int64_t(blockDim.y);
    for (int64_t r = blockIdx.y * rows_per_block + threadIdx.y; r < end; r += kUnroll * step) {
      float v[kUnroll][V];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u)
        if (r + u * step < end) load<T, V>(x + (r + u * step) * c + c0, v[u]);
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        if (r + u * step >= end) break;
        n += 1.0f;
        const float inv = 1.0f / n;
#pragma unroll
        for (int j = 0; j < V; ++j) {
          const float d = v[u][j] - mean[j];
          mean[j] += d * inv;
          m2[j] += d * (v[u][j] - mean[j]);
        }
      }
    }
  }
#pragma unroll
  for (int j = 0; j < V; ++j) {
    s_mean[slot * V + j] = mean[j];
    s_m2[slot * V + j] = m2[j];
  }
  s_n[slot] = n;
  merge_rows([&](int a, int b) {
    const float na = s_n[a], nb = s_n[b];
#pragma unroll
    for (int j = 0; j < V; ++j) {
      float n_a = na;
      welford_merge(s_mean[a * V + j], s_m2[a * V + j], n_a, s_mean[b * V + j], s_m2[b * V + j],
                    nb);
    }
    s_n[a] = na + nb;
  });
  if (threadIdx.y == 0 && c0 < c)
    finish_or_store<V>(c0, c, s_mean + slot * V, s_m2 + slot * V, part,
                       [&](int ch, float mean, float m2) { finish_stats(ch, mean, m2, out); });
}

// Parameter gradients: sums (2, C) gets [sum dz, sum dz * x_hat] for this batch (read by the dx
// kernel); dbeta/dgamma get the same sums, assigned or added (accumulate).
struct GradOut {
  float* sums;
  float* dbeta;
  float* dgamma;
  bool accumulate;
};

__device__ void finish_grads(int ch, int c, float sum_dz, float sum_dz_xhat, const GradOut& o) {
  o.sums[ch] = sum_dz;
  o.sums[c + ch] = sum_dz_xhat;
  o.dbeta[ch] = o.accumulate ? o.dbeta[ch] + sum_dz : sum_dz;
  o.dgamma[ch] = o.accumulate ? o.dgamma[ch] + sum_dz_xhat : sum_dz_xhat;
}

// Per-channel sum dz and sum dz * x_hat over rows, dz = dy * act'(z) with z = gamma * x_hat + beta
// recomputed from x. part: (2, gy, C) partial sums when gy > 1.
template <typename T, int V>
__global__ void __launch_bounds__(kThreads)
    grad_sums_kernel(const T* __restrict__ x, const T* __restrict__ dy, int64_t m, int c,
                     int64_t rows_per_block, const float* __restrict__ mean,
                     const float* __restrict__ invstd, const float* __restrict__ gamma,
                     const float* __restrict__ beta, bool silu, float* __restrict__ part,
                     GradOut out) {
  __shared__ float s_dz[kThreads * kMaxVec], s_dzx[kThreads * kMaxVec];
  const int c0 = (blockIdx.x * blockDim.x + threadIdx.x) * V;
  const int slot = threadIdx.y * blockDim.x + threadIdx.x;
  float sum_dz[V] = {}, sum_dzx[V] = {};
  if (c0 < c) {
    float mu[V], is[V], g[V], b[V];  // this thread's channels (no alignment assumed)
#pragma unroll
    for (int j = 0; j < V; ++j) {
      mu[j] = mean[c0 + j];
      is[j] = invstd[c0 + j];
      g[j] = gamma[c0 + j];
      b[j] = beta[c0 + j];
    }
    const int64_t end = min(m, (blockIdx.y + 1) * rows_per_block);
    const int64_t step = int64_t(blockDim.y);
    for (int64_t r = blockIdx.y * rows_per_block + threadIdx.y; r < end; r += kUnroll * step) {
      float xv[kUnroll][V], gv[kUnroll][V];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        if (r + u * step < end) {
          load<T, V>(x + (r + u * step) * c + c0, xv[u]);
          load<T, V>(dy + (r + u * step) * c + c0, gv[u]);
        }
      }
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        if (r + u * step >= end) break;
#pragma unroll
        for (int j = 0; j < V; ++j) {
          const float xhat = (xv[u][j] - mu[j]) * is[j];
          float dz = gv[u][j];
          if (silu) {
            const float z = g[j] * xhat + b[j];
            const float sg = sigmoidf(z);
            dz *= sg * (1.0f + z * (1.0f - sg));
          }
          sum_dz[j] += dz;
          sum_dzx[j] += dz * xhat;
        }
      }
    }
  }
#pragma unroll
  for (int j = 0; j < V; ++j) {
    s_dz[slot * V + j] = sum_dz[j];
    s_dzx[slot * V + j] = sum_dzx[j];
  }
  merge_rows([&](int a, int b) {
#pragma unroll
    for (int j = 0; j < V; ++j) {
      s_dz[a * V + j] += s_dz[b * V + j];
      s_dzx[a * V + j] += s_dzx[b * V + j];
    }
  });
  if (threadIdx.y == 0 && c0 < c)
    finish_or_store<V>(
        c0, c, s_dz + slot * V, s_dzx + slot * V, part,
        [&](int ch, float sum, float sum_x) { finish_grads(ch, c, sum, sum_x, out); });
}

// Merges the gy partials of stats_kernel (kStats: Welford states) or grad_sums_kernel (sums),
// part: (2, gy, C), then finishes each channel. Block (32 channels, kMergeRows): thread row ty
// takes partials ty, ty + kMergeRows, ... in order, then the rows merge as a fixed tree.
template <bool kStats>
__global__ void __launch_bounds__(32 * kMergeRows)
    merge_partials_kernel(const float* __restrict__ part, int gy, int c, int64_t rows_per_block,
                          StatsOut stats, GradOut grads) {
  __shared__ float s_a[32 * kMergeRows], s_b[32 * kMergeRows], s_n[32 * kMergeRows];
  const int ch = blockIdx.x * blockDim.x + threadIdx.x;
  const int slot = threadIdx.y * blockDim.x + threadIdx.x;
  float a = 0.0f, b = 0.0f, n = 0.0f;
  if (ch < c) {
#pragma unroll 4
    for (int y = threadIdx.y; y < gy; y += blockDim.y) {
      const float pa = part[int64_t(y) * c + ch], pb = part[int64_t(gy + y) * c + ch];
      if (kStats) {
        welford_merge(a, b, n, pa, pb, block_rows(y, stats.m, rows_per_block));
      } else {
        a += pa;
        b += pb;
      }
    }
  }
  s_a[slot] = a;
  s_b[slot] = b;
  s_n[slot] = n;
  merge_rows([&](int i, int k) {
    if (kStats) {
      welford_merge(s_a[i], s_b[i], s_n[i], s_a[k], s_b[k], s_n[k]);
    } else {
      s_a[i] += s_a[k];
      s_b[i] += s_b[k];
    }
  });
  if (threadIdx.y != 0 || ch >= c) return;
  if (kStats)
    finish_stats(ch, s_a[slot], s_b[slot], stats);
  else
    finish_grads(ch, c, s_a[slot], s_b[slot], grads);
}

// Vector width along C for x's dtype: 16 bytes when C and every pointer allow, else 1.
template <typename T>
int vec_width(int c, std::initializer_list<const void*> ptrs) {
  constexpr int kVec = 16 / sizeof(T);
  if (c % kVec != 0) return 1;
  for (const void* p : ptrs)
    if (reinterpret_cast<uintptr_t>(p) % 16 != 0) return 1;
  return kVec;
}

// Runs launch(shape, part) (the row-reduction kernel) and, with several block rows, the merge
// kernel over part (2, gy, C), a scratch buffer from ctx.empty.
template <bool kStats, typename Launch>
void reduce(Context& ctx, int64_t m, int c, int vec, const StatsOut& stats, const GradOut& grads,
            Launch launch) {
  const ReduceShape s = reduce_shape(ctx, m, c, vec);
  Tensor part;
  if (s.grid.y > 1) part = ctx.empty({2, int64_t(s.grid.y), c}, DType::f32);
  launch(s, s.grid.y > 1 ? part.data<float>() : nullptr);
  if (s.grid.y == 1) return;
  merge_partials_kernel<kStats><<<(c + 31) / 32, dim3(32, kMergeRows), 0, ctx.cuda().stream>>>(
      part.data<float>(), int(s.grid.y), c, s.rows_per_block, stats, grads);
  YOLO_LAUNCH_CHECK();
}

template <typename T>
void batch_stats_typed(Context& ctx, const Tensor& x, const StatsOut& out) {
  const int c = int(x.dim(-1));
  const int vec = vec_width<T>(c, {x.raw()});
  const T* px = static_cast<const T*>(x.raw());
  cudaStream_t stream = ctx.cuda().stream;
  reduce<true>(ctx, out.m, c, vec, out, GradOut{}, [&](const ReduceShape& s, float* p) {
    if (vec == 1)
      stats_kernel<T, 1><<<s.grid, s.block, 0, stream>>>(px, out.m, c, s.rows_per_block, p, out);
    else
      stats_kernel<T, 16 / sizeof(T)>
          <<<s.grid, s.block, 0, stream>>>(px, out.m, c, s.rows_per_block, p, out);
    YOLO_LAUNCH_CHECK();
  });
}

template <typename T>
void grad_sums_typed(Context& ctx, const Tensor& x, const Tensor& dy, const float* mean,
                     const float* invstd, const float* gamma, const float* beta, bool silu,
                     const GradOut& out) {
  const int c = int(x.dim(-1));
  const int64_t m = x.numel() / c;
  const int vec = vec_width<T>(c, {x.raw(), dy.raw()});
  const T* px = static_cast<const T*>(x.raw());
  const T* pdy = static_cast<const T*>(dy.raw());
  cudaStream_t stream = ctx.cuda().stream;
  reduce<false>(ctx, m, c, vec, StatsOut{}, out, [&](const ReduceShape& s, float* p) {
    if (vec == 1)
      grad_sums_kernel<T, 1><<<s.grid, s.block, 0, stream>>>(px, pdy, m, c, s.rows_per_block, mean,
                                                             invstd, gamma, beta, silu, p, out);
    else
      grad_sums_kernel<T, 16 / sizeof(T)><<<s.grid, s.block, 0, stream>>>(
          px, pdy, m, c, s.rows_per_block, mean, invstd, gamma, beta, silu, p, out);
    YOLO_LAUNCH_CHECK();
  });
}

// Calls f(T{}) with T the device element type of dtype d.
template <typename F>
void with_dtype(DType d, F f) {
  if (d == DType::f32)
    f(float{});
  else if (d == DType::f16)
    f(__half{});
  else if (d == DType::bf16)
    f(__nv_bfloat16{});
  else
    YOLO_FAIL("batchnorm (cuda): unsupported dtype " << dtype_name(d));
}

}  // namespace

namespace bn_detail {

void batch_stats_cuda(Context& ctx, const Tensor& x, const Tensor& running_mean,
                      const Tensor& running_var, const Tensor& save_mean, const Tensor& save_invstd,
                      double momentum, double eps) {
  const StatsOut out{
      save_mean.data<float>(),   save_invstd.data<float>(), running_mean.data<float>(),
      running_var.data<float>(), float(momentum),           float(eps),
      x.numel() / x.dim(-1)};
  with_dtype(x.dtype(), [&](auto zero) { batch_stats_typed<decltype(zero)>(ctx, x, out); });
}

void grad_sums_cuda(Context& ctx, const Tensor& x, const Tensor& dy, const Tensor& gamma,
                    const Tensor& beta, const Tensor& save_mean, const Tensor& save_invstd,
                    const Tensor& sums, const Tensor& dgamma, const Tensor& dbeta, Activation act,
                    bool accumulate_params) {
  const GradOut out{sums.data<float>(), dbeta.data<float>(), dgamma.data<float>(),
                    accumulate_params};
  const float *mean = save_mean.data<float>(), *invstd = save_invstd.data<float>();
  const float *g = gamma.data<float>(), *b = beta.data<float>();
  const bool silu = act == Activation::silu;
  with_dtype(x.dtype(), [&](auto zero) {
    grad_sums_typed<decltype(zero)>(ctx, x, dy, mean, invstd, g, b, silu, out);
  });
}

}  // namespace bn_detail
}  // namespace yolo
