// Argument checks and dispatch for kernels/resample.h (nearest 2x upsample, channel concat and
// its backward split). Mismatched shapes throw yolo::Error naming both shapes.
#include "kernels/resample.h"

#include "kernels/checks.h"
#include "kernels/dispatch.h"

namespace yolo {
namespace {

// Every part agrees with `whole` in (N, H, W) and dtype, and the channels add up.
void check_parts(const char* op, const char* whole_name, const Tensor& whole, const char* part_name,
                 const std::vector<Tensor>& parts, bool allow_undefined, Context& ctx) {
  check_activation(op, whole_name, whole, ctx);
  YOLO_CHECK(!parts.empty(), op << ": " << part_name << " is empty");
  int64_t channels = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    const std::string name = std::string(part_name) + "[" + std::to_string(i) + "]";
    if (allow_undefined && !parts[i].defined()) {
      continue;
    }
    check_activation(op, name.c_str(), parts[i], ctx);
    check_same_dtype(op, whole_name, whole, name.c_str(), parts[i]);
    YOLO_CHECK(parts[i].dim(0) == whole.dim(0) && parts[i].dim(1) == whole.dim(1) &&
                   parts[i].dim(2) == whole.dim(2),
               op << ": " << name << " and " << whole_name << " disagree in (N, H, W): "
                  << shape_str(parts[i].shape()) << " vs " << shape_str(whole.shape()));
    channels += parts[i].dim(3);
  }
  if (!allow_undefined) {
    YOLO_CHECK(channels == whole.dim(3), op << ": the channels of " << part_name << " sum to "
                                            << channels << " but " << whole_name << " has shape "
                                            << shape_str(whole.shape()));
  }
}

}  // namespace

void upsample_nearest2x_fwd(Context& ctx, const Tensor& x, const Tensor& y) {
  check_activation("upsample_nearest2x_fwd", "x", x, ctx);
  check_activation("upsample_nearest2x_fwd", "y", y, ctx);
  check_shape("upsample_nearest2x_fwd", "y", y, {x.dim(0), 2 * x.dim(1), 2 * x.dim(2), x.dim(3)});
  check_same_dtype("upsample_nearest2x_fwd", "x", x, "y", y);
  YOLO_DISPATCH(ctx, upsample_nearest2x_fwd, ctx, x, y);
}

void upsample_nearest2x_bwd(Context& ctx, const Tensor& dy, const Tensor& dx) {
  check_activation("upsample_nearest2x_bwd", "dy", dy, ctx);
  check_activation("upsample_nearest2x_bwd", "dx", dx, ctx);
  check_shape("upsample_nearest2x_bwd", "dy", dy,
              {dx.dim(0), 2 * dx.dim(1), 2 * dx.dim(2), dx.dim(3)});
  check_same_dtype("upsample_nearest2x_bwd", "dy", dy, "dx", dx);
  YOLO_DISPATCH(ctx, upsample_nearest2x_bwd, ctx, dy, dx);
}

void concat_channels_fwd(Context& ctx, const std::vector<Tensor>& xs, const Tensor& out) {
  check_parts("concat_channels_fwd", "out", out, "xs", xs, false, ctx);
  for (const Tensor& x : xs)
    YOLO_CHECK(x.raw() != out.raw(), "concat_channels_fwd: an input is the output tensor");
  YOLO_DISPATCH(ctx, concat_channels_fwd, ctx, xs, out);
}

void concat_channels_bwd(Context& ctx, const Tensor& dout, const std::vector<Tensor>& dxs) {
  check_parts("concat_channels_bwd", "dout", dout, "dxs", dxs, true, ctx);
  // An undefined dxs[i] is skipped; its channel width is what the defined ones leave over, which
  // names it only when at most one entry is undefined.
  int64_t defined_channels = 0;
  size_t undefined = 0;
  for (const Tensor& d : dxs) {
    if (d.defined()) defined_channels += d.dim(3);
    else ++undefined;
  }
  YOLO_CHECK(undefined <= 1, "concat_channels_bwd: " << undefined
                                 << " entries of dxs are undefined; at most one may be (its width "
                                    "is inferred), pass the others as tensors");
  YOLO_CHECK(undefined == 0 ? defined_channels == dout.dim(3) : defined_channels <= dout.dim(3),
             "concat_channels_bwd: the channels of dxs sum to " << defined_channels
                                                                << " but dout has shape "
                                                                << shape_str(dout.shape()));
  YOLO_DISPATCH(ctx, concat_channels_bwd, ctx, dout, dxs);
}

}  // namespace yolo
