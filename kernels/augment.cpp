// Argument checks and dispatch for kernels/augment.h: every descriptor is validated on the host
// before any pixel is read, so a bad plan throws yolo::Error naming the sample, view and tile.
#include "kernels/augment.h"

#include <cmath>

#include "kernels/dispatch.h"

namespace yolo {
namespace {

constexpr const char* kOp = "augment_apply";

void check_view(const AugmentView& v, const std::vector<AugmentSource>& sources, size_t n, int k) {
  YOLO_CHECK(v.n_tiles >= 0 && v.n_tiles <= 4, kOp << ": sample " << n << " view " << k << " has "
                                                   << v.n_tiles << " tiles (0..4 allowed)");
  YOLO_CHECK(v.canvas_w > 0 && v.canvas_h > 0, kOp << ": sample " << n << " view " << k
                                                   << " has an empty canvas " << v.canvas_w << "x"
                                                   << v.canvas_h);
  YOLO_CHECK(v.warp == AugmentWarp::none || v.warp == AugmentWarp::affine ||
                 v.warp == AugmentWarp::perspective,
             kOp << ": sample " << n << " view " << k << " has an unknown warp "
                 << static_cast<int>(v.warp));
  for (int i = 0; i < 9; ++i) {
    YOLO_CHECK(std::isfinite(v.m[i]), kOp << ": sample " << n << " view " << k
                                          << " has a non-finite matrix entry m[" << i << "]");
  }
  for (int t = 0; t < v.n_tiles; ++t) {
    const AugmentTile& tile = v.tiles[t];
    YOLO_CHECK(tile.source >= 0 && size_t(tile.source) < sources.size(),
               kOp << ": sample " << n << " view " << k << " tile " << t << " points at source "
                   << tile.source << " but there are " << sources.size() << " sources");
    const AugmentSource& src = sources[size_t(tile.source)];
    const int w = tile.x1 - tile.x0, h = tile.y1 - tile.y0;
    YOLO_CHECK(w >= 0 && h >= 0 && tile.src_x >= 0 && tile.src_y >= 0 &&
                   int64_t(tile.src_x) + w <= src.width && int64_t(tile.src_y) + h <= src.height,
               kOp << ": sample " << n << " view " << k << " tile " << t << " (canvas x " << tile.x0
                   << ".." << tile.x1 << ", y " << tile.y0 << ".." << tile.y1 << " from source x "
                   << tile.src_x << ", y " << tile.src_y << ") is outside its source "
                   << tile.source << " of " << src.width << "x" << src.height);
  }
}

void check_args(Context& ctx, const Tensor& pixels, const std::vector<AugmentSource>& sources,
                const std::vector<AugmentSample>& samples, const Tensor& out) {
  check_defined(kOp, "pixels", pixels);
  check_defined(kOp, "out", out);
  check_dtype(kOp, "pixels", pixels, DType::u8);
  for (const Tensor* t : {&pixels, &out}) {
    YOLO_CHECK(t->device() == ctx.device(), kOp << ": a tensor is on " << t->device().str()
                                                << " but the context is on " << ctx.device().str());
  }
  check_shape(kOp, "out", out,
              {int64_t(samples.size()), out.ndim() == 4 ? out.dim(1) : 1,
               out.ndim() == 4 ? out.dim(2) : 1, 3});
  const DType d = out.dtype();
  const bool ok = ctx.device().is_cpu() ? (d == DType::u8 || d == DType::f32)
                                        : (d == DType::u8 || d == DType::f32 || d == DType::f16);
  YOLO_CHECK(ok, kOp << ": out dtype " << dtype_name(d) << " is not supported on "
                     << ctx.device().str() << " (cpu: u8, f32; cuda: u8, f32, f16)");
  for (size_t i = 0; i < sources.size(); ++i) {
    const AugmentSource& s = sources[i];
    YOLO_CHECK(s.width > 0 && s.height > 0 && s.offset >= 0 &&
                   s.offset + int64_t(s.width) * s.height * 3 <= pixels.numel(),
               kOp << ": source " << i << " (" << s.width << "x" << s.height << " at byte "
                   << s.offset << ") does not fit in the " << pixels.numel()
                   << "-byte pixel buffer");
  }
  for (size_t n = 0; n < samples.size(); ++n) {
    const AugmentSample& s = samples[n];
    check_view(s.views[0], sources, n, 0);
    if (s.mixup) {
      check_view(s.views[1], sources, n, 1);
      YOLO_CHECK(std::isfinite(s.mixup_r), kOp << ": sample " << n << " has mixup_r " << s.mixup_r);
    }
    if (s.hsv) {
      for (int c = 0; c < 3; ++c) {
        YOLO_CHECK(std::isfinite(s.hsv_gain[c]),
                   kOp << ": sample " << n << " has hsv_gain[" << c << "] " << s.hsv_gain[c]);
      }
    }
  }
}

}  // namespace

void augment_apply(Context& ctx, const Tensor& pixels, const std::vector<AugmentSource>& sources,
                   const std::vector<AugmentSample>& samples, const Tensor& out) {
  check_args(ctx, pixels, sources, samples, out);
  YOLO_DISPATCH(ctx, augment_apply, ctx, pixels, sources, samples, out);
}

}  // namespace yolo
