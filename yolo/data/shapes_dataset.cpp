// The synthetic shapes dataset (yolo/data/shapes_dataset.h): a seeded renderer of polygons on
// textured backgrounds with an integer scanline fill, the label writer, and the
// `yolo dataset shapes` command. Everything random comes from Philox keyed by (seed, split, index).
#include "yolo/data/shapes_dataset.h"

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/philox.h"

namespace yolo {

namespace fs = std::filesystem;

const std::vector<std::string>& shapes_class_names() {
  static const std::vector<std::string> names = {"rectangle", "ellipse", "triangle", "star",
                                                 "cross",     "ring",    "hexagon",  "arrow"};
  return names;
}

namespace {

// Words of Philox4x32-10 with key = seed and counter = (draw, split, index): stream for one image.
class ImageRng {
 public:
  ImageRng(uint64_t seed, uint32_t split, uint64_t index)
      : key_{{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)}},
        index_lo_(static_cast<uint32_t>(index)),
        index_hi_split_(static_cast<uint32_t>(index >> 32) ^ (split << 31)) {}

  uint32_t next() {
    if (pos_ == 4) {
      block_ = philox4x32_10(Philox4{{counter_, index_lo_, index_hi_split_, 0x5A4E5u}}, key_);
      ++counter_;
      pos_ = 0;
    }
    return block_.v[pos_++];
  }
  // Uniform in [0, 1) with 32 random bits.
  double uniform() { return next() * (1.0 / 4294967296.0); }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // Uniform integer in [lo, hi].
  int integer(int lo, int hi) {
    return lo + static_cast<int>(uniform() * static_cast<double>(hi - lo + 1));
  }
  bool chance(double p) { return uniform() < p; }
  double log_uniform(double lo, double hi) { return lo * std::pow(hi / lo, uniform()); }

