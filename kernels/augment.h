// Augmentation apply: builds a batch of training images from decoded source images in one pass
// per output pixel — mosaic canvas, affine or perspective warp (cv2.warpAffine/warpPerspective
// numerics, border 114), mixup, HSV jitter (cv2's 8-bit HSV round trip through lookup tables),
// flips, and the cast to the model's input. The plan (yolo/data/augment.h) decides every number;
// this family only moves pixels. CPU (the reference, cv2-exact) and CUDA (same integer maths).
//   augment_apply(ctx, pixels, sources, samples, out);  // out: (B, H, W, 3) u8 | f32 | f16
#pragma once

#include <cstdint>
#include <vector>

#include "core/context.h"

namespace yolo {

// Note [Virtual canvas]
// The reference pastes up to four resized images on a 2s x 2s canvas filled with 114, then
// warpAffine reads that canvas with a constant border of 114. Here the canvas is never
// materialised: a canvas pixel is looked up in the tiles (the first tile containing it wins; tiles
// never overlap in a mosaic) and is 114 where no tile covers it or outside the canvas. The
// interpolation arithmetic is the same, so the result is the same bytes.

inline constexpr uint8_t kAugmentFill = 114;  // letterbox / mosaic / warp border value

// One decoded source image inside the flat u8 pixel buffer: (h, w, 3) RGB at `offset` bytes.
struct AugmentSource {
  int64_t offset = 0;
  int32_t width = 0;
  int32_t height = 0;
};

// A source image placed on the canvas: canvas pixel (x, y) with x0 <= x < x1, y0 <= y < y1 is
// source pixel (x - x0 + src_x, y - y0 + src_y) of sources[source].
struct AugmentTile {
  int32_t source = -1;
  int32_t x0 = 0, y0 = 0, x1 = 0, y1 = 0;
  int32_t src_x = 0, src_y = 0;
};

enum class AugmentWarp : int32_t {
  none = 0,         // output pixel (x, y) is canvas pixel (x, y)
  affine = 1,       // cv2.warpAffine(canvas, M[:2], (out_w, out_h), INTER_LINEAR, border 114)
  perspective = 2,  // cv2.warpPerspective(canvas, M, (out_w, out_h), INTER_LINEAR, border 114)
};

// One canvas and the warp that reads it.
struct AugmentView {
  int32_t n_tiles = 0;
  AugmentTile tiles[4];
  int32_t canvas_w = 0;
  int32_t canvas_h = 0;
  AugmentWarp warp = AugmentWarp::none;
  // The forward matrix M (canvas -> output, row-major 3x3) as the reference builds it; the apply
  // inverts it exactly as cv2 does (double precision, WARP_INVERSE_MAP not set).
  double m[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
};

// Everything that makes one output image.
struct AugmentSample {
  AugmentView views[2];  // views[1] is the mixup partner (used when mixup is true)
  bool mixup = false;
  double mixup_r = 1.0;  // out = uint8(trunc(a * r + b * (1 - r))), as NumPy computes it
  bool hsv = false;      // augment_hsv with the gains below (applied even when they are 1)
  double hsv_gain[3] = {1.0, 1.0, 1.0};  // r = U(-1, 1) * [hgain, sgain, vgain] + 1
  bool flip_ud = false;
  bool flip_lr = false;
};

// pixels: u8 (total bytes) holding every source image, on the context's device.
// sources, samples: host descriptors (the CUDA launcher uploads them).
// out: (B, H, W, 3) NHWC RGB on the context's device, B == samples.size(); u8 holds the pixel
// values, f32 / f16 hold value / 255 (the model's input). CPU: u8, f32. CUDA: u8, f32, f16.
void augment_apply(Context& ctx, const Tensor& pixels, const std::vector<AugmentSource>& sources,
                   const std::vector<AugmentSample>& samples, const Tensor& out);

void augment_apply_cpu(Context& ctx, const Tensor& pixels, const std::vector<AugmentSource>& sources,
                       const std::vector<AugmentSample>& samples, const Tensor& out);
void augment_apply_cuda(Context& ctx, const Tensor& pixels,
                        const std::vector<AugmentSource>& sources,
                        const std::vector<AugmentSample>& samples, const Tensor& out);

}  // namespace yolo
