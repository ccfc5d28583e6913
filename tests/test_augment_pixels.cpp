// The pixel side of the data pipeline against the reference's cv2: yolo/data/image_ops.h (resize,
// letterbox, augment_hsv) and kernels/augment.h (augment_apply: virtual mosaic canvas, warps,
// mixup, HSV, flips) on tests/fixtures/pixels.safetensors, written by
// tools/parity/make_pixel_fixtures.py from cv2 4.6 and the reference's own functions. Everything
// is bit-exact. augment_apply is also checked against a plain loop written here, and CUDA against
// the CPU.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "core/safetensors.h"
#include "kernels/augment.h"
#include "kernels/augment_pixel.h"
#include "kernels/cpu/augment_hsv.h"
#include "tests/harness.h"
#include "yolo/data/geometry.h"
#include "yolo/data/image_ops.h"

using namespace yolo;
using nlohmann::json;

namespace {

constexpr test::Tol kAugmentF32{0.0, 0.0};   // value / 255 in f32 on both devices: exact
constexpr test::Tol kAugmentF16{0.0, 1e-3};  // CUDA f16 vs CPU f32: one f16 rounding (2^-11)

struct Fixture {
  SafetensorsFile file;
  json cases;
};

const Fixture& fixture() {
  static const Fixture f = [] {
    Fixture x;
    const auto path =
        std::filesystem::path(__FILE__).parent_path() / "fixtures" / "pixels.safetensors";
    x.file = read_safetensors(path.string());
    x.cases = json::parse(x.file.metadata.at("cases"));
    return x;
  }();
  return f;
}

Image image(const std::string& key) {
  const Tensor& t = fixture().file.tensors.at(key);
  REQUIRE(t.dtype() == DType::u8);
  REQUIRE(t.ndim() == 3);
  Image im(int(t.dim(1)), int(t.dim(0)));
  const uint8_t* p = t.data<uint8_t>();
  im.pixels.assign(p, p + t.numel());
  return im;
}

void matrix(const std::string& key, double m[9]) {
  const Tensor& t = fixture().file.tensors.at(key);
  const double* p = t.data<double>();
  for (int i = 0; i < 9; ++i) m[i] = p[i];
}

// Number of differing bytes (0 = bit-exact), with the first difference in `where`.
int64_t differences(const Image& got, const Image& want, std::string& where) {
  if (got.width != want.width || got.height != want.height) {
    where = "size " + std::to_string(got.width) + "x" + std::to_string(got.height) + " vs " +
            std::to_string(want.width) + "x" + std::to_string(want.height);
    return -1;
  }
  int64_t n = 0;
  for (size_t i = 0; i < got.pixels.size(); ++i) {
    if (got.pixels[i] == want.pixels[i]) continue;
    if (n++ == 0) {
      const size_t px = i / 3;
      where = "first at x " + std::to_string(px % size_t(got.width)) + " y " +
              std::to_string(px / size_t(got.width)) + " channel " + std::to_string(i % 3) +
              ": got " + std::to_string(got.pixels[i]) + " want " + std::to_string(want.pixels[i]);
    }
  }
  return n;
}

void require_same(const Image& got, const Image& want, const std::string& what) {
  std::string where;
  const int64_t n = differences(got, want, where);
  INFO(what << ": " << n << " bytes differ; " << where);
  REQUIRE(n == 0);
}

// One or more source images packed into a pixel buffer for augment_apply.
struct Packed {
  std::vector<AugmentSource> sources;
  std::vector<uint8_t> bytes;
  int add(const Image& im) {
    sources.push_back({int64_t(bytes.size()), im.width, im.height});
    bytes.insert(bytes.end(), im.pixels.begin(), im.pixels.end());
    return int(sources.size()) - 1;
  }
  Tensor tensor() const {
    Tensor t = Tensor::empty_cpu({int64_t(bytes.size())}, DType::u8);
    std::copy(bytes.begin(), bytes.end(), t.data<uint8_t>());
    return t;
  }
};

// A view that shows `source` whole at canvas (0, 0).
AugmentView whole(const Packed& p, int source) {
  AugmentView v;
  const AugmentSource& s = p.sources[size_t(source)];
  v.n_tiles = 1;
  v.tiles[0] = {source, 0, 0, s.width, s.height, 0, 0};
  v.canvas_w = s.width;
  v.canvas_h = s.height;
  return v;
}

Image apply_one(Context& ctx, const Packed& p, const AugmentSample& s, int w, int h) {
  Tensor out = Tensor::empty_cpu({1, h, w, 3}, DType::u8);
  augment_apply(ctx, p.tensor(), p.sources, {s}, out);
  Image im(w, h);
  std::copy(out.data<uint8_t>(), out.data<uint8_t>() + out.numel(), im.pixels.begin());
  return im;
}

}  // namespace

