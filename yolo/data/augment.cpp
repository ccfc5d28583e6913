// Augmentation random draws, hyp yaml reading, random_perspective's matrix and the label side of
// the warp (boxes, polygons, box candidates), with the reference's float32/float64 semantics.
#include "yolo/data/augment.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "core/philox.h"

namespace yolo {

AugmentHyp load_augment_hyp(const std::string& yaml_path) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(yaml_path);
  } catch (const YAML::BadFile&) {
    YOLO_FAIL(yaml_path << ": cannot read the hyp file (check the --hyp path)");
  } catch (const YAML::Exception& e) {
    YOLO_FAIL(yaml_path << ": not valid YAML: " << e.what());
  }
  YOLO_CHECK(root.IsMap() || root.IsNull(),
             yaml_path << ": a hyp file is a mapping of names to numbers (e.g. 'hsv_h: 0.015')");
  AugmentHyp hyp;
  struct Key {
    const char* name;
    double* value;
    bool probability;
  };
  const Key keys[] = {
      {"hsv_h", &hyp.hsv_h, false},         {"hsv_s", &hyp.hsv_s, false},
      {"hsv_v", &hyp.hsv_v, false},         {"degrees", &hyp.degrees, false},
      {"translate", &hyp.translate, false}, {"scale", &hyp.scale, false},
      {"shear", &hyp.shear, false},         {"perspective", &hyp.perspective, false},
      {"flipud", &hyp.flipud, true},        {"fliplr", &hyp.fliplr, true},
      {"mosaic", &hyp.mosaic, true},        {"mixup", &hyp.mixup, true},
      {"copy_paste", &hyp.copy_paste, true},
  };
  if (root.IsNull()) return hyp;
  for (const Key& k : keys) {
    const YAML::Node node = root[k.name];
    if (!node) continue;
    double v = 0;
    try {
      v = node.as<double>();
    } catch (const YAML::Exception&) {
      YOLO_FAIL(yaml_path << ": '" << k.name << "' must be a number, got '" << YAML::Dump(node)
                          << "'");
    }
    YOLO_CHECK(std::isfinite(v) && v >= 0.0, yaml_path << ": '" << k.name << "' is " << v
                                                       << "; it must be a finite number >= 0");
    YOLO_CHECK(!k.probability || v <= 1.0, yaml_path << ": '" << k.name << "' is " << v
                                                     << "; it is a probability in [0, 1]");
    *k.value = v;
  }
  YOLO_CHECK(hyp.scale < 1.0 || hyp.scale == 0.0,
             yaml_path << ": 'scale' is " << hyp.scale
                       << "; the scale gain is drawn from U(1 - scale, 1 + scale) and must stay "
                          "positive, so use a value below 1");
  YOLO_CHECK(hyp.translate <= 0.5, yaml_path << ": 'translate' is " << hyp.translate
                                             << "; use a fraction in [0, 0.5]");
  return hyp;
}

// ---------------------------------------------------------------------------------------------
// AugmentRng (Note [Augmentation random stream])

AugmentRng::AugmentRng(uint64_t seed, int64_t epoch, int64_t index, uint32_t stream)
    : seed_(seed),
      counter_{static_cast<uint32_t>(index), static_cast<uint32_t>(epoch),
               stream ^ (static_cast<uint32_t>(static_cast<uint64_t>(index) >> 32) << 8)} {}

uint64_t AugmentRng::next64() {
  if (used_ >= 4) {
    const Philox4 r = philox4x32_10(
        Philox4{{counter_[0], counter_[1], counter_[2], static_cast<uint32_t>(block_)}},
        PhiloxKey{{static_cast<uint32_t>(seed_), static_cast<uint32_t>(seed_ >> 32)}});
    ++block_;
    for (int k = 0; k < 4; ++k) words_[k] = r.v[k];
    used_ = 0;
  }
  const uint64_t hi = words_[used_], lo = words_[used_ + 1];
  used_ += 2;
  return (hi << 32) | lo;
}

double AugmentRng::uniform() { return static_cast<double>(next64() >> 11) * 0x1.0p-53; }

double AugmentRng::uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }

