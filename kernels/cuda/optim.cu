// CUDA optimizer kernels over the flat arena buffers; twins of kernels/cpu/optim.cpp, compared
// with them by tests/test_optim.cpp. Each op is ONE launch over all parameter groups (the gradient
// norm two, a deterministic tree); hyper-parameters, decay, norm and loss scale are read from
// device memory inside the kernels, so a captured CUDA graph picks up new values on every replay.
#include <cstdint>

#include "core/cuda_check.h"
#include "core/cuda_state.h"
#include "kernels/cuda/common.cuh"
#include "kernels/optim.h"

namespace yolo {
namespace {

using cuda::aligned16;
using cuda::block_sum;

constexpr int kThreads = 256;
constexpr int kMaxPartials = 1024;

// The segment table, passed to the kernels by value (kernel parameter memory, captured with the
// launch).
struct SegmentTable {
  int count = 0;
  int group[kMaxOptimSegments] = {};
  int64_t begin[kMaxOptimSegments] = {};
  int64_t end[kMaxOptimSegments] = {};
};

SegmentTable make_table(const std::vector<OptimSegment>& segments, int64_t* total) {
  SegmentTable t;
  *total = 0;
  for (const OptimSegment& s : segments) {
    t.group[t.count] = s.group;
    t.begin[t.count] = s.begin;
    t.end[t.count] = s.end;
    ++t.count;
    *total += s.end - s.begin;
  }
  return t;
}

int elementwise_grid(const Context& ctx, int64_t work) {
  const int64_t cap = int64_t(ctx.cuda().props.multiProcessorCount) * 16;
  const int64_t blocks = (work + kThreads - 1) / kThreads;
  return static_cast<int>(blocks < 1 ? 1 : (blocks > cap ? cap : blocks));
}

// Strides the whole grid over elements [begin, end): scalar(i) for the elements outside the
// 16-byte-aligned body, vector(j) for each float4 j (elements 4j..4j+3) inside it. With vec false
// (some base pointer not 16-byte aligned) every element goes through scalar.
template <typename Scalar, typename Vector>
__device__ void grid_stride_range(int64_t begin, int64_t end, bool vec, const Scalar& scalar,
                                  const Vector& vector) {
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  if (!vec) {
    for (int64_t i = begin + tid; i < end; i += stride) scalar(i);
    return;
  }
  const int64_t body_begin = min(end, (begin + 3) & ~int64_t(3));
  const int64_t body_end = body_begin + ((end - body_begin) & ~int64_t(3));
  for (int64_t i = begin + tid; i < body_begin; i += stride) scalar(i);
  for (int64_t j = body_begin / 4 + tid; j < body_end / 4; j += stride) vector(j);
  for (int64_t i = body_end + tid; i < end; i += stride) scalar(i);
}

// Component k of a float4 (k a compile-time constant after unrolling).
__device__ float& lane(float4& v, int k) {
  return k == 0 ? v.x : (k == 1 ? v.y : (k == 2 ? v.z : v.w));
}
__device__ float lane(const float4& v, int k) {
  return k == 0 ? v.x : (k == 1 ? v.y : (k == 2 ? v.z : v.w));
}

// torch.optim.SGD, dampening 0: d = g + wd p; buf = m buf + d; p -= lr (nesterov ? d + m buf :
// buf).
__device__ void sgd_update(float& p, float g, float& buf, float lr, float wd, float m,
                           bool nesterov) {
  const float d = g + wd * p;
  const float b = buf * m + d;
  buf = b;
  p += -lr * (nesterov ? d + m * b : b);
}

__global__ void sgd_kernel(float* p, const float* g, float* buf, SegmentTable segs,
                           const float* hyper, bool nesterov, bool vec) {
  for (int s = 0; s < segs.count; ++s) {
    const float* row = hyper + segs.group[s] * kHyperStride;
    const float lr = row[kHyperLr], wd = row[kHyperWeightDecay], m = row[kHyperMomentum];
    grid_stride_range(
        segs.begin[s], segs.end[s], vec,
        [&](int64_t i) { sgd_update(p[i], g[i], buf[i], lr, wd, m, nesterov); },
        [&](int64_t j) {
          float4 pv = reinterpret_cast<float4*>(p)[j];
          float4 bv = reinterpret_cast<float4*>(buf)[j];
          float4 gv = reinterpret_cast<const float4*>(g)[j];
#pragma unroll
          for (int k = 0; k < 4; ++k) {
            sgd_update(lane(pv, k), lane(gv, k), lane(bv, k), lr, wd, m, nesterov);
          }
          reinterpret_cast<float4*>(p)[j] = pv;
          reinterpret_cast<float4*>(buf)[j] = bv;
        });
  }
}

// Per-group Adam constants, computed once per thread and segment (bias corrections in f64, as
// PyTorch computes them on the host).
struct AdamConsts {
  float wd, one_minus_b1, b2, one_minus_b2, eps, step_size, bc2_sqrt, decay_factor;
};

__device__ AdamConsts adam_consts(const float* row) {
  const double lr = row[kHyperLr], wd = row[kHyperWeightDecay];
  const double beta1 = row[kHyperMomentum], beta2 = row[kHyperBeta2], step = row[kHyperStep];
  AdamConsts c;
  c.wd = float(wd);
  c.one_minus_b1 = float(1.0 - beta1);
  c.b2 = float(beta2);
  c.one_minus_b2 = float(1.0 - beta2);
  c.eps = row[kHyperEps];
  c.step_size = float(lr / (1.0 - pow(beta1, step)));
  c.bc2_sqrt = float(sqrt(1.0 - pow(beta2, step)));
  c.decay_factor = float(1.0 - lr * wd);
  return c;
}

// torch.optim.Adam (L2 added to the gradient) or AdamW (decoupled: p *= 1 - lr wd first).
__device__ void adam_update(float& p, float g, float& m, float& v, const AdamConsts& c,
                            bool decoupled) {
  if (decoupled)
    p *= c.decay_factor;
  else
    g += c.wd * p;
  m += c.one_minus_b1 * (g - m);
  v = v * c.b2 + c.one_minus_b2 * g * g;
  const float denom = sqrtf(v) / c.bc2_sqrt + c.eps;
  p += -c.step_size * m / denom;
}

__global__ void adam_kernel(float* p, const float* g, float* m, float* v, SegmentTable segs,
                            const float* hyper, bool decoupled, bool vec) {
  for (int s = 0; s < segs.count; ++s) {
    const AdamConsts c = adam_consts(hyper + segs.group[s] * kHyperStride);
    grid_stride_range(
        segs.begin[s], segs.end[s], vec,
        [&](int64_t i) { adam_update(p[i], g[i], m[i], v[i], c, decoupled); },
        [&](int64_t j) {
          float4 pv = reinterpret_cast<float4*>(p)[j];
          float4 mv = reinterpret_cast<float4*>(m)[j];
          float4 vv = reinterpret_cast<float4*>(v)[j];
          float4 gv = reinterpret_cast<const float4*>(g)[j];
#pragma unroll
          for (int k = 0; k < 4; ++k) {
            adam_update(lane(pv, k), lane(gv, k), lane(mv, k), lane(vv, k), c, decoupled);
          }
          reinterpret_cast<float4*>(p)[j] = pv;
          reinterpret_cast<float4*>(m)[j] = mv;
          reinterpret_cast<float4*>(v)[j] = vv;
        });
  }
}

// ModelEMA: ema = d ema + (1 - d) src, d = decay[0].
__global__ void ema_kernel(float* ema, const float* src, const float* decay, int64_t n, bool vec) {
  const float d = decay[0];
  const float one_minus_d = 1.0f - d;
  grid_stride_range(
      0, n, vec, [&](int64_t i) { ema[i] = ema[i] * d + one_minus_d * src[i]; },
      [&](int64_t j) {
        float4 e = reinterpret_cast<float4*>(ema)[j];
        const float4 s = reinterpret_cast<const float4*>(src)[j];
#pragma unroll
        for (int k = 0; k < 4; ++k) lane(e, k) = lane(e, k) * d + one_minus_d * lane(s, k);
        reinterpret_cast<float4*>(ema)[j] = e;
      });
}

// torch.nn.utils.clip_grad_norm_: g *= min(1, max_norm / (norm[0] + 1e-6)).
__global__ void clip_kernel(float* g, const float* norm, float max_norm, int64_t n, bool vec) {
  const float raw = max_norm / (norm[0] + 1e-6f);
  const float coef = 1.0f < raw ? 1.0f : raw;  // clamp(max = 1), NaN passes through as in PyTorch
  grid_stride_range(
      0, n, vec, [&](int64_t i) { g[i] *= coef; },
      [&](int64_t j) {
        float4 v = reinterpret_cast<float4*>(g)[j];
        v.x *= coef;
        v.y *= coef;
        v.z *= coef;
        v.w *= coef;
        reinterpret_cast<float4*>(g)[j] = v;
      });
}

// Every thread that sees a non-finite result writes 1 to found_inf: the same value from every
// writer, so no atomic is needed, and the flag is never cleared here.
__global__ void unscale_kernel(float* g, const float* inv_scale, float* found_inf, int64_t n,
                               bool vec) {
  const float inv = inv_scale[0];
  bool found = false;
  grid_stride_range(
      0, n, vec,
      [&](int64_t i) {
        g[i] *= inv;
        found |= !isfinite(g[i]);
      },
      [&](int64_t j) {
        float4 v = reinterpret_cast<float4*>(g)[j];
#pragma unroll
        for (int k = 0; k < 4; ++k) {
          lane(v, k) *= inv;
          found |= !isfinite(lane(v, k));
        }
        reinterpret_cast<float4*>(g)[j] = v;
      });
  if (found) *found_inf = 1.0f;
}

// Gradient norm, stage 1 (deterministic as in kernels/cuda/linalg.cu, Note [Deterministic
// reductions]): partial[block] = sum of squares over the elements this block strides over.
__global__ void sumsq_partial_kernel(const float* g, int64_t n, bool vec, float* partial) {
  float acc = 0.0f;
  grid_stride_range(
      0, n, vec, [&](int64_t i) { acc += g[i] * g[i]; },
      [&](int64_t j) {
        const float4 v = reinterpret_cast<const float4*>(g)[j];
        acc += (v.x * v.x + v.y * v.y) + (v.z * v.z + v.w * v.w);
      });
  const float s = block_sum(acc);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

// Stage 2 (one block): out[0] = sqrt(sum of partials).
__global__ void sqrt_sum_kernel(const float* partial, int count, float* out) {
  float acc = 0.0f;
  for (int i = threadIdx.x; i < count; i += blockDim.x) acc += partial[i];
  const float s = block_sum(acc);
  if (threadIdx.x == 0) out[0] = sqrtf(s);
}

}  // namespace

void sgd_step_cuda(Context& ctx, const Tensor& params, const Tensor& grads,
                   const Tensor& momentum_buf, const std::vector<OptimSegment>& segments,
                   const Tensor& hyper, bool nesterov) {
  int64_t total = 0;
  const SegmentTable table = make_table(segments, &total);
  if (total == 0) return;
  float* p = params.data<float>();
  const float* g = grads.data<float>();
  float* buf = momentum_buf.data<float>();
  const bool vec = aligned16(p) && aligned16(g) && aligned16(buf);
  sgd_kernel<<<elementwise_grid(ctx, (total + 3) / 4), kThreads, 0, ctx.cuda().stream>>>(
      p, g, buf, table, hyper.data<float>(), nesterov, vec);
  YOLO_LAUNCH_CHECK();
}

void adam_step_cuda(Context& ctx, const Tensor& params, const Tensor& grads, const Tensor& exp_avg,
                    const Tensor& exp_avg_sq, const std::vector<OptimSegment>& segments,
                    const Tensor& hyper, bool decoupled) {
  int64_t total = 0;
  const SegmentTable table = make_table(segments, &total);
  if (total == 0) return;
  float* p = params.data<float>();
  const float* g = grads.data<float>();
  float* m = exp_avg.data<float>();
  float* v = exp_avg_sq.data<float>();
  const bool vec = aligned16(p) && aligned16(g) && aligned16(m) && aligned16(v);
  adam_kernel<<<elementwise_grid(ctx, (total + 3) / 4), kThreads, 0, ctx.cuda().stream>>>(
      p, g, m, v, table, hyper.data<float>(), decoupled, vec);
  YOLO_LAUNCH_CHECK();
}

void ema_update_cuda(Context& ctx, const Tensor& ema, const Tensor& src, const Tensor& decay) {
  const int64_t n = ema.numel();
  if (n == 0) return;
  float* e = ema.data<float>();
  const float* s = src.data<float>();
  ema_kernel<<<elementwise_grid(ctx, (n + 3) / 4), kThreads, 0, ctx.cuda().stream>>>(
      e, s, decay.data<float>(), n, aligned16(e) && aligned16(s));
  YOLO_LAUNCH_CHECK();
}

void global_grad_norm_cuda(Context& ctx, const Tensor& grads, const Tensor& out) {
  const int64_t n = grads.numel();
  const float* g = grads.data<float>();
  const int64_t want = (n + 4 * kThreads - 1) / (4 * kThreads);
  const int grid = static_cast<int>(want < 1 ? 1 : (want > kMaxPartials ? kMaxPartials : want));
  cudaStream_t stream = ctx.cuda().stream;
  Tensor partial = ctx.empty({grid}, DType::f32);
  sumsq_partial_kernel<<<grid, kThreads, 0, stream>>>(g, n, aligned16(g), partial.data<float>());
  YOLO_LAUNCH_CHECK();
  sqrt_sum_kernel<<<1, kThreads, 0, stream>>>(partial.data<float>(), grid, out.data<float>());
  YOLO_LAUNCH_CHECK();
}

void clip_grad_norm_cuda(Context& ctx, const Tensor& grads, const Tensor& norm, double max_norm) {
  const int64_t n = grads.numel();
  if (n == 0) return;
  float* g = grads.data<float>();
  clip_kernel<<<elementwise_grid(ctx, (n + 3) / 4), kThreads, 0, ctx.cuda().stream>>>(
      g, norm.data<float>(), float(max_norm), n, aligned16(g));
  YOLO_LAUNCH_CHECK();
}

void unscale_check_cuda(Context& ctx, const Tensor& grads, const Tensor& inv_scale,
                        const Tensor& found_inf) {
  const int64_t n = grads.numel();
  if (n == 0) return;
  float* g = grads.data<float>();
  unscale_kernel<<<elementwise_grid(ctx, (n + 3) / 4), kThreads, 0, ctx.cuda().stream>>>(
      g, inv_scale.data<float>(), found_inf.data<float>(), n, aligned16(g));
  YOLO_LAUNCH_CHECK();
}

}  // namespace yolo
