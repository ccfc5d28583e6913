// Argument checks and dispatch for kernels/reorg.h (Focus's space-to-depth). Mismatched shapes
// throw yolo::Error naming both shapes.
#include "kernels/reorg.h"

#include "kernels/dispatch.h"

namespace yolo {
namespace {

void check_pair(const char* op, Context& ctx, const Tensor& full, const Tensor& packed) {
  check_defined(op, "full-size tensor", full);
  check_defined(op, "packed tensor", packed);
  check_ndim(op, "full-size tensor", full, 4);
  check_same_dtype(op, "full-size tensor", full, "packed tensor", packed);
  for (const Tensor* t : {&full, &packed}) {
    YOLO_CHECK(t->device() == ctx.device(), op << ": a tensor is on " << t->device().str()
                                               << " but the context is on " << ctx.device().str());
  }
  YOLO_CHECK(full.dim(1) % 2 == 0 && full.dim(2) % 2 == 0,
             op << ": H and W must be even (Focus slices rows and columns in pairs), got "
                << shape_str(full.shape()));
  check_shape(op, "packed tensor", packed,
              {full.dim(0), full.dim(1) / 2, full.dim(2) / 2, 4 * full.dim(3)});
  const DType d = full.dtype();
  const bool ok = ctx.device().is_cpu() ? (d == DType::f32 || d == DType::f64)
                                        : (d == DType::f32 || d == DType::f16 || d == DType::bf16);
  YOLO_CHECK(ok, op << ": dtype " << dtype_name(d) << " is not supported on "
                    << ctx.device().str() << " (cpu: f32, f64; cuda: f32, f16, bf16)");
}

}  // namespace

void space_to_depth_fwd(Context& ctx, const Tensor& x, const Tensor& y) {
  check_pair("space_to_depth_fwd", ctx, x, y);
  YOLO_DISPATCH(ctx, space_to_depth_fwd, ctx, x, y);
}

void space_to_depth_bwd(Context& ctx, const Tensor& dy, const Tensor& dx) {
  check_pair("space_to_depth_bwd", ctx, dx, dy);
  YOLO_DISPATCH(ctx, space_to_depth_bwd, ctx, dy, dx);
}

}  // namespace yolo