TEST_CASE("resize_linear and resize_area match cv2.resize", "[augment]") {
  int n = 0;
  for (const json& c : fixture().cases.at("resize")) {
    const Image src = image(c.at("src"));
    const int w = c.at("w"), h = c.at("h");
    const std::string interp = c.at("interp");
    const Image got = interp == "linear" ? resize_linear(src, w, h) : resize_area(src, w, h);
    require_same(got, image(c.at("out")),
                 "cv2.resize " + interp + " " + std::to_string(src.width) + "x" +
                     std::to_string(src.height) + " -> " + std::to_string(w) + "x" +
                     std::to_string(h));
    ++n;
  }
  REQUIRE(n == 30);
}

TEST_CASE("letterbox_image matches the reference letterbox", "[augment]") {
  for (const json& c : fixture().cases.at("letterbox")) {
    const Image src = image(c.at("src"));
    const LetterboxParams p =
        letterbox_params(src.height, src.width, c.at("new_h"), c.at("new_w"), c.at("auto"),
                         c.at("scale_fill"), c.at("scaleup"), c.at("stride"));
    require_same(letterbox_image(src, p), image(c.at("out")), "letterbox " + c.dump());
  }
}

TEST_CASE("augment_hsv_image matches the reference augment_hsv", "[augment]") {
  Context ctx(Device::cpu(), 1);
  for (const json& c : fixture().cases.at("hsv")) {
    const Image src = image(c.at("src"));
    const double gain[3] = {c.at("gain")[0], c.at("gain")[1], c.at("gain")[2]};
    Image got = src;
    augment_hsv_image(got, gain);
    require_same(got, image(c.at("out")), "augment_hsv " + c.dump());
    // the same through augment_apply (no warp, HSV on)
    Packed p;
    const int id = p.add(src);
    AugmentSample s;
    s.views[0] = whole(p, id);
    s.hsv = true;
    for (int k = 0; k < 3; ++k) s.hsv_gain[k] = gain[k];
    require_same(apply_one(ctx, p, s, src.width, src.height), image(c.at("out")),
                 "augment_apply hsv " + c.dump());
  }
}

TEST_CASE("augment_apply warps match cv2.warpAffine and cv2.warpPerspective", "[augment]") {
  Context ctx(Device::cpu(), 1);
  int affine = 0, perspective = 0;
  for (const json& c : fixture().cases.at("warp")) {
    Packed p;
    const int id = p.add(image(c.at("src")));
    AugmentSample s;
    s.views[0] = whole(p, id);
    const std::string kind = c.at("warp");
    s.views[0].warp = kind == "affine" ? AugmentWarp::affine : AugmentWarp::perspective;
    (kind == "affine" ? affine : perspective)++;
    matrix(c.at("m"), s.views[0].m);
    require_same(apply_one(ctx, p, s, c.at("w"), c.at("h")), image(c.at("out")),
                 "warp " + c.dump());
  }
  REQUIRE(affine >= 12);
  REQUIRE(perspective >= 8);
}

namespace {

// The mosaic of fixture case c as augment_apply's view.
AugmentView mosaic_view(const json& c, Packed& p) {
  AugmentView v;
  v.n_tiles = 4;
  for (int i = 0; i < 4; ++i) {
    const int id = p.add(image(c.at("srcs")[size_t(i)]));
    const json& t = c.at("tiles")[size_t(i)];
    v.tiles[i] = {id, t[0], t[1], t[2], t[3], t[4], t[5]};
  }
  v.canvas_w = v.canvas_h = 2 * int(c.at("s"));
  v.warp = AugmentWarp::affine;
  matrix(c.at("m"), v.m);
  return v;
}

}  // namespace