 private:
  PhiloxKey key_;
  uint32_t index_lo_, index_hi_split_;
  uint32_t counter_ = 0;
  Philox4 block_{};
  int pos_ = 4;
};

// sin and cos by quadrant reduction and Taylor series on |r| <= pi/4, with + * / only: the polygon
// vertices are then the same on every machine, where libm's sin/cos may differ in the last bit.
void sincos_portable(double a, double& s, double& c) {
  constexpr double kHalfPi = 1.5707963267948966;
  const double qf = std::floor(a / kHalfPi + 0.5);
  const double r = a - qf * kHalfPi;
  const double r2 = r * r;
  const double sr =
      r * (1 - r2 / 6 *
                   (1 - r2 / 20 * (1 - r2 / 42 * (1 - r2 / 72 * (1 - r2 / 110 * (1 - r2 / 156))))));
  const double cr =
      1 - r2 / 2 * (1 - r2 / 12 * (1 - r2 / 30 * (1 - r2 / 56 * (1 - r2 / 90 * (1 - r2 / 132)))));
  const int q = ((static_cast<int>(qf) % 4) + 4) % 4;
  switch (q) {
    case 0:
      s = sr, c = cr;
      break;
    case 1:
      s = cr, c = -sr;
      break;
    case 2:
      s = -sr, c = -cr;
      break;
    default:
      s = -cr, c = sr;
      break;
  }
}

constexpr double kPi = 3.14159265358979323846;

// Vertices in 1/256 pixel units.
constexpr int64_t kFix = 256;
struct FixPt {
  int64_t x, y;
};
using Contour = std::vector<FixPt>;

struct Color {
  int r, g, b;
};

// Note [Scanline fill]
// Even-odd fill of one or more closed contours, no antialiasing: pixel (x, y) is inside when its
// centre (x + 1/2, y + 1/2) is, with edges half-open in y so shared vertices count once. All
// arithmetic is on 64-bit integers (1/256 px vertices), so the pixel set is exact and portable.
// `span(y, x_begin, x_end)` receives every covered run, unclipped; the caller clips.
template <typename SpanFn>
void fill_contours(const std::vector<Contour>& contours, SpanFn&& span) {
  int64_t ymin = INT64_MAX, ymax = INT64_MIN;
  for (const Contour& c : contours) {
    for (const FixPt& p : c) {
      ymin = std::min(ymin, p.y);
      ymax = std::max(ymax, p.y);
    }
  }
  if (ymin > ymax) return;
  // Rows whose centre lies in [ymin, ymax): centre (2y + 1) * kFix / 2 >= ymin.
  const int64_t y_first = (ymin - kFix / 2 + kFix - 1) >= 0 ? (ymin - kFix / 2 + kFix - 1) / kFix
                                                            : -((kFix / 2 - ymin) / kFix);
  std::vector<int64_t> xs;
  for (int64_t y = y_first;; ++y) {
    const int64_t yc = y * kFix + kFix / 2;
    if (yc >= ymax) break;
    if (yc < ymin) continue;
    xs.clear();
    for (const Contour& c : contours) {
      const size_t n = c.size();
      for (size_t i = 0; i < n; ++i) {
        const FixPt a = c[i], b = c[(i + 1) % n];
        if (a.y == b.y) continue;
        const FixPt lo = a.y < b.y ? a : b, hi = a.y < b.y ? b : a;
        if (yc < lo.y || yc >= hi.y) continue;
        // x at yc, in 1/256 px, rounded toward -inf.
        const int64_t num = (yc - lo.y) * (hi.x - lo.x);
        const int64_t den = hi.y - lo.y;
        int64_t q = num / den;
        if ((num % den != 0) && ((num < 0) != (den < 0))) --q;
        xs.push_back(lo.x + q);
      }
    }
    std::sort(xs.begin(), xs.end());
    for (size_t i = 0; i + 1 < xs.size(); i += 2) {
      // Pixels with centre in [xa, xb): x >= (xa - 128) / 256 rounded up, likewise for the end.
      auto ceil_div = [](int64_t v) { return v >= 0 ? (v + kFix - 1) / kFix : -((-v) / kFix); };
      const int64_t x0 = ceil_div(xs[i] - kFix / 2), x1 = ceil_div(xs[i + 1] - kFix / 2);
      if (x1 > x0) span(y, x0, x1);
    }
  }
}

// Unit-size outline of class `cls` (roughly within [-1, 1]^2), as contours in local coordinates.
std::vector<std::vector<std::pair<double, double>>> unit_shape(int cls, ImageRng& rng) {
  using Poly = std::vector<std::pair<double, double>>;
  auto regular = [](int n, double r, double phase) {
    Poly p;
    for (int k = 0; k < n; ++k) {
      double s, c;
      sincos_portable(phase + 2 * kPi * k / n, s, c);
      p.push_back({r * c, r * s});
    }
    return p;
  };
  switch (cls) {
    case 0:
      return {{{-1, -1}, {1, -1}, {1, 1}, {-1, 1}}};
    case 1:
      return {regular(48, 1.0, 0.0)};
    case 2: {
      Poly p = regular(3, 1.0, -kPi / 2);
      for (auto& v : p) {
        v.first *= rng.uniform(0.8, 1.2);
        v.second *= rng.uniform(0.8, 1.2);
      }
      return {p};
    }
    case 3: {
      const double inner = rng.uniform(0.38, 0.5);
      Poly p;
      for (int k = 0; k < 10; ++k) {
        double s, c;
        sincos_portable(-kPi / 2 + kPi * k / 5, s, c);
        const double r = (k % 2 == 0) ? 1.0 : inner;
        p.push_back({r * c, r * s});
      }
      return {p};
    }
    case 4: {
      const double t = rng.uniform(0.28, 0.4);
      return {{{-t, -1},
               {t, -1},
               {t, -t},
               {1, -t},
               {1, t},
               {t, t},
               {t, 1},
               {-t, 1},
               {-t, t},
               {-1, t},
               {-1, -t},
               {-t, -t}}};
    }
    case 5:
      return {regular(48, 1.0, 0.0), regular(48, rng.uniform(0.45, 0.7), 0.0)};
    case 6:
      return {regular(6, 1.0, 0.0)};
    default: {
      const double shaft = rng.uniform(0.2, 0.3), head = rng.uniform(0.55, 0.75);
      const double neck = rng.uniform(0.0, 0.3);
      return {{{-1, -shaft},
               {neck, -shaft},
               {neck, -head},
               {1, 0},
               {neck, head},
               {neck, shaft},
               {-1, shaft}}};
    }
  }
}

Color random_color(ImageRng& rng) {
  return {rng.integer(0, 255), rng.integer(0, 255), rng.integer(0, 255)};
}

uint8_t clamp_u8(int v) {
  return static_cast<uint8_t>(std::clamp(v, 0, 255));
}

// Textured background: gradient, noise, stripes, checks or smooth colour blobs, then grain.
void render_background(Image& im, ImageRng& rng) {
  const int w = im.width, h = im.height;
  const int kind = rng.integer(0, 4);
  const Color c0 = random_color(rng), c1 = random_color(rng);
  int grain = rng.integer(0, 10);
  auto put = [&](int x, int y, double t) {
    uint8_t* p = im.at(x, y);
    p[0] = clamp_u8(static_cast<int>(std::lround(c0.r + t * (c1.r - c0.r))));
    p[1] = clamp_u8(static_cast<int>(std::lround(c0.g + t * (c1.g - c0.g))));
    p[2] = clamp_u8(static_cast<int>(std::lround(c0.b + t * (c1.b - c0.b))));
  };
  double s, c;
  sincos_portable(rng.uniform(0, 2 * kPi), s, c);
  if (kind == 0) {  // linear gradient
    const double half = 0.5 * (std::abs(w * c) + std::abs(h * s)) + 1e-9;
    for (int y = 0; y < h; ++y) {
      for (int x = 0; x < w; ++x) {
        const double t = ((x - 0.5 * w) * c + (y - 0.5 * h) * s) / half;
        put(x, y, std::clamp(0.5 + 0.5 * t, 0.0, 1.0));
      }
    }
  } else if (kind == 1) {  // flat colour under strong grain
    for (int y = 0; y < h; ++y) {
      for (int x = 0; x < w; ++x) put(x, y, 0.0);
    }
    grain = rng.integer(20, 50);
  } else if (kind == 2) {  // stripes at any angle
    const double period = rng.uniform(6, 40);
    for (int y = 0; y < h; ++y) {
      for (int x = 0; x < w; ++x) {
        const double u = (x * c + y * s) / period;
        put(x, y, static_cast<int64_t>(std::floor(u)) % 2 == 0 ? 0.0 : 1.0);
      }
    }
  } else if (kind == 3) {  // checks
    const int cell = rng.integer(8, 48);
    for (int y = 0; y < h; ++y) {
      for (int x = 0; x < w; ++x) put(x, y, ((x / cell + y / cell) % 2 == 0) ? 0.0 : 1.0);
    }
  } else {  // bilinear blobs of random colours on a coarse grid
    const int cell = rng.integer(32, 96);
    const int gw = w / cell + 2, gh = h / cell + 2;
    std::vector<Color> grid(static_cast<size_t>(gw) * gh);
    for (Color& g : grid) g = random_color(rng);
    for (int y = 0; y < h; ++y) {
      const int gy = y / cell;
      const double fy = static_cast<double>(y % cell) / cell;
      for (int x = 0; x < w; ++x) {
        const int gx = x / cell;
        const double fx = static_cast<double>(x % cell) / cell;
        const Color& a = grid[gy * gw + gx];
        const Color& b = grid[gy * gw + gx + 1];
        const Color& d = grid[(gy + 1) * gw + gx];
        const Color& e = grid[(gy + 1) * gw + gx + 1];
        auto mix = [&](int ca, int cb, int cd, int ce) {
          const double top = ca + fx * (cb - ca), bottom = cd + fx * (ce - cd);
          return clamp_u8(static_cast<int>(std::lround(top + fy * (bottom - top))));
        };
        uint8_t* p = im.at(x, y);
        p[0] = mix(a.r, b.r, d.r, e.r);
        p[1] = mix(a.g, b.g, d.g, e.g);
        p[2] = mix(a.b, b.b, d.b, e.b);
      }
    }
  }
  if (grain == 0) return;
  const int span = 2 * grain + 1;
  for (size_t i = 0; i < static_cast<size_t>(w) * h; ++i) {
    const uint32_t r = rng.next();
    uint8_t* p = im.pixels.data() + 3 * i;
    for (int k = 0; k < 3; ++k) {
      const int n = static_cast<int>(((r >> (8 * k)) & 0xFF) * span >> 8) - grain;
      p[k] = clamp_u8(p[k] + n);
    }
  }
}

struct Placed {
  int cls;
  int64_t area = 0;    // pixels of the whole shape, inside the image or not
  int64_t inside = 0;  // of those, the ones inside the image
};

}  // namespace