int64_t AugmentRng::below(int64_t n) {
  YOLO_CHECK(n > 0, "AugmentRng::below: n must be positive, got " << n);
  const uint64_t un = static_cast<uint64_t>(n);
  const uint64_t limit = std::numeric_limits<uint64_t>::max() - std::numeric_limits<uint64_t>::max() % un;
  uint64_t x = next64();
  while (x >= limit) x = next64();
  return static_cast<int64_t>(x % un);
}

double AugmentRng::normal() {
  // Box-Muller from two uniforms; u1 in (0, 1].
  const double u1 = 1.0 - uniform();
  const double u2 = uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
}

double AugmentRng::beta(double a, double b) {
  YOLO_CHECK(a >= 1.0 && b >= 1.0, "AugmentRng::beta: shapes must be >= 1, got " << a << ", " << b);
  // Marsaglia and Tsang's gamma sampler (shape >= 1), twice: X / (X + Y) ~ Beta(a, b).
  auto gamma = [this](double shape) {
    const double d = shape - 1.0 / 3.0;
    const double c = 1.0 / std::sqrt(9.0 * d);
    for (;;) {
      double x = 0, v = 0;
      do {
        x = normal();
        v = 1.0 + c * x;
      } while (v <= 0.0);
      v = v * v * v;
      const double u = 1.0 - uniform();
      if (std::log(u) < 0.5 * x * x + d - d * v + d * std::log(v)) return d * v;
    }
  };
  const double x = gamma(a), y = gamma(b);
  return x / (x + y);
}

// ---------------------------------------------------------------------------------------------
// random_perspective

Mat3 mat3_mul(const Mat3& a, const Mat3& b) {
  Mat3 c{};
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 3; ++j) {
      double s = 0;
      for (int k = 0; k < 3; ++k) s += a[i * 3 + k] * b[k * 3 + j];
      c[i * 3 + j] = s;
    }
  }
  return c;
}

PerspectiveDraw draw_perspective(AugmentRng& rng, const AugmentHyp& hyp) {
  PerspectiveDraw d;
  d.perspective_x = rng.uniform(-hyp.perspective, hyp.perspective);
  d.perspective_y = rng.uniform(-hyp.perspective, hyp.perspective);
  d.angle = rng.uniform(-hyp.degrees, hyp.degrees);
  d.scale = rng.uniform(1.0 - hyp.scale, 1.0 + hyp.scale);
  d.shear_x = rng.uniform(-hyp.shear, hyp.shear);
  d.shear_y = rng.uniform(-hyp.shear, hyp.shear);
  d.translate_x = rng.uniform(0.5 - hyp.translate, 0.5 + hyp.translate);
  d.translate_y = rng.uniform(0.5 - hyp.translate, 0.5 + hyp.translate);
  return d;
}

Mat3 perspective_matrix(const PerspectiveDraw& d, int in_w, int in_h, int out_w, int out_h) {
  Mat3 C{1, 0, -in_w / 2.0, 0, 1, -in_h / 2.0, 0, 0, 1};
  Mat3 P{1, 0, 0, 0, 1, 0, d.perspective_x, d.perspective_y, 1};
  // cv2.getRotationMatrix2D(center (0, 0), angle, scale): alpha = s cos(a), beta = s sin(a) with
  // the angle in degrees; [[alpha, beta, 0], [-beta, alpha, 0]].
  const double rad = d.angle * M_PI / 180.0;
  const double alpha = std::cos(rad) * d.scale, beta = std::sin(rad) * d.scale;
  Mat3 R{alpha, beta, 0, -beta, alpha, 0, 0, 0, 1};
  Mat3 S{1, std::tan(d.shear_x * M_PI / 180.0), 0, std::tan(d.shear_y * M_PI / 180.0), 1, 0, 0, 0, 1};
  Mat3 T{1, 0, d.translate_x * out_w, 0, 1, d.translate_y * out_h, 0, 0, 1};
  // Left to right, as NumPy evaluates T @ S @ R @ P @ C.
  return mat3_mul(mat3_mul(mat3_mul(mat3_mul(T, S), R), P), C);
}