TEST_CASE("augment_apply mosaic matches load_mosaic, random_perspective and mixup", "[augment]") {
  Context ctx(Device::cpu(), 1);
  const json& cases = fixture().cases.at("mosaic");
  REQUIRE(cases.size() == 2);
  for (const json& c : cases) {
    REQUIRE(c.at("warp") == "affine");
    Packed p;
    AugmentSample s;
    s.views[0] = mosaic_view(c, p);
    require_same(apply_one(ctx, p, s, c.at("w"), c.at("h")), image(c.at("out")),
                 "mosaic " + c.dump());
    s.views[0].warp = AugmentWarp::none;  // the canvas itself
    require_same(apply_one(ctx, p, s, s.views[0].canvas_w, s.views[0].canvas_h),
                 image(c.at("canvas")), "mosaic canvas " + c.dump());
  }
  const json& mix = fixture().cases.at("mixup").at(0);
  Packed p;
  AugmentSample s;
  s.views[0] = mosaic_view(cases[0], p);
  s.views[1] = mosaic_view(cases[1], p);
  s.mixup = true;
  s.mixup_r = mix.at("r");
  require_same(apply_one(ctx, p, s, cases[0].at("w"), cases[0].at("h")), image(mix.at("out")),
               "mosaic mixup");
}