ShapesSample render_shapes_image(uint64_t seed, int split, int64_t index, int imgsz, int classes) {
  YOLO_CHECK(imgsz >= 32 && imgsz <= 8192, "shapes: imgsz " << imgsz << " not in [32, 8192]");
  YOLO_CHECK(classes >= 1 && classes <= kShapesMaxClasses,
             "shapes: classes " << classes << " not in [1, " << kShapesMaxClasses << "]");
  YOLO_CHECK(split == 0 || split == 1, "shapes: split must be 0 (train) or 1 (val)");
  ImageRng rng(seed, static_cast<uint32_t>(split), static_cast<uint64_t>(index));

  int w = imgsz, h = imgsz;
  if (rng.chance(0.5)) {
    const int short_side =
        std::max(16, static_cast<int>(std::lround(imgsz * rng.uniform(0.6, 1.0))));
    if (rng.chance(0.5)) {
      h = short_side;
    } else {
      w = short_side;
    }
  }
  ShapesSample out;
  out.image = Image(w, h);
  Image& im = out.image;
  render_background(im, rng);

  int count;
  double size_lo, size_hi;
  const double mode = rng.uniform();
  if (mode < 0.03) {
    count = 0, size_lo = 0.05, size_hi = 0.45;
  } else if (mode < 0.18) {
    count = rng.integer(12, 40), size_lo = 0.03, size_hi = 0.15;
  } else {
    count = rng.integer(1, 8), size_lo = 0.05, size_hi = 0.45;
  }

  std::vector<int16_t> owner(static_cast<size_t>(w) * h, -1);
  std::vector<Placed> placed;
  for (int id = 0; id < count; ++id) {
    Placed obj;
    obj.cls = rng.integer(0, classes - 1);
    const double size = imgsz * rng.log_uniform(size_lo, size_hi);
    const bool elongated = obj.cls <= 2 || obj.cls == 5;
    const double max_aspect = elongated ? 2.2 : 1.4;
    const double aspect = rng.log_uniform(1.0 / max_aspect, max_aspect);
    const double sx = 0.5 * size * std::sqrt(aspect), sy = 0.5 * size / std::sqrt(aspect);
    double rs, rc;
    sincos_portable(rng.uniform(0, 2 * kPi), rs, rc);
    const double cx = rng.uniform(-0.1, 1.1) * w, cy = rng.uniform(-0.1, 1.1) * h;
    std::vector<Contour> contours;
    for (const auto& poly : unit_shape(obj.cls, rng)) {
      Contour cont;
      for (const auto& [ux, uy] : poly) {
        const double lx = ux * sx, ly = uy * sy;
        cont.push_back({static_cast<int64_t>(std::llround((cx + lx * rc - ly * rs) * kFix)),
                        static_cast<int64_t>(std::llround((cy + lx * rs + ly * rc) * kFix))});
      }
      contours.push_back(std::move(cont));
    }
    // A colour that stands out from the background under the shape's centre.
    const int px = std::clamp(static_cast<int>(cx), 0, w - 1);
    const int py = std::clamp(static_cast<int>(cy), 0, h - 1);
    const uint8_t* under = im.at(px, py);
    Color col = random_color(rng);
    for (int attempt = 0; attempt < 8; ++attempt) {
      const int dist =
          std::abs(col.r - under[0]) + std::abs(col.g - under[1]) + std::abs(col.b - under[2]);
      if (dist >= 120) break;
      col = random_color(rng);
    }
    const int noise = rng.chance(0.35) ? rng.integer(4, 16) : 0;
    const int nspan = 2 * noise + 1;
    fill_contours(contours, [&](int64_t y, int64_t x0, int64_t x1) {
      obj.area += x1 - x0;
      if (y < 0 || y >= h) return;
      const int xa = static_cast<int>(std::max<int64_t>(x0, 0));
      const int xb = static_cast<int>(std::min<int64_t>(x1, w));
      obj.inside += std::max(0, xb - xa);
      for (int x = xa; x < xb; ++x) {
        uint8_t* p = im.at(x, static_cast<int>(y));
        if (noise > 0) {
          const uint32_t r = rng.next();
          p[0] = clamp_u8(col.r + static_cast<int>((r & 0xFF) * nspan >> 8) - noise);
          p[1] = clamp_u8(col.g + static_cast<int>(((r >> 8) & 0xFF) * nspan >> 8) - noise);
          p[2] = clamp_u8(col.b + static_cast<int>(((r >> 16) & 0xFF) * nspan >> 8) - noise);
        } else {
          p[0] = static_cast<uint8_t>(col.r);
          p[1] = static_cast<uint8_t>(col.g);
          p[2] = static_cast<uint8_t>(col.b);
        }
        owner[static_cast<size_t>(y) * w + x] = static_cast<int16_t>(id);
      }
    });
    placed.push_back(obj);
  }

  // Visible pixels of each object, and their tight box.
  const size_t n = placed.size();
  std::vector<int64_t> visible(n, 0);
  std::vector<ShapeBox> box(n, ShapeBox{0, INT32_MAX, INT32_MAX, -1, -1});
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      const int o = owner[static_cast<size_t>(y) * w + x];
      if (o < 0) continue;
      ++visible[o];
      ShapeBox& b = box[o];
      b.x0 = std::min(b.x0, x), b.y0 = std::min(b.y0, y);
      b.x1 = std::max(b.x1, x + 1), b.y1 = std::max(b.y1, y + 1);
    }
  }
  for (size_t i = 0; i < n; ++i) {
    // Like the reference's box_candidates (area_thr 0.1) for the part cut by the image border,
    // and at most 60% hidden behind later shapes.
    if (visible[i] == 0 || 10 * placed[i].inside < placed[i].area ||
        10 * visible[i] < 4 * placed[i].inside) {
      continue;
    }
    ShapeBox b = box[i];
    if (b.x1 - b.x0 < 3 || b.y1 - b.y0 < 3) continue;
    b.cls = placed[i].cls;
    out.boxes.push_back(b);
  }
  return out;
}

