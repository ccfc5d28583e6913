// Batch norm over the channel (last) axis of NHWC activations, optionally fused with SiLU:
//   y = act(gamma * (x - mean) * invstd + beta).
// x, y, dy, dx: (..., C) viewed as (M, C); gamma, beta, running_*, save_*, dgamma, dbeta: (C) f32,
// or f64 when x is f64 (CPU only, so gradient checks run entirely in f64).
// PyTorch semantics: normalise with the biased batch variance; running_var is updated with the
// unbiased one: running = (1 - momentum) * running + momentum * batch. YOLOv5: eps 1e-3, momentum
// 0.03. CPU: x in f32 or f64 (statistics in f64). CUDA: x in f32, f16 or bf16 (statistics in f32).
#pragma once

#include "core/context.h"
#include "kernels/activation.h"

namespace yolo {

// Training forward: batch statistics -> save_mean, save_invstd (C, f32 or x's dtype on CPU f64);
// updates running_mean/var in place; writes y (may not alias x).
void batchnorm_fwd_train(Context& ctx, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                         const Tensor& running_mean, const Tensor& running_var,
                         const Tensor& save_mean, const Tensor& save_invstd, const Tensor& y,
                         double momentum, double eps, Activation act);
// Eval forward with running statistics. y may alias x.
void batchnorm_fwd_eval(Context& ctx, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                        const Tensor& running_mean, const Tensor& running_var, const Tensor& y,
                        double eps, Activation act);
// Training backward. With act == silu the pre-activation z is recomputed from x, save_mean,
// save_invstd, gamma, beta. Assigns dx; dgamma and dbeta are assigned, or added to when
// accumulate_params is true (parameter gradients in the flat arena).
void batchnorm_bwd(Context& ctx, const Tensor& x, const Tensor& dy, const Tensor& gamma,
                   const Tensor& beta, const Tensor& save_mean, const Tensor& save_invstd,
                   const Tensor& dx, const Tensor& dgamma, const Tensor& dbeta, Activation act,
                   bool accumulate_params);

void batchnorm_fwd_train_cpu(Context& ctx, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                             const Tensor& running_mean, const Tensor& running_var,
                             const Tensor& save_mean, const Tensor& save_invstd, const Tensor& y,
                             double momentum, double eps, Activation act);
void batchnorm_fwd_eval_cpu(Context& ctx, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                            const Tensor& running_mean, const Tensor& running_var, const Tensor& y,
                            double eps, Activation act);
void batchnorm_bwd_cpu(Context& ctx, const Tensor& x, const Tensor& dy, const Tensor& gamma,
                       const Tensor& beta, const Tensor& save_mean, const Tensor& save_invstd,
                       const Tensor& dx, const Tensor& dgamma, const Tensor& dbeta, Activation act,
                       bool accumulate_params);
void batchnorm_fwd_train_cuda(Context& ctx, const Tensor& x, const Tensor& gamma,
                              const Tensor& beta, const Tensor& running_mean,
                              const Tensor& running_var, const Tensor& save_mean,
                              const Tensor& save_invstd, const Tensor& y, double momentum,
                              double eps, Activation act);
void batchnorm_fwd_eval_cuda(Context& ctx, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                             const Tensor& running_mean, const Tensor& running_var, const Tensor& y,
                             double eps, Activation act);
void batchnorm_bwd_cuda(Context& ctx, const Tensor& x, const Tensor& dy, const Tensor& gamma,
                        const Tensor& beta, const Tensor& save_mean, const Tensor& save_invstd,
                        const Tensor& dx, const Tensor& dgamma, const Tensor& dbeta, Activation act,
                        bool accumulate_params);

}  // namespace yolo
