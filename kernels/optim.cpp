// Argument checks and device dispatch for kernels/optim.h (SGD, Adam/AdamW, EMA, gradient norm,
// clipping, AMP unscale over the flat arena buffers). Bad shapes, dtypes, devices or segment
// tables throw yolo::Error naming both tensors; the maths lives in kernels/cpu|cuda/optim.*.
#include "kernels/optim.h"

#include "kernels/dispatch.h"

namespace yolo {
namespace {

void check_f32_on(const char* op, const Context& ctx, const char* name, const Tensor& t) {
  check_defined(op, name, t);
  check_dtype(op, name, t, DType::f32);
  YOLO_CHECK(t.device() == ctx.device(), op << ": " << name << " is on " << t.device().str()
                                            << " but the context is on " << ctx.device().str()
                                            << " (copy it with Context::to_device/to_host)");
}

void check_scalar(const char* op, const Context& ctx, const char* name, const Tensor& t) {
  check_f32_on(op, ctx, name, t);
  YOLO_CHECK(t.numel() == 1,
             op << ": " << name << " must hold one element, got shape " << shape_str(t.shape()));
}

// A flat buffer of the same shape as params (e.g. grads or a state buffer).
void check_like(const char* op, const Context& ctx, const char* name, const Tensor& t,
                const char* ref_name, const Tensor& ref) {
  check_f32_on(op, ctx, name, t);
  check_same_shape(op, ref_name, ref, name, t);
}

// Segments: at most kMaxOptimSegments, ascending, non-overlapping ranges inside [0, numel) whose
// group is a row of hyper (G, kHyperStride).
void check_segments(const char* op, const Context& ctx, const Tensor& params,
                    const std::vector<OptimSegment>& segments, const Tensor& hyper) {
  check_f32_on(op, ctx, "hyper", hyper);
  YOLO_CHECK(hyper.ndim() == 2 && hyper.dim(1) == kHyperStride,
             op << ": hyper has shape " << shape_str(hyper.shape()) << ", expected (G, "
                << kHyperStride << ") with one row per parameter group");
  YOLO_CHECK(int(segments.size()) <= kMaxOptimSegments,
             op << ": " << segments.size() << " segments, at most " << kMaxOptimSegments
                << " are supported (merge adjacent ranges of one group)");
  int64_t prev_end = 0;
  for (size_t s = 0; s < segments.size(); ++s) {
    const OptimSegment& seg = segments[s];
    YOLO_CHECK(seg.begin >= prev_end && seg.begin <= seg.end && seg.end <= params.numel(),
               op << ": segment " << s << " [" << seg.begin << ", " << seg.end
                  << ") must lie inside params " << shape_str(params.shape())
                  << ", after the previous segment (which ended at " << prev_end << ")");
    YOLO_CHECK(seg.group >= 0 && seg.group < hyper.dim(0),
               op << ": segment " << s << " uses group " << seg.group << " but hyper "
                  << shape_str(hyper.shape()) << " has " << hyper.dim(0) << " rows");
    prev_end = seg.end;
  }
}

}  // namespace

void sgd_step(Context& ctx, const Tensor& params, const Tensor& grads, const Tensor& momentum_buf,
              const std::vector<OptimSegment>& segments, const Tensor& hyper, bool nesterov) {
  const char* op = "sgd_step";
  check_f32_on(op, ctx, "params", params);
  check_like(op, ctx, "grads", grads, "params", params);
  check_like(op, ctx, "momentum_buf", momentum_buf, "params", params);
  check_segments(op, ctx, params, segments, hyper);
  YOLO_DISPATCH(ctx, sgd_step, ctx, params, grads, momentum_buf, segments, hyper, nesterov);
}

void adam_step(Context& ctx, const Tensor& params, const Tensor& grads, const Tensor& exp_avg,
               const Tensor& exp_avg_sq, const std::vector<OptimSegment>& segments,
               const Tensor& hyper, bool decoupled) {
  const char* op = decoupled ? "adamw_step" : "adam_step";
  check_f32_on(op, ctx, "params", params);
  check_like(op, ctx, "grads", grads, "params", params);
  check_like(op, ctx, "exp_avg", exp_avg, "params", params);
  check_like(op, ctx, "exp_avg_sq", exp_avg_sq, "params", params);
  check_segments(op, ctx, params, segments, hyper);
  YOLO_DISPATCH(ctx, adam_step, ctx, params, grads, exp_avg, exp_avg_sq, segments, hyper,
                decoupled);
}

void ema_update(Context& ctx, const Tensor& ema, const Tensor& src, const Tensor& decay) {
  const char* op = "ema_update";
  check_f32_on(op, ctx, "ema", ema);
  check_like(op, ctx, "src", src, "ema", ema);
  check_scalar(op, ctx, "decay", decay);
  YOLO_DISPATCH(ctx, ema_update, ctx, ema, src, decay);
}

void global_grad_norm(Context& ctx, const Tensor& grads, const Tensor& out) {
  const char* op = "global_grad_norm";
  check_f32_on(op, ctx, "grads", grads);
  check_scalar(op, ctx, "out", out);
  YOLO_DISPATCH(ctx, global_grad_norm, ctx, grads, out);
}

void clip_grad_norm(Context& ctx, const Tensor& grads, const Tensor& norm, double max_norm) {
  const char* op = "clip_grad_norm";
  check_f32_on(op, ctx, "grads", grads);
  check_scalar(op, ctx, "norm", norm);
  YOLO_CHECK(max_norm >= 0.0, op << ": max_norm must be a non-negative number, got " << max_norm);
  YOLO_DISPATCH(ctx, clip_grad_norm, ctx, grads, norm, max_norm);
}

void unscale_check(Context& ctx, const Tensor& grads, const Tensor& inv_scale,
                   const Tensor& found_inf) {
  const char* op = "unscale_check";
  check_f32_on(op, ctx, "grads", grads);
  check_scalar(op, ctx, "inv_scale", inv_scale);
  check_scalar(op, ctx, "found_inf", found_inf);
  YOLO_DISPATCH(ctx, unscale_check, ctx, grads, inv_scale, found_inf);
}

}  // namespace yolo
