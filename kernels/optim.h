// Optimizer kernels over the flat arena buffers (core/arena.h): each op is one pass over all
// parameters. Per-group hyper-parameters live in a device tensor so a captured CUDA graph sees
// new values on every replay (DESIGN.md "Execution").
// params, grads, state buffers: (P) f32, same size. CPU and CUDA: f32.
#pragma once

#include <cstdint>
#include <vector>

#include "core/context.h"

namespace yolo {

// One contiguous range of the flat buffers that shares a row of `hyper` (a parameter group).
struct OptimSegment {
  int64_t begin = 0, end = 0;
  int group = 0;  // row of hyper
};
constexpr int kMaxOptimSegments = 8;

// hyper: (G, kHyperStride) f32 on the context's device, one row per group.
enum HyperField : int {
  kHyperLr = 0,
  kHyperWeightDecay = 1,
  kHyperMomentum = 2,  // SGD momentum, or Adam beta1
  kHyperBeta2 = 3,
  kHyperEps = 4,
  kHyperStep = 5,  // Adam step count t (>= 1) for bias correction
  kHyperStride = 8
};

// torch.optim.SGD (dampening 0): g = grad + wd * p; buf = m * buf + g;
// p -= lr * (nesterov ? g + m * buf : buf).
void sgd_step(Context& ctx, const Tensor& params, const Tensor& grads, const Tensor& momentum_buf,
              const std::vector<OptimSegment>& segments, const Tensor& hyper, bool nesterov);
// torch.optim.Adam (decoupled = false: wd added to the gradient) or AdamW (decoupled = true:
// p *= 1 - lr * wd first), with bias correction from kHyperStep.
void adam_step(Context& ctx, const Tensor& params, const Tensor& grads, const Tensor& exp_avg,
               const Tensor& exp_avg_sq, const std::vector<OptimSegment>& segments,
               const Tensor& hyper, bool decoupled);
// ema = decay * ema + (1 - decay) * src; decay: (1) f32 on the device.
void ema_update(Context& ctx, const Tensor& ema, const Tensor& src, const Tensor& decay);
// out (1) = sqrt(sum of grads^2) (the global L2 norm, accumulated in f64 on CPU, f32 tree on CUDA).
void global_grad_norm(Context& ctx, const Tensor& grads, const Tensor& out);
// torch.nn.utils.clip_grad_norm_: grads *= min(1, max_norm / (norm + 1e-6)); norm: (1) from above.
void clip_grad_norm(Context& ctx, const Tensor& grads, const Tensor& norm, double max_norm);
// AMP unscale: grads *= inv_scale[0]; found_inf[0] = 1 if any result is NaN or Inf (left as is
// otherwise; the caller zeroes it). inv_scale, found_inf: (1) f32 on the device.
void unscale_check(Context& ctx, const Tensor& grads, const Tensor& inv_scale,
                   const Tensor& found_inf);

void sgd_step_cpu(Context& ctx, const Tensor& params, const Tensor& grads,
                  const Tensor& momentum_buf, const std::vector<OptimSegment>& segments,
                  const Tensor& hyper, bool nesterov);
void adam_step_cpu(Context& ctx, const Tensor& params, const Tensor& grads, const Tensor& exp_avg,
                   const Tensor& exp_avg_sq, const std::vector<OptimSegment>& segments,
                   const Tensor& hyper, bool decoupled);
void ema_update_cpu(Context& ctx, const Tensor& ema, const Tensor& src, const Tensor& decay);
void global_grad_norm_cpu(Context& ctx, const Tensor& grads, const Tensor& out);
void clip_grad_norm_cpu(Context& ctx, const Tensor& grads, const Tensor& norm, double max_norm);
void unscale_check_cpu(Context& ctx, const Tensor& grads, const Tensor& inv_scale,
                       const Tensor& found_inf);
void sgd_step_cuda(Context& ctx, const Tensor& params, const Tensor& grads,
                   const Tensor& momentum_buf, const std::vector<OptimSegment>& segments,
                   const Tensor& hyper, bool nesterov);
void adam_step_cuda(Context& ctx, const Tensor& params, const Tensor& grads, const Tensor& exp_avg,
                    const Tensor& exp_avg_sq, const std::vector<OptimSegment>& segments,
                    const Tensor& hyper, bool decoupled);
void ema_update_cuda(Context& ctx, const Tensor& ema, const Tensor& src, const Tensor& decay);
void global_grad_norm_cuda(Context& ctx, const Tensor& grads, const Tensor& out);
void clip_grad_norm_cuda(Context& ctx, const Tensor& grads, const Tensor& norm, double max_norm);
void unscale_check_cuda(Context& ctx, const Tensor& grads, const Tensor& inv_scale,
                        const Tensor& found_inf);

}  // namespace yolo
