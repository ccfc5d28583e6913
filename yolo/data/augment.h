// Augmentation plans and label transforms with the reference's semantics (utils/augmentations.py
// and LoadImagesAndLabels.load_mosaic at 48a85314). Every random number comes from Philox keyed
// by (seed, epoch, index), so a sample is the same whatever thread or worker makes it.
//   AugmentHyp hyp = load_hyp("configs/hyp.scratch-low.yaml");
//   AugmentRng rng(seed, epoch, index);  double u = rng.uniform(0.5, 1.5);
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace yolo {

// The augmentation keys of a reference hyp yaml (the training keys live with the trainer).
struct AugmentHyp {
  double hsv_h = 0.015, hsv_s = 0.7, hsv_v = 0.4;
  double degrees = 0.0, translate = 0.1, scale = 0.5, shear = 0.0, perspective = 0.0;
  double flipud = 0.0, fliplr = 0.5, mosaic = 1.0, mixup = 0.0, copy_paste = 0.0;
};
// Reads the augmentation keys from a hyp yaml (other keys are ignored; a missing augmentation key
// keeps its hyp.scratch-low value). Throws yolo::Error naming the file and key for a value that
// is not a number or is out of range (probabilities outside [0, 1], negative magnitudes).
AugmentHyp load_augment_hyp(const std::string& yaml_path);

// Note [Augmentation random stream]
// One sample's draws come from Philox4x32-10 with key = seed and counter = (index, epoch, stream,
// n): word k of block n. Draw j of a stream uses 64 bits (two words) for a double in [0, 1), so
// plans do not share numbers between samples, epochs or purposes (stream 0: mosaic and warp,
// stream 1: HSV and mixup, stream 2: the mixup partner's own mosaic).
class AugmentRng {
 public:
  AugmentRng(uint64_t seed, int64_t epoch, int64_t index, uint32_t stream = 0);
  double uniform();                     // [0, 1)
  double uniform(double lo, double hi);  // lo + (hi - lo) * uniform(), as Python's random.uniform
  int64_t below(int64_t n);             // integer in [0, n), unbiased
  double beta(double a, double b);      // Beta(a, b) through two gamma draws (Marsaglia-Tsang)
 private:
  double normal();
  uint64_t next64();
  uint64_t seed_;
  uint32_t counter_[3];
  uint64_t block_ = 0;
  uint32_t words_[4] = {0, 0, 0, 0};
  int used_ = 4;
};

// 3x3 row-major matrices, as NumPy holds them.
using Mat3 = std::array<double, 9>;
Mat3 mat3_mul(const Mat3& a, const Mat3& b);

// random_perspective's matrix for an input of in_w x in_h and an output of out_w x out_h (the
// reference's width/height after the border), from draws in the reference's order: perspective,
// rotation+scale (cv2.getRotationMatrix2D about the origin), shear x, shear y, translation.
// Also returns the scale s the box-candidate filter compares areas with.
struct PerspectiveDraw {
  double perspective_x = 0, perspective_y = 0, angle = 0, scale = 1, shear_x = 0, shear_y = 0,
         translate_x = 0.5, translate_y = 0.5;  // translate as a fraction of out_w / out_h
};
PerspectiveDraw draw_perspective(AugmentRng& rng, const AugmentHyp& hyp);
Mat3 perspective_matrix(const PerspectiveDraw& d, int in_w, int in_h, int out_w, int out_h);
// Whether the reference warps the image: border != 0 or M != identity.
bool needs_warp(const Mat3& m, bool has_border);

// boxes: (n, 4) pixel xyxy (float32, as the reference's label arrays). Transforms the four
// corners by m in float64 (dividing by the third coordinate when perspective), takes their extent
// and clips it to [0, out_w] x [0, out_h]: random_perspective's box branch. Returns (n, 4) float64.
std::vector<double> transform_boxes(const std::vector<float>& boxes, const Mat3& m, bool perspective,
                                    int out_w, int out_h);
// resample_segments for one polygon xy = (x0, y0, x1, y1, ...): closed, then n points evenly
// spaced in vertex-index space (np.interp over np.linspace). Returns (n, 2) float64.
std::vector<double> resample_polygon(const std::vector<float>& xy, int n);
// random_perspective's polygon branch for one polygon (pixel coordinates): resample to 1000
// points, transform, and take the extent of the points inside [0, out_w] x [0, out_h]
// (segment2box; all zeros when no inside point has a non-zero x, as its any(x) test gives).
std::array<double, 4> transform_polygon_box(const std::vector<float>& xy, const Mat3& m,
                                            bool perspective, int out_w, int out_h);
// box_candidates(box1 = before * scale, box2 = after): keep when w2 > wh_thr, h2 > wh_thr,
// w2 * h2 / (w1 * h1 + eps) > area_thr and max(w2 / h2, h2 / w2) < ar_thr. `before` is (n, 4)
// float32 xyxy (box1 is computed in float32 as NumPy does), `after` (n, 4) float64 xyxy.
// area_thr is 0.1 for boxes, 0.01 when the labels are polygons.
std::vector<bool> box_candidates(const std::vector<float>& before, double scale,
                                 const std::vector<double>& after, double wh_thr = 2.0,
                                 double ar_thr = 100.0, double area_thr = 0.1, double eps = 1e-16);

// random_perspective's label side: labels (n, 5) float32 rows class, x1, y1, x2, y2 (pixels) and,
// when any polygon has a non-zero coordinate, the polygons (pixel x0 y0 x1 y1 ...; row i uses
// polygon i, rows past the polygon count get a zero box as in the reference) -> the rows that pass
// box_candidates, with their new boxes rounded to float32.
std::vector<float> warp_labels(const std::vector<float>& labels,
                               const std::vector<std::vector<float>>& segments, const Mat3& m,
                               bool perspective, double scale, int out_w, int out_h);

}  // namespace yolo