std::string shapes_label_text(const ShapesSample& s) {
  std::string text;
  const double w = s.image.width, h = s.image.height;
  char line[128];
  for (const ShapeBox& b : s.boxes) {
    std::snprintf(line, sizeof(line), "%d %.6f %.6f %.6f %.6f\n", b.cls, 0.5 * (b.x0 + b.x1) / w,
                  0.5 * (b.y0 + b.y1) / h, (b.x1 - b.x0) / w, (b.y1 - b.y0) / h);
    text += line;
  }
  return text;
}

namespace {

std::string yaml_quote(const std::string& s) {
  std::string q = "'";
  for (char ch : s) {
    q += ch;
    if (ch == '\'') q += '\'';
  }
  return q + "'";
}

std::string image_stem(int64_t i) {
  char name[32];
  std::snprintf(name, sizeof(name), "%06" PRId64, i);
  return name;
}

// Refuses a split folder holding anything the generator will not overwrite.
void check_no_stale_files(const fs::path& dir, const char* ext, int64_t count) {
  if (!fs::exists(dir)) return;
  YOLO_CHECK(fs::is_directory(dir), dir.string() << " exists and is not a folder");
  for (const fs::directory_entry& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    bool ours = e.path().extension() == ext && name.size() >= 6 + std::string(ext).size();
    if (ours) {
      const std::string stem = e.path().stem().string();
      ours = std::all_of(stem.begin(), stem.end(), [](char c) { return c >= '0' && c <= '9'; });
      ours =
          ours && !stem.empty() && std::stoll(stem) < count && image_stem(std::stoll(stem)) == stem;
    }
    YOLO_CHECK(ours, "shapes: " << e.path().string()
                                << " would be left over from another dataset; give --out an empty "
                                   "or new folder");
  }
}

}  // namespace