bool needs_warp(const Mat3& m, bool has_border) {
  if (has_border) return true;
  const Mat3 eye{1, 0, 0, 0, 1, 0, 0, 0, 1};
  return m != eye;
}

namespace {

// One point through m as NumPy's (n, 3) @ M.T computes a row: x*m0 + y*m1 + 1*m2.
inline void map_point(const Mat3& m, double x, double y, bool perspective, double& ox, double& oy) {
  ox = x * m[0] + y * m[1] + m[2];
  oy = x * m[3] + y * m[4] + m[5];
  if (perspective) {
    const double z = x * m[6] + y * m[7] + m[8];
    ox /= z;
    oy /= z;
  }
}

}  // namespace

std::vector<double> transform_boxes(const std::vector<float>& boxes, const Mat3& m,
                                    bool perspective, int out_w, int out_h) {
  YOLO_CHECK(boxes.size() % 4 == 0, "transform_boxes: boxes must be (n, 4), got " << boxes.size()
                                                                                  << " values");
  const size_t n = boxes.size() / 4;
  std::vector<double> out(n * 4);
  for (size_t i = 0; i < n; ++i) {
    const double x1 = boxes[4 * i], y1 = boxes[4 * i + 1], x2 = boxes[4 * i + 2],
                 y2 = boxes[4 * i + 3];
    const double cx[4] = {x1, x2, x1, x2}, cy[4] = {y1, y2, y2, y1};
    double xmin = 0, ymin = 0, xmax = 0, ymax = 0;
    for (int k = 0; k < 4; ++k) {
      double px = 0, py = 0;
      map_point(m, cx[k], cy[k], perspective, px, py);
      xmin = k == 0 ? px : std::min(xmin, px);
      xmax = k == 0 ? px : std::max(xmax, px);
      ymin = k == 0 ? py : std::min(ymin, py);
      ymax = k == 0 ? py : std::max(ymax, py);
    }
    out[4 * i] = std::clamp(xmin, 0.0, static_cast<double>(out_w));
    out[4 * i + 1] = std::clamp(ymin, 0.0, static_cast<double>(out_h));
    out[4 * i + 2] = std::clamp(xmax, 0.0, static_cast<double>(out_w));
    out[4 * i + 3] = std::clamp(ymax, 0.0, static_cast<double>(out_h));
  }
  return out;
}

std::vector<double> resample_polygon(const std::vector<float>& xy, int n) {
  YOLO_CHECK(xy.size() >= 2 && xy.size() % 2 == 0,
             "resample_polygon: a polygon needs (x, y) pairs, got " << xy.size() << " values");
  // Close the polygon, then sample n points evenly in vertex-index space with linear
  // interpolation between vertices (np.interp over np.linspace(0, len - 1, n)).
  const size_t m = xy.size() / 2 + 1;
  auto vx = [&](size_t i) { return static_cast<double>(xy[2 * (i % (m - 1))]); };
  auto vy = [&](size_t i) { return static_cast<double>(xy[2 * (i % (m - 1)) + 1]); };
  std::vector<double> out(2 * static_cast<size_t>(n));
  const double last = static_cast<double>(m - 1);
  for (int k = 0; k < n; ++k) {
    // np.linspace: start + k * step, with the final point set exactly to stop.
    const double t = n == 1 ? 0.0 : (k == n - 1 ? last : k * (last / (n - 1)));
    size_t i = static_cast<size_t>(std::floor(t));
    if (i >= m - 1) i = m - 2;
    const double f = t - static_cast<double>(i);
    if (m == 2) {  // one vertex: every sample is that vertex
      out[2 * k] = vx(0);
      out[2 * k + 1] = vy(0);
      continue;
    }
    out[2 * k] = t >= last ? vx(m - 1) : vx(i) + f * (vx(i + 1) - vx(i));
    out[2 * k + 1] = t >= last ? vy(m - 1) : vy(i) + f * (vy(i + 1) - vy(i));
  }
  return out;
}

