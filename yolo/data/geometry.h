// The deterministic geometry of the reference's data pipeline, with no pixels involved: the size
// load_image resizes to, letterbox's scale and borders, the label box conversions __getitem__
// applies around letterbox, and the rectangular batch shapes of LoadImagesAndLabels(rect=True).
//   LetterboxParams lb = yolo::letterbox_params(h, w, 640, 640, false, false, true, 32);
//   auto xyxy = yolo::xywhn_to_xyxy(boxes, lb.ratio_w * w, lb.ratio_h * h, lb.dw, lb.dh);
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace yolo {

// The interpolation load_image hands cv2.resize (none: r == 1, the image is kept as read).
enum class Interp : uint8_t { none = 0, linear = 1, area = 2 };

struct LoadSize {
  int h = 0;
  int w = 0;
  Interp interp = Interp::none;
};
// load_image: r = img_size / max(h0, w0); when r != 1 the image becomes (int(h0 * r), int(w0 * r))
// (floored), resized with linear if augment or r > 1, else area. A side that floors to 0 throws
// yolo::Error (cv2.resize would assert).
LoadSize load_image_size(int h0, int w0, int img_size, bool augment);

struct LetterboxParams {
  double ratio_w = 1.0;  // scale from the input to the resized image, per axis
  double ratio_h = 1.0;
  int unpad_w = 0;  // the resized image before padding
  int unpad_h = 0;
  double dw = 0.0;  // padding per side as letterbox returns it (half the total; may end in .5)
  double dh = 0.0;
  int top = 0;     // integer borders: round(dh - 0.1), round(dh + 0.1), likewise for dw, with
  int bottom = 0;  // Python's round-half-even; the odd pixel goes to bottom/right
  int left = 0;
  int right = 0;
  int out_h() const { return unpad_h + top + bottom; }
  int out_w() const { return unpad_w + left + right; }
};
// letterbox(im of h x w, new_shape=(new_h, new_w), auto, scaleFill, scaleup, stride) without the
// image (Note in geometry.cpp). auto pads only to the next multiple of stride; scale_fill (when not
// auto) stretches to exactly new_h x new_w; scaleup false never enlarges. Throws yolo::Error for a
// non-positive size or a resized side of 0.
LetterboxParams letterbox_params(int h, int w, int new_h, int new_w, bool auto_, bool scale_fill,
                                 bool scaleup, int stride);

// xywhn2xyxy: boxes (n, 4) row-major normalised centre x, y, width, height -> (n, 4) pixel x1, y1,
// x2, y2 = w * (x -/+ bw / 2) + padw, h * (y -/+ bh / 2) + padh, in float32 as NumPy computes it
// on the reference's float32 label arrays.
std::vector<float> xywhn_to_xyxy(const std::vector<float>& boxes, double w, double h,
                                 double padw = 0.0, double padh = 0.0);
// xyxy2xywhn: boxes (n, 4) row-major pixel x1, y1, x2, y2 -> (n, 4) normalised centre x, y, width,
// height, float32. With clip, x is first clamped to [0, w - eps] and y to [0, h - eps] (the
// reference clips its input in place; here the input is left alone).
std::vector<float> xyxy_to_xywhn(const std::vector<float>& boxes, double w, double h,
                                 bool clip = false, double eps = 0.0);

struct RectBatches {
  std::vector<int64_t> order;  // image indices sorted by aspect ratio h / w, exactly as NumPy's
                               // default argsort orders them (ties included)
  std::vector<std::pair<int, int>> shapes_hw;  // per batch (h, w) of the letterbox target
};
// The rect branch of LoadImagesAndLabels.__init__: shapes_wh holds each image's (w, h); image k of
// the sorted order falls in batch k / batch_size; per batch the h/w factors are (max_ar, 1) when
// max_ar < 1, (1, 1 / min_ar) when min_ar > 1, else (1, 1); shape = ceil(factor * img_size / stride
// + pad) * stride. Throws yolo::Error for an empty list, a non-positive size or batch_size.
RectBatches rect_batch_shapes(const std::vector<std::pair<int, int>>& shapes_wh, int batch_size,
                              int img_size, int stride, double pad);

}  // namespace yolo