ShapesSummary write_shapes_dataset(const ShapesOptions& opt) {
  YOLO_CHECK(!opt.out_dir.empty(), "shapes: give an output folder (--out DIR)");
  YOLO_CHECK(opt.train >= 1 && opt.val >= 1, "shapes: --train and --val must be at least 1 (got "
                                                 << opt.train << ", " << opt.val << ")");
  YOLO_CHECK(opt.imgsz >= 32 && opt.imgsz <= 8192,
             "shapes: --imgsz " << opt.imgsz << " not in [32, 8192]");
  YOLO_CHECK(opt.classes >= 1 && opt.classes <= kShapesMaxClasses,
             "shapes: --classes " << opt.classes << " not in [1, " << kShapesMaxClasses << "]");
  const fs::path root = fs::absolute(fs::path(opt.out_dir)).lexically_normal();
  const char* splits[2] = {"train", "val"};
  const int64_t counts[2] = {opt.train, opt.val};
  for (int s = 0; s < 2; ++s) {
    check_no_stale_files(root / "images" / splits[s], ".jpg", counts[s]);
    check_no_stale_files(root / "labels" / splits[s], ".txt", counts[s]);
    std::error_code ec;
    fs::create_directories(root / "images" / splits[s], ec);
    YOLO_CHECK(!ec, "shapes: cannot create " << (root / "images" / splits[s]).string() << ": "
                                             << ec.message());
    fs::create_directories(root / "labels" / splits[s], ec);
    YOLO_CHECK(!ec, "shapes: cannot create " << (root / "labels" / splits[s]).string() << ": "
                                             << ec.message());
  }

  const int64_t total = opt.train + opt.val;
  int64_t objects = 0;
  std::string first_error;
#pragma omp parallel for schedule(dynamic, 4) reduction(+ : objects)
  for (int64_t i = 0; i < total; ++i) {
    const int split = i < opt.train ? 0 : 1;
    const int64_t index = split == 0 ? i : i - opt.train;
    try {
      const ShapesSample s = render_shapes_image(opt.seed, split, index, opt.imgsz, opt.classes);
      const std::string stem = image_stem(index);
      write_jpeg((root / "images" / splits[split] / (stem + ".jpg")).string(), s.image,
                 opt.jpeg_quality);
      const std::string text = shapes_label_text(s);
      write_file((root / "labels" / splits[split] / (stem + ".txt")).string(),
                 std::vector<uint8_t>(text.begin(), text.end()));
      objects += static_cast<int64_t>(s.boxes.size());
    } catch (const std::exception& e) {
#pragma omp critical(yolo_shapes_error)
      if (first_error.empty()) first_error = e.what();
    }
  }
  YOLO_CHECK(first_error.empty(), first_error);

  const std::vector<std::string>& all = shapes_class_names();
  std::string names;
  for (int k = 0; k < opt.classes; ++k) names += (k ? ", " : "") + yaml_quote(all[k]);
  std::string yaml =
      "# Synthetic shapes dataset written by `yolo dataset shapes` (yolocore), seed " +
      std::to_string(opt.seed) + ", imgsz " + std::to_string(opt.imgsz) + "\n";
  yaml += "path: " + yaml_quote(root.string()) + "  # dataset root dir\n";
  yaml += "train: images/train  # " + std::to_string(opt.train) + " images\n";
  yaml += "val: images/val  # " + std::to_string(opt.val) + " images\n";
  yaml += "\nnc: " + std::to_string(opt.classes) + "  # number of classes\n";
  yaml += "names: [" + names + "]  # class names\n";
  ShapesSummary summary;
  summary.images = total;
  summary.objects = objects;
  summary.data_yaml = (root / "data.yaml").string();
  write_file(summary.data_yaml, std::vector<uint8_t>(yaml.begin(), yaml.end()));
  return summary;
}