std::array<double, 4> transform_polygon_box(const std::vector<float>& xy, const Mat3& m,
                                            bool perspective, int out_w, int out_h) {
  const std::vector<double> pts = resample_polygon(xy, 1000);
  double xmin = 0, ymin = 0, xmax = 0, ymax = 0;
  bool any = false, any_nonzero_x = false;
  for (size_t k = 0; k < pts.size() / 2; ++k) {
    double px = 0, py = 0;
    map_point(m, pts[2 * k], pts[2 * k + 1], perspective, px, py);
    if (!(px >= 0 && py >= 0 && px <= out_w && py <= out_h)) continue;
    if (!any) {
      xmin = xmax = px;
      ymin = ymax = py;
      any = true;
    } else {
      xmin = std::min(xmin, px);
      xmax = std::max(xmax, px);
      ymin = std::min(ymin, py);
      ymax = std::max(ymax, py);
    }
    any_nonzero_x = any_nonzero_x || px != 0.0;
  }
  // segment2box tests `any(x)`: no inside point, or every inside x exactly 0, gives a zero box.
  if (!any_nonzero_x) return {0, 0, 0, 0};
  return {xmin, ymin, xmax, ymax};
}

std::vector<bool> box_candidates(const std::vector<float>& before, double scale,
                                 const std::vector<double>& after, double wh_thr, double ar_thr,
                                 double area_thr, double eps) {
  YOLO_CHECK(before.size() == after.size() && before.size() % 4 == 0,
             "box_candidates: before and after must both be (n, 4), got "
                 << before.size() << " and " << after.size() << " values");
  const size_t n = before.size() / 4;
  std::vector<bool> keep(n);
  const float eps_f = static_cast<float>(eps);
  for (size_t i = 0; i < n; ++i) {
    // box1 = targets * s stays float32 (a Python float does not promote a float32 array).
    const float s = static_cast<float>(scale);
    const float w1 = before[4 * i + 2] * s - before[4 * i] * s;
    const float h1 = before[4 * i + 3] * s - before[4 * i + 1] * s;
    const double w2 = after[4 * i + 2] - after[4 * i], h2 = after[4 * i + 3] - after[4 * i + 1];
    const double ar = std::max(w2 / (h2 + eps), h2 / (w2 + eps));
    const float area1 = w1 * h1 + eps_f;
    keep[i] = w2 > wh_thr && h2 > wh_thr && (w2 * h2) / static_cast<double>(area1) > area_thr &&
              ar < ar_thr;
  }
  return keep;
}

// random_perspective's label branch on (n, 5) float32 rows class, x1, y1, x2, y2, with the
// polygons when the labels have them. Returns the kept rows with their new boxes (float32).
std::vector<float> warp_labels(const std::vector<float>& labels,
                               const std::vector<std::vector<float>>& segments, const Mat3& m,
                               bool perspective, double scale, int out_w, int out_h) {
  const size_t n = labels.size() / 5;
  if (n == 0) return {};
  std::vector<float> before(n * 4);
  for (size_t r = 0; r < n; ++r) {
    for (int c = 0; c < 4; ++c) before[4 * r + c] = labels[5 * r + 1 + c];
  }
  bool use_segments = false;
  for (const auto& s : segments) {
    for (float v : s) use_segments = use_segments || v != 0.0f;
  }
  std::vector<double> after;
  if (use_segments) {
    // Rows past the polygon count keep a zero box (the reference fills new[i] per polygon only).
    after.assign(n * 4, 0.0);
    for (size_t i = 0; i < segments.size() && i < n; ++i) {
      const std::array<double, 4> b = transform_polygon_box(segments[i], m, perspective, out_w, out_h);
      for (int c = 0; c < 4; ++c) after[4 * i + c] = b[c];
    }
  } else {
    after = transform_boxes(before, m, perspective, out_w, out_h);
  }
  const std::vector<bool> keep =
      box_candidates(before, scale, after, 2.0, 100.0, use_segments ? 0.01 : 0.10);
  std::vector<float> out;
  for (size_t r = 0; r < n; ++r) {
    if (!keep[r]) continue;
    out.push_back(labels[5 * r]);
    for (int c = 0; c < 4; ++c) out.push_back(static_cast<float>(after[4 * r + c]));
  }
  return out;
}

}  // namespace yolo
