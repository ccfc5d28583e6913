// Argument checks and device dispatch for kernels/batchnorm.h (batch norm, optionally + SiLU).
// x, y, dy, dx: (..., C) contiguous, viewed as (M, C). Per-channel tensors (gamma, beta, running_*,
// save_*, dgamma, dbeta): (C), f32 — except on the CPU with f64 x, where they are f64 too so that
// finite-difference checks run entirely in f64 (bn_param_dtype below).
#include "kernels/batchnorm.h"

#include "kernels/dispatch.h"

namespace yolo {
namespace {

// The dtype of every per-channel tensor for activations of dtype x.
DType bn_param_dtype(const Tensor& x) {
  return x.dtype() == DType::f64 ? DType::f64 : DType::f32;
}

void check_on_ctx(const char* op, Context& ctx, const char* name, const Tensor& t) {
  check_defined(op, name, t);
  YOLO_CHECK(t.device() == ctx.device(), op << ": " << name << " is on " << t.device().str()
                                            << " but the context is on " << ctx.device().str());
}

// x: (..., C); returns C.
int64_t check_x(const char* op, Context& ctx, const Tensor& x) {
  check_on_ctx(op, ctx, "x", x);
  YOLO_CHECK(x.ndim() >= 1 && x.dim(-1) > 0,
             op << ": x must be (..., C) with C > 0, got " << shape_str(x.shape()));
  const DType d = x.dtype();
  if (ctx.device().is_cpu()) {
    YOLO_CHECK(d == DType::f32 || d == DType::f64,
               op << ": on the CPU x must be f32 or f64, got " << x.str());
  } else {
    YOLO_CHECK(d == DType::f32 || d == DType::f16 || d == DType::bf16,
               op << ": on CUDA x must be f32, f16 or bf16, got " << x.str());
  }
  return x.dim(-1);
}

// An activation-shaped tensor (y, dy, dx): like x in shape, dtype and device.
void check_like_x(const char* op, Context& ctx, const Tensor& x, const char* name,
                  const Tensor& t) {
  check_on_ctx(op, ctx, name, t);
  check_same_shape(op, "x", x, name, t);
  check_same_dtype(op, "x", x, name, t);
}

// A per-channel tensor: (C) of bn_param_dtype(x).
void check_channel(const char* op, Context& ctx, const Tensor& x, const char* name,
                   const Tensor& t) {
  check_on_ctx(op, ctx, name, t);
  YOLO_CHECK(t.shape() == Shape{x.dim(-1)}, op << ": " << name << " has shape "
                                               << shape_str(t.shape()) << " but x "
                                               << shape_str(x.shape()) << " has " << x.dim(-1)
                                               << " channels: expected (" << x.dim(-1) << ")");
  check_dtype(op, name, t, bn_param_dtype(x));
}

void check_eps(const char* op, double eps) {
  YOLO_CHECK(eps > 0.0, op << ": eps must be > 0, got " << eps);
}

}  // namespace

void batchnorm_fwd_train(Context& ctx, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                         const Tensor& running_mean, const Tensor& running_var,
                         const Tensor& save_mean, const Tensor& save_invstd, const Tensor& y,
                         double momentum, double eps, Activation act) {
  const char* op = "batchnorm_fwd_train";
  const int64_t c = check_x(op, ctx, x);
  check_like_x(op, ctx, x, "y", y);
  check_channel(op, ctx, x, "gamma", gamma);
  check_channel(op, ctx, x, "beta", beta);
  check_channel(op, ctx, x, "running_mean", running_mean);
  check_channel(op, ctx, x, "running_var", running_var);
  check_channel(op, ctx, x, "save_mean", save_mean);
  check_channel(op, ctx, x, "save_invstd", save_invstd);
  YOLO_CHECK(x.numel() / c > 1, op << ": training needs more than one value per channel for the "
                                      "batch variance, but x "
                                   << shape_str(x.shape()) << " has M = " << x.numel() / c
                                   << "; use a larger batch or eval mode");
  YOLO_CHECK(x.numel() == 0 || y.raw() != x.raw(),
             op << ": y must not alias x (backward reads x); pass a separate output");
  YOLO_CHECK(momentum >= 0.0 && momentum <= 1.0,
             op << ": momentum must be in [0, 1], got " << momentum);
  check_eps(op, eps);
  YOLO_DISPATCH(ctx, batchnorm_fwd_train, ctx, x, gamma, beta, running_mean, running_var, save_mean,
                save_invstd, y, momentum, eps, act);
}

void batchnorm_fwd_eval(Context& ctx, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                        const Tensor& running_mean, const Tensor& running_var, const Tensor& y,
                        double eps, Activation act) {
  const char* op = "batchnorm_fwd_eval";
  check_x(op, ctx, x);
  check_like_x(op, ctx, x, "y", y);
  check_channel(op, ctx, x, "gamma", gamma);
  check_channel(op, ctx, x, "beta", beta);
  check_channel(op, ctx, x, "running_mean", running_mean);
  check_channel(op, ctx, x, "running_var", running_var);
  check_eps(op, eps);
  if (x.numel() == 0) return;
  YOLO_DISPATCH(ctx, batchnorm_fwd_eval, ctx, x, gamma, beta, running_mean, running_var, y, eps,
                act);
}

void batchnorm_bwd(Context& ctx, const Tensor& x, const Tensor& dy, const Tensor& gamma,
                   const Tensor& beta, const Tensor& save_mean, const Tensor& save_invstd,
                   const Tensor& dx, const Tensor& dgamma, const Tensor& dbeta, Activation act,
                   bool accumulate_params) {
  const char* op = "batchnorm_bwd";
  check_x(op, ctx, x);
  check_like_x(op, ctx, x, "dy", dy);
  check_like_x(op, ctx, x, "dx", dx);
  check_channel(op, ctx, x, "gamma", gamma);
  check_channel(op, ctx, x, "beta", beta);
  check_channel(op, ctx, x, "save_mean", save_mean);
  check_channel(op, ctx, x, "save_invstd", save_invstd);
  check_channel(op, ctx, x, "dgamma", dgamma);
  check_channel(op, ctx, x, "dbeta", dbeta);
  YOLO_DISPATCH(ctx, batchnorm_bwd, ctx, x, dy, gamma, beta, save_mean, save_invstd, dx, dgamma,
                dbeta, act, accumulate_params);
}

}  // namespace yolo