int run_dataset_shapes(int argc, char** argv, std::FILE* out) {
  const char* usage =
      "usage: yolo dataset shapes --out DIR [--train 256] [--val 64] [--imgsz 320] [--classes 4] "
      "[--seed 0]";
  ShapesOptions opt;
  auto int_arg = [&](int& i, const std::string& flag, int64_t lo, int64_t hi) -> int64_t {
    YOLO_CHECK(i + 1 < argc, "shapes: " << flag << " needs a value (" << usage << ")");
    const std::string v = argv[++i];
    size_t used = 0;
    int64_t x = 0;
    try {
      x = std::stoll(v, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    YOLO_CHECK(
        used == v.size() && !v.empty() && x >= lo && x <= hi,
        "shapes: " << flag << " " << v << " is not an integer in [" << lo << ", " << hi << "]");
    return x;
  };
  for (int i = 0; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--out" && i + 1 < argc) {
      opt.out_dir = argv[++i];
    } else if (a == "--train") {
      opt.train = static_cast<int>(int_arg(i, a, 1, 10000000));
    } else if (a == "--val") {
      opt.val = static_cast<int>(int_arg(i, a, 1, 10000000));
    } else if (a == "--imgsz") {
      opt.imgsz = static_cast<int>(int_arg(i, a, 32, 8192));
    } else if (a == "--classes") {
      opt.classes = static_cast<int>(int_arg(i, a, 1, kShapesMaxClasses));
    } else if (a == "--seed") {
      opt.seed = static_cast<uint64_t>(int_arg(i, a, 0, INT64_MAX));
    } else if (a == "--help" || a == "-h") {
      std::fprintf(out, "%s\n", usage);
      return 0;
    } else {
      YOLO_FAIL("shapes: unexpected argument '" << a << "' (" << usage << ")");
    }
  }
  YOLO_CHECK(!opt.out_dir.empty(), "shapes: give an output folder (" << usage << ")");
  const ShapesSummary s = write_shapes_dataset(opt);
  std::fprintf(out,
               "shapes: %d train + %d val images, %" PRId64
               " labelled objects, %d classes, "
               "imgsz %d, seed %" PRIu64 "\n",
               opt.train, opt.val, s.objects, opt.classes, opt.imgsz, opt.seed);
  std::fprintf(out, "data: %s\n", s.data_yaml.c_str());
  return 0;
}

}  // namespace yolo
