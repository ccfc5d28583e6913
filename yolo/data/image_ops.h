// CPU image operations on yolo::Image (RGB u8) with the reference's OpenCV 4.6 numerics: resize
// (INTER_LINEAR, INTER_AREA), the resize load_image applies, letterbox, and augment_hsv on one
// image. The data loader calls these per decoded image; the batch path is kernels/augment.h.
//   yolo::Image small = yolo::resize_for_load(im, yolo::load_image_size(im.height, im.width, 640,
//   true)); yolo::Image boxed = yolo::letterbox_image(small, yolo::letterbox_params(h, w, 640, 640,
//   false, false, true, 32));
#pragma once

#include "yolo/data/geometry.h"
#include "yolo/data/image_io.h"

namespace yolo {

// cv2.resize(im, (w, h), interpolation=cv2.INTER_LINEAR) on 8UC3, bit-exact (Note [cv2 resize]).
// An exact 2x reduction in both axes is cv2's INTER_AREA fast path, as cv2 does.
Image resize_linear(const Image& im, int w, int h);
// cv2.resize(..., interpolation=cv2.INTER_AREA) on 8UC3, bit-exact: integer factors average the
// block, other reductions use cv2's area weights, enlargements its area-mode linear weights.
Image resize_area(const Image& im, int w, int h);
// load_image's resize: a copy when size.interp is none, else the interpolation it names.
Image resize_for_load(const Image& im, const LoadSize& size);
// letterbox(): resize (linear) to unpad_w x unpad_h when that differs from the input, then a
// constant 114 border of top/bottom/left/right.
Image letterbox_image(const Image& im, const LetterboxParams& params);
// augment_hsv(im, ...) with the gains r = U(-1, 1) * [hgain, sgain, vgain] + 1 already drawn:
// cv2's 8-bit BGR2HSV, the uint8 tables, HSV2BGR (Note [cv2 8-bit HSV] in kernels/augment_pixel.h).
void augment_hsv_image(Image& im, const double gain[3]);

}  // namespace yolo