// ---- a plain reference loop, written separately from the kernels ----
namespace {

struct NaiveCanvas {
  int w = 0, h = 0;
  std::vector<uint8_t> px;  // 114 where no tile
  int at(int x, int y, int c) const {
    if (x < 0 || y < 0 || x >= w || y >= h) return 114;
    return px[(size_t(y) * w + x) * 3 + c];
  }
};

NaiveCanvas naive_canvas(const Packed& p, const AugmentView& v) {
  NaiveCanvas cv;
  cv.w = v.canvas_w;
  cv.h = v.canvas_h;
  cv.px.assign(size_t(cv.w) * cv.h * 3, 114);
  for (int t = v.n_tiles - 1; t >= 0; --t) {  // earlier tiles painted over later ones
    const AugmentTile& tile = v.tiles[t];
    const AugmentSource& s = p.sources[size_t(tile.source)];
    for (int y = tile.y0; y < tile.y1; ++y) {
      for (int x = tile.x0; x < tile.x1; ++x) {
        if (x < 0 || y < 0 || x >= cv.w || y >= cv.h) continue;
        const size_t src =
            size_t(s.offset) +
            (size_t(y - tile.y0 + tile.src_y) * s.width + (x - tile.x0 + tile.src_x)) * 3;
        for (int c = 0; c < 3; ++c) cv.px[(size_t(y) * cv.w + x) * 3 + c] = p.bytes[src + c];
      }
    }
  }
  return cv;
}

// cv2's warps written out directly: inverse, fixed-point position, bilinear taps.
Image naive_view(const Packed& p, const AugmentView& v, int W, int H) {
  const NaiveCanvas cv = naive_canvas(p, v);
  Image out(W, H);
  const double* m = v.m;
  double inv[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
  if (v.warp == AugmentWarp::affine) {
    double d = m[0] * m[4] - m[1] * m[3];
    d = d != 0 ? 1.0 / d : 0.0;
    inv[0] = m[4] * d;
    inv[1] = -m[1] * d;
    inv[3] = -m[3] * d;
    inv[4] = m[0] * d;
    inv[2] = -inv[0] * m[2] - inv[1] * m[5];
    inv[5] = -inv[3] * m[2] - inv[4] * m[5];
  } else if (v.warp == AugmentWarp::perspective) {
    const double det = m[0] * (m[4] * m[8] - m[5] * m[7]) - m[1] * (m[3] * m[8] - m[5] * m[6]) +
                       m[2] * (m[3] * m[7] - m[4] * m[6]);
    const double r = 1.0 / det;
    inv[0] = (m[4] * m[8] - m[5] * m[7]) * r;
    inv[1] = (m[2] * m[7] - m[1] * m[8]) * r;
    inv[2] = (m[1] * m[5] - m[2] * m[4]) * r;
    inv[3] = (m[5] * m[6] - m[3] * m[8]) * r;
    inv[4] = (m[0] * m[8] - m[2] * m[6]) * r;
    inv[5] = (m[2] * m[3] - m[0] * m[5]) * r;
    inv[6] = (m[3] * m[7] - m[4] * m[6]) * r;
    inv[7] = (m[1] * m[6] - m[0] * m[7]) * r;
    inv[8] = (m[0] * m[4] - m[1] * m[3]) * r;
  }
  const int bh = std::min(32, H), bw = std::min(4096 / bh, W);
  for (int y = 0; y < H; ++y) {
    for (int x = 0; x < W; ++x) {
      uint8_t* o = out.at(x, y);
      if (v.warp == AugmentWarp::none) {
        for (int c = 0; c < 3; ++c) o[c] = uint8_t(cv.at(x, y, c));
        continue;
      }
      long X, Y;
      if (v.warp == AugmentWarp::affine) {
        X = (std::lrint((inv[1] * y + inv[2]) * 1024) + 16 + std::lrint(inv[0] * x * 1024)) >> 5;
        Y = (std::lrint((inv[4] * y + inv[5]) * 1024) + 16 + std::lrint(inv[3] * x * 1024)) >> 5;
      } else {
        const int x0 = x / bw * bw, x1 = x - x0;
        const double X0 = inv[0] * x0 + inv[1] * y + inv[2];
        const double Y0 = inv[3] * x0 + inv[4] * y + inv[5];
        const double W0 = inv[6] * x0 + inv[7] * y + inv[8];
        double w = W0 + inv[6] * x1;
        w = w != 0 ? 32.0 / w : 0.0;
        X = std::lrint((X0 + inv[0] * x1) * w);
        Y = std::lrint((Y0 + inv[3] * x1) * w);
      }
      const int sx = int(X >> 5), sy = int(Y >> 5), fx = int(X & 31), fy = int(Y & 31);
      for (int c = 0; c < 3; ++c) {
        const long acc = long(cv.at(sx, sy, c)) * (32 - fx) * (32 - fy) +
                         long(cv.at(sx + 1, sy, c)) * fx * (32 - fy) +
                         long(cv.at(sx, sy + 1, c)) * (32 - fx) * fy +
                         long(cv.at(sx + 1, sy + 1, c)) * fx * fy;
        o[c] = uint8_t((acc * 32 + (1 << 14)) >> 15);
      }
    }
  }
  return out;
}

Image naive_sample(const Packed& p, const AugmentSample& s, int W, int H) {
  Image a = naive_view(p, s.views[0], W, H);
  if (s.mixup) {
    const Image b = naive_view(p, s.views[1], W, H);
    for (size_t i = 0; i < a.pixels.size(); ++i) {
      a.pixels[i] = uint8_t(int(a.pixels[i] * s.mixup_r + b.pixels[i] * (1.0 - s.mixup_r)));
    }
  }
  if (s.hsv) augment_hsv_image(a, s.hsv_gain);  // checked against the reference above
  Image out(W, H);
  for (int y = 0; y < H; ++y) {
    for (int x = 0; x < W; ++x) {
      const uint8_t* src = a.at(s.flip_lr ? W - 1 - x : x, s.flip_ud ? H - 1 - y : y);
      std::copy(src, src + 3, out.at(x, y));
    }
  }
  return out;
}

Image random_image(std::mt19937_64& rng, int w, int h) {
  Image im(w, h);
  for (auto& b : im.pixels) b = uint8_t(rng() % 256);
  return im;
}

// A random view over p's sources: 1-4 tiles (some touching or crossing the canvas edges) and a
// random warp near what the reference draws.
AugmentView random_view(std::mt19937_64& rng, const Packed& p, int W, int H) {
  auto uni = [&](double lo, double hi) {
    return std::uniform_real_distribution<double>(lo, hi)(rng);
  };
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  AugmentView v;
  v.canvas_w = pick(8, 2 * W);
  v.canvas_h = pick(8, 2 * H);
  v.n_tiles = pick(1, 4);
  for (int t = 0; t < v.n_tiles; ++t) {
    const int id = pick(0, int(p.sources.size()) - 1);
    const AugmentSource& s = p.sources[size_t(id)];
    const int tw = pick(1, s.width), th = pick(1, s.height);
    AugmentTile& tile = v.tiles[t];
    tile.source = id;
    tile.src_x = pick(0, s.width - tw);
    tile.src_y = pick(0, s.height - th);
    tile.x0 = pick(0, 3) == 0 ? 0 : pick(0, std::max(0, v.canvas_w - tw));
    tile.y0 = pick(0, 3) == 0 ? v.canvas_h - th : pick(0, std::max(0, v.canvas_h - th));
    tile.y0 = std::max(tile.y0, 0);
    tile.x1 = std::min(tile.x0 + tw, v.canvas_w);
    tile.y1 = std::min(tile.y0 + th, v.canvas_h);
  }
  const int kind = pick(0, 2);
  const double a = uni(-0.3, 0.3), sc = uni(0.5, 1.6), sh = uni(-0.1, 0.1);
  double m[9] = {sc * std::cos(a),
                 sc * std::sin(a) + sh,
                 uni(-10, 10) + 0.25 * (W - v.canvas_w),
                 -sc * std::sin(a),
                 sc * std::cos(a),
                 uni(-10, 10) + 0.25 * (H - v.canvas_h),
                 0,
                 0,
                 1};
  if (kind == 2) {
    m[6] = uni(-0.004, 0.004);
    m[7] = uni(-0.004, 0.004);
  }
  std::copy(m, m + 9, v.m);
  v.warp =
      kind == 0 ? AugmentWarp::none : (kind == 1 ? AugmentWarp::affine : AugmentWarp::perspective);
  return v;
}

struct RandomBatch {
  Packed packed;
  std::vector<AugmentSample> samples;
  int W = 0, H = 0;
};

RandomBatch random_batch(uint64_t seed, int batch) {
  std::mt19937_64 rng(seed);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  RandomBatch b;
  b.W = pick(9, 70);
  b.H = pick(9, 50);
  for (int i = 0, n = pick(2, 6); i < n; ++i)
    b.packed.add(random_image(rng, pick(3, 50), pick(3, 40)));
  for (int i = 0; i < batch; ++i) {
    AugmentSample s;
    s.views[0] = random_view(rng, b.packed, b.W, b.H);
    s.mixup = pick(0, 2) == 0;
    if (s.mixup) {
      s.views[1] = random_view(rng, b.packed, b.W, b.H);
      s.mixup_r = std::uniform_real_distribution<double>(0.3, 0.7)(rng);
    }
    s.hsv = pick(0, 1) == 1;
    for (double& g : s.hsv_gain) g = std::uniform_real_distribution<double>(0.2, 1.8)(rng);
    s.flip_lr = pick(0, 1) == 1;
    s.flip_ud = pick(0, 1) == 1;
    b.samples.push_back(s);
  }
  return b;
}

}  // namespace

TEST_CASE("augment_apply matches a plain loop on random plans", "[augment]") {
  for (int round = 0; round < 12; ++round) {
    const uint64_t seed = test::seed(100 + round);
    INFO("seed " << seed);
    const RandomBatch b = random_batch(seed, 3);
    Context ctx(Device::cpu(), round % 2 ? 2 : 1);
    Tensor out = Tensor::empty_cpu({3, b.H, b.W, 3}, DType::u8);
    Tensor out_f32 = Tensor::empty_cpu({3, b.H, b.W, 3}, DType::f32);
    const Tensor pixels = b.packed.tensor();
    augment_apply(ctx, pixels, b.packed.sources, b.samples, out);
    augment_apply(ctx, pixels, b.packed.sources, b.samples, out_f32);
    for (int n = 0; n < 3; ++n) {
      const Image want = naive_sample(b.packed, b.samples[size_t(n)], b.W, b.H);
      Image got(b.W, b.H);
      const size_t len = got.pixels.size();
      std::copy(out.data<uint8_t>() + n * len, out.data<uint8_t>() + (n + 1) * len,
                got.pixels.begin());
      require_same(got, want, "augment_apply sample " + std::to_string(n));
      Tensor want_f32 = Tensor::empty_cpu({int64_t(len)}, DType::f32);
      for (size_t i = 0; i < len; ++i) want_f32.data<float>()[i] = float(want.pixels[i]) / 255.0f;
      Tensor got_f32 = Tensor::empty_cpu({int64_t(len)}, DType::f32);
      std::copy(out_f32.data<float>() + n * len, out_f32.data<float>() + (n + 1) * len,
                got_f32.data<float>());
      test::require_close(got_f32, want_f32, kAugmentF32, "augment_apply f32");
    }
  }
}

TEST_CASE("augment_apply rejects bad arguments with clear messages", "[augment]") {
  Context ctx(Device::cpu(), 1);
  std::mt19937_64 rng(7);
  Packed p;
  const int id = p.add(random_image(rng, 10, 8));
  AugmentSample s;
  s.views[0] = whole(p, id);
  const Tensor pixels = p.tensor();
  Tensor good = Tensor::empty_cpu({1, 8, 10, 3}, DType::u8);
  REQUIRE_NOTHROW(augment_apply(ctx, pixels, p.sources, {s}, good));
  REQUIRE_THROWS_WITH(augment_apply(ctx, pixels, p.sources, {s, s}, good),
                      Catch::Contains("(2, 8, 10, 3)") && Catch::Contains("(1, 8, 10, 3)"));
  REQUIRE_THROWS_WITH(
      augment_apply(ctx, pixels, p.sources, {s}, Tensor::empty_cpu({1, 8, 10, 4}, DType::u8)),
      Catch::Contains("(1, 8, 10, 4)"));
  REQUIRE_THROWS_WITH(
      augment_apply(ctx, pixels, p.sources, {s}, Tensor::empty_cpu({1, 8, 10, 3}, DType::f64)),
      Catch::Contains("f64"));
  AugmentSample missing = s;
  missing.views[0].tiles[0].source = 3;
  REQUIRE_THROWS_WITH(augment_apply(ctx, pixels, p.sources, {missing}, good),
                      Catch::Contains("points at source 3") && Catch::Contains("1 sources"));
  AugmentSample outside = s;
  outside.views[0].tiles[0].src_x = 2;
  REQUIRE_THROWS_WITH(augment_apply(ctx, pixels, p.sources, {outside}, good),
                      Catch::Contains("outside its source 0 of 10x8"));
  std::vector<AugmentSource> too_big = p.sources;
  too_big[0].height = 9;
  REQUIRE_THROWS_WITH(augment_apply(ctx, pixels, too_big, {s}, good),
                      Catch::Contains("does not fit in the 240-byte pixel buffer"));
}

TEST_CASE("augment_apply cuda matches cpu", "[augment][cuda]") {
  auto cuda = test::cuda_or_skip();
  if (!cuda) return;
  Context cpu(Device::cpu(), 1);
  for (int round = 0; round < 6; ++round) {
    const uint64_t seed = test::seed(200 + round);
    INFO("seed " << seed);
    const RandomBatch b = random_batch(seed, 4);
    const Tensor pixels = b.packed.tensor();
    const Tensor dpixels = cuda->to_device(pixels);
    Tensor want = Tensor::empty_cpu({4, b.H, b.W, 3}, DType::u8);
    augment_apply(cpu, pixels, b.packed.sources, b.samples, want);
    Tensor want_f32 = Tensor::empty_cpu({4, b.H, b.W, 3}, DType::f32);
    augment_apply(cpu, pixels, b.packed.sources, b.samples, want_f32);
    Tensor got = cuda->empty({4, b.H, b.W, 3}, DType::u8);
    augment_apply(*cuda, dpixels, b.packed.sources, b.samples, got);
    const Tensor got_host = test::host(*cuda, got);
    int64_t bad = 0;
    for (int64_t i = 0; i < want.numel(); ++i)
      bad += got_host.data<uint8_t>()[i] != want.data<uint8_t>()[i];
    REQUIRE(bad == 0);
    Tensor got_f32 = cuda->empty({4, b.H, b.W, 3}, DType::f32);
    augment_apply(*cuda, dpixels, b.packed.sources, b.samples, got_f32);
    test::require_close(test::host(*cuda, got_f32), want_f32, kAugmentF32,
                        "augment_apply cuda f32");
    Tensor got_f16 = cuda->empty({4, b.H, b.W, 3}, DType::f16);
    augment_apply(*cuda, dpixels, b.packed.sources, b.samples, got_f16);
    test::require_close(test::host(*cuda, got_f16), want_f32, kAugmentF16,
                        "augment_apply cuda f16");
  }
}

// ---- the CPU apply's AVX2 HSV code against augment_pixel.h's scalar reference ----

TEST_CASE("augment_apply hsv avx2 rgb_to_hsv matches the scalar code on every colour",
          "[augment]") {
  if (!augment_cpu::hsv_avx2_supported()) {
    WARN("no AVX2+FMA on this CPU: the vector HSV code is not used here");
    return;
  }
  const augment_pixel::HsvDivTables div;
  std::vector<uint8_t> rgb(256 * 256 * 3), hsv(rgb.size());
  int64_t bad = 0;
  std::string first;
  for (int r = 0; r < 256; ++r) {
    for (int i = 0; i < 256 * 256; ++i) {
      rgb[3 * i] = uint8_t(r);
      rgb[3 * i + 1] = uint8_t(i >> 8);
      rgb[3 * i + 2] = uint8_t(i & 255);
    }
    augment_cpu::rgb_to_hsv_avx2(rgb.data(), 256 * 256, hsv.data());
    for (int i = 0; i < 256 * 256; ++i) {
      int h, s, v;
      augment_pixel::rgb_to_hsv(r, i >> 8, i & 255, h, s, v, div.sdiv, div.hdiv);
      if (hsv[3 * i] == h && hsv[3 * i + 1] == s && hsv[3 * i + 2] == v) continue;
      if (bad++ == 0) {
        first = "rgb " + std::to_string(r) + " " + std::to_string(i >> 8) + " " +
                std::to_string(i & 255) + ": want hsv " + std::to_string(h) + " " +
                std::to_string(s) + " " + std::to_string(v) + ", got " +
                std::to_string(hsv[3 * i]) + " " + std::to_string(hsv[3 * i + 1]) + " " +
                std::to_string(hsv[3 * i + 2]);
      }
    }
  }
  INFO(bad << " colours differ; first " << first);
  REQUIRE(bad == 0);
}

TEST_CASE("augment_apply hsv avx2 hsv_to_rgb matches the scalar code on every input", "[augment]") {
  if (!augment_cpu::hsv_avx2_supported()) {
    WARN("no AVX2+FMA on this CPU: the vector HSV code is not used here");
    return;
  }
  std::vector<uint8_t> hsv(256 * 256 * 3), rgb(hsv.size());
  int64_t bad = 0;
  std::string first;
  for (int h = 0; h < 256; ++h) {  // the tables give h < 180; cv2 accepts up to 255
    for (int i = 0; i < 256 * 256; ++i) {
      hsv[3 * i] = uint8_t(h);
      hsv[3 * i + 1] = uint8_t(i >> 8);
      hsv[3 * i + 2] = uint8_t(i & 255);
    }
    augment_cpu::hsv_to_rgb_avx2(hsv.data(), 256 * 256, rgb.data());
    for (int i = 0; i < 256 * 256; ++i) {
      int r, g, b;
      augment_pixel::hsv_to_rgb(h, i >> 8, i & 255, true, r, g, b);
      if (rgb[3 * i] == r && rgb[3 * i + 1] == g && rgb[3 * i + 2] == b) continue;
      if (bad++ == 0) {
        first = "hsv " + std::to_string(h) + " " + std::to_string(i >> 8) + " " +
                std::to_string(i & 255) + ": want rgb " + std::to_string(r) + " " +
                std::to_string(g) + " " + std::to_string(b) + ", got " +
                std::to_string(rgb[3 * i]) + " " + std::to_string(rgb[3 * i + 1]) + " " +
                std::to_string(rgb[3 * i + 2]);
      }
    }
  }
  INFO(bad << " inputs differ; first " << first);
  REQUIRE(bad == 0);
}

TEST_CASE("augment_apply hsv rows: avx2 matches the portable code for any width and gains",
          "[augment]") {
  if (!augment_cpu::hsv_avx2_supported()) {
    WARN("no AVX2+FMA on this CPU: the vector HSV code is not used here");
    return;
  }
  std::mt19937_64 rng(test::seed(900));
  std::vector<int> widths;
  for (int w = 1; w <= 100; ++w) widths.push_back(w);
  for (int w : {127, 128, 129, 255, 256, 319, 320, 641, 640, 1280}) widths.push_back(w);
  for (int w : widths) {
    const double gain[3] = {std::uniform_real_distribution<double>(0.2, 1.8)(rng),
                            std::uniform_real_distribution<double>(0.2, 1.8)(rng),
                            std::uniform_real_distribution<double>(0.2, 1.8)(rng)};
    uint8_t lut[3][256];
    augment_pixel::hsv_tables(gain, lut);
    const augment_cpu::HsvRowTables tables(lut);
    std::vector<uint8_t> row(size_t(w) * 3);
    for (auto& b : row) b = uint8_t(rng() % 256);
    for (int x = 0; x < w; x += 5)
      row[3 * size_t(x) + 1] = row[3 * size_t(x) + 2] = row[3 * size_t(x)];
    std::vector<uint8_t> want = row, got = row;
    augment_cpu::hsv_row_portable(want.data(), w, tables);
    augment_cpu::hsv_row_avx2(got.data(), w, tables);
    INFO("width " << w << " gains " << gain[0] << " " << gain[1] << " " << gain[2]);
    REQUIRE(got == want);
  }
}

TEST_CASE("augment_apply affine mosaics match a plain loop (vector rows, tile edges, gaps)",
          "[augment]") {
  std::mt19937_64 rng(test::seed(901));
  auto uni = [&](double lo, double hi) {
    return std::uniform_real_distribution<double>(lo, hi)(rng);
  };
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  for (int round = 0; round < 6; ++round) {
    const int W = round == 0 ? 640 : pick(8, 300), H = pick(8, 40), S = W;
    Packed p;
    for (int i = 0; i < 4; ++i) p.add(random_image(rng, pick(S / 2, S), pick(S / 3, S)));
    std::vector<AugmentSample> samples;
    for (int n = 0; n < 3; ++n) {
      // load_mosaic's tile placement around a random centre, then a random affine warp
      AugmentView v;
      v.canvas_w = v.canvas_h = 2 * S;
      v.n_tiles = 4;
      const int xc = pick(S / 2, 3 * S / 2), yc = pick(S / 2, 3 * S / 2);
      for (int k = 0; k < 4; ++k) {
        const AugmentSource& s = p.sources[size_t(k)];
        const int x1a = k % 2 ? xc : std::max(xc - s.width, 0);
        const int x2a = k % 2 ? std::min(xc + s.width, 2 * S) : xc;
        const int y1a = k < 2 ? std::max(yc - s.height, 0) : yc;
        const int y2a = k < 2 ? yc : std::min(yc + s.height, 2 * S);
        v.tiles[k] = {k,
                      x1a,
                      y1a,
                      x2a,
                      y2a,
                      k % 2 ? 0 : s.width - (x2a - x1a),
                      k < 2 ? s.height - (y2a - y1a) : 0};
      }
      v.warp = AugmentWarp::affine;
      const double a = n == 0 ? 0.0 : uni(-0.2, 0.2), sc = uni(0.5, 1.5);
      const double m[9] = {sc * std::cos(a),
                           sc * std::sin(a),
                           -S * sc + 0.5 * W + uni(-0.1, 0.1) * W,
                           -sc * std::sin(a),
                           sc * std::cos(a),
                           -S * sc + 0.5 * H + uni(-0.1, 0.1) * H + uni(-S / 2.0, S / 2.0) * sc,
                           0,
                           0,
                           1};
      std::copy(m, m + 9, v.m);
      AugmentSample s;
      s.views[0] = v;
      s.hsv = pick(0, 1) == 1;
      for (double& g : s.hsv_gain) g = uni(0.3, 1.7);
      s.flip_lr = pick(0, 1) == 1;
      s.flip_ud = pick(0, 1) == 1;
      samples.push_back(s);
    }
    INFO("round " << round << " W " << W << " H " << H);
    Context ctx(Device::cpu(), 1);
    Tensor out = Tensor::empty_cpu({3, H, W, 3}, DType::u8);
    augment_apply(ctx, p.tensor(), p.sources, samples, out);
    for (int n = 0; n < 3; ++n) {
      Image got(W, H);
      const size_t len = got.pixels.size();
      std::copy(out.data<uint8_t>() + n * len, out.data<uint8_t>() + (n + 1) * len,
                got.pixels.begin());
      require_same(got, naive_sample(p, samples[size_t(n)], W, H),
                   "mosaic sample " + std::to_string(n));
    }
  }
}
