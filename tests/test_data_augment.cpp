// Augmentation plans and their label side (yolo/data/augment.h, yolo/data/dataset.h) against
// tests/fixtures/augment_labels.json, which tools/parity/make_augment_label_fixtures.py writes by
// running the reference's random_perspective and load_mosaic and recording their random draws; the
// tests replay those draws through our plan. Also the Philox-keyed draws, the hyp yaml, and the
// plan's purity, flips and end-to-end CPU path.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "tests/harness.h"
#include "yolo/data/augment.h"
#include "yolo/data/dataset.h"
#include "yolo/data/geometry.h"
#include "yolo/data/image_ops.h"
#include "yolo/data/shapes_dataset.h"

using namespace yolo;
using json = nlohmann::json;

namespace {

// Labels are float32 in the reference and here; the float64 corner arithmetic in between is the
// same, so the labels match bit for bit (0 float32 steps apart).
constexpr int kLabelUlps = 0;
constexpr double kMatrix = 1e-12;  // relative, per element, over the matrix's largest element

const json& fixture() {
  static const json doc = [] {
    const auto path =
        std::filesystem::path(__FILE__).parent_path() / "fixtures" / "augment_labels.json";
    std::ifstream in(path);
    REQUIRE(in.good());
    return json::parse(in);
  }();
  return doc;
}

std::vector<float> floats(const json& j) { return j.get<std::vector<float>>(); }

AugmentHyp hyp_from(const json& j) {
  AugmentHyp h;
  h.degrees = j.at("degrees");
  h.translate = j.at("translate");
  h.scale = j.at("scale");
  h.shear = j.at("shear");
  h.perspective = j.at("perspective");
  return h;
}

PerspectiveDraw draw_from(const json& draws) {
  const std::vector<double> v = draws.get<std::vector<double>>();
  REQUIRE(v.size() == 8);
  PerspectiveDraw d;
  d.perspective_x = v[0];
  d.perspective_y = v[1];
  d.angle = v[2];
  d.scale = v[3];
  // The reference draws shear in degrees and translation as a fraction, like PerspectiveDraw.
  d.shear_x = v[4];
  d.shear_y = v[5];
  d.translate_x = v[6];
  d.translate_y = v[7];
  return d;
}

int64_t ulps_apart(float a, float b) {
  if (a == b) return 0;
  if (std::isnan(a) || std::isnan(b) || (a < 0) != (b < 0)) return INT64_MAX;
  int32_t ia = 0, ib = 0;
  std::memcpy(&ia, &a, 4);
  std::memcpy(&ib, &b, 4);
  return std::abs(static_cast<int64_t>(ia) - ib);
}

void require_labels(const std::vector<float>& got, const std::vector<float>& want,
                    const std::string& what) {
  INFO(what);
  REQUIRE(got.size() == want.size());
  for (size_t k = 0; k < got.size(); ++k) {
    INFO("element " << k << " (row " << k / 5 << ", column " << k % 5 << "): got " << got[k]
                    << ", reference " << want[k]);
    if (k % 5 == 0) {
      REQUIRE(got[k] == want[k]);
    } else {
      REQUIRE(ulps_apart(got[k], want[k]) <= kLabelUlps);
    }
  }
}

void require_matrix(const double* got, const json& want, const std::string& what) {
  const std::vector<double> w = want.get<std::vector<double>>();
  double scale = 0;
  for (double v : w) scale = std::max(scale, std::abs(v));
  for (int k = 0; k < 9; ++k) {
    INFO(what << ": M[" << k << "] got " << got[k] << ", reference " << w[k]);
    REQUIRE(std::abs(got[k] - w[k]) <= kMatrix * scale);
  }
}

std::vector<std::vector<float>> polygons(const json& j) {
  std::vector<std::vector<float>> out;
  for (const json& s : j) out.push_back(floats(s));
  return out;
}

}  // namespace

TEST_CASE("random_perspective: matrix, boxes, polygons and box candidates match the reference",
          "[data][augment]") {
  int n = 0;
  for (const json& c : fixture().at("perspective")) {
    const int h = c.at("h"), w = c.at("w"), border = c.at("border");
    const int out_h = h + 2 * border, out_w = w + 2 * border;
    const AugmentHyp hyp = hyp_from(c.at("hyp"));
    const PerspectiveDraw d = draw_from(c.at("draws"));
    const Mat3 m = perspective_matrix(d, w, h, out_w, out_h);
    const std::string what = "perspective case " + std::to_string(n++);
    if (c.at("matrix").is_null()) {
      REQUIRE_FALSE(needs_warp(m, border != 0));
    } else {
      REQUIRE(needs_warp(m, border != 0));
      require_matrix(m.data(), c.at("matrix"), what);
    }
    const std::vector<float> got = warp_labels(floats(c.at("targets")), polygons(c.at("segments")),
                                               m, hyp.perspective != 0.0, d.scale, out_w, out_h);
    require_labels(got, floats(c.at("out")), what);
  }
  CHECK(n >= 20);
}

TEST_CASE("load_mosaic: tile placement, label shift, clip and warp match the reference",
          "[data][augment]") {
  int n = 0;
  for (const json& c : fixture().at("mosaic")) {
    LabelScan scan;
    int k = 0;
    for (const json& im : c.at("images")) {
      ImageLabels e;
      e.image = "fixture_image_" + std::to_string(k++) + ".png";
      e.width = im.at("w");
      e.height = im.at("h");
      e.boxes = floats(im.at("labels"));
      e.status = e.boxes.empty() ? LabelStatus::missing : LabelStatus::found;
      e.segments = polygons(im.at("segments"));
      scan.images.push_back(std::move(e));
    }
    DatasetOptions opt;
    opt.img_size = c.at("img_size");
    opt.augment = true;
    opt.hyp = hyp_from(c.at("hyp"));
    DetectionDataset ds(std::move(scan), opt);
    MosaicDraw draw;
    draw.xc = c.at("xc");
    draw.yc = c.at("yc");
    const std::vector<int64_t> order = c.at("order").get<std::vector<int64_t>>();
    REQUIRE(order.size() == 4);
    for (int t = 0; t < 4; ++t) draw.images[t] = order[t];
    draw.warp = draw_from(c.at("draws"));
    const MosaicPlan plan = plan_mosaic(ds, draw);
    const std::string what = "mosaic case " + std::to_string(n++);
    REQUIRE(plan.view.warp == (opt.hyp.perspective != 0.0 ? AugmentWarp::perspective
                                                          : AugmentWarp::affine));
    REQUIRE(plan.view.canvas_w == 2 * opt.img_size);
    require_matrix(plan.view.m, c.at("matrix"), what);
    require_labels(plan.labels, floats(c.at("out")), what);
    // Every tile lies inside the canvas and inside its (loaded) source image.
    for (int t = 0; t < plan.view.n_tiles; ++t) {
      const AugmentTile& tile = plan.view.tiles[t];
      const auto [sh, sw] = ds.loaded_size_hw(plan.images[static_cast<size_t>(tile.source)]);
      REQUIRE(tile.x0 >= 0);
      REQUIRE(tile.y0 >= 0);
      REQUIRE(tile.x1 <= plan.view.canvas_w);
      REQUIRE(tile.y1 <= plan.view.canvas_h);
      REQUIRE(tile.src_x >= 0);
      REQUIRE(tile.src_y >= 0);
      REQUIRE(tile.src_x + (tile.x1 - tile.x0) <= sw);
      REQUIRE(tile.src_y + (tile.y1 - tile.y0) <= sh);
    }
  }
  CHECK(n >= 40);
}

TEST_CASE("augmentation draws: keyed by (seed, epoch, index, stream), reference distributions",
          "[data][augment]") {
  AugmentRng a(7, 3, 11), b(7, 3, 11), other_epoch(7, 4, 11), other_index(7, 3, 12),
      other_stream(7, 3, 11, 1), other_seed(8, 3, 11);
  for (int k = 0; k < 20; ++k) {
    const double u = a.uniform();
    REQUIRE(u == b.uniform());
    REQUIRE(u >= 0.0);
    REQUIRE(u < 1.0);
    REQUIRE(u != other_epoch.uniform());
    REQUIRE(u != other_index.uniform());
    REQUIRE(u != other_stream.uniform());
    REQUIRE(u != other_seed.uniform());
  }
  // Moments against the exact values: U(0, 1) mean 1/2, var 1/12; below(6) uniform over 0..5;
  // Beta(32, 32) mean 1/2, var 1 / (4 * 65). 20000 draws: standard errors ~0.2% of these.
  AugmentRng r(1, 0, 0);
  const int n = 20000;
  double s1 = 0, s2 = 0, b1 = 0, b2 = 0;
  int counts[6] = {0, 0, 0, 0, 0, 0};
  for (int k = 0; k < n; ++k) {
    const double u = r.uniform(-2.0, 6.0);
    s1 += u;
    s2 += u * u;
    ++counts[r.below(6)];
    const double be = r.beta(32.0, 32.0);
    REQUIRE(be > 0.0);
    REQUIRE(be < 1.0);
    b1 += be;
    b2 += be * be;
  }
  const double mean = s1 / n, var = s2 / n - mean * mean;
  CHECK(std::abs(mean - 2.0) < 0.06);                 // 4.5 standard errors of 8/sqrt(12n)
  CHECK(std::abs(var - 64.0 / 12.0) < 0.15);
  for (int c : counts) CHECK(std::abs(c - n / 6.0) < 5 * std::sqrt(n / 6.0));
  const double bm = b1 / n, bv = b2 / n - bm * bm;
  CHECK(std::abs(bm - 0.5) < 0.0025);
  CHECK(std::abs(bv - 1.0 / 260.0) < 0.0004);
}

TEST_CASE("hyp yaml: the scratch hyps load, bad values are named", "[data][augment]") {
  const auto configs = std::filesystem::path(__FILE__).parent_path().parent_path() / "configs";
  const AugmentHyp low = load_augment_hyp((configs / "hyp.scratch-low.yaml").string());
  CHECK(low.hsv_h == 0.015);
  CHECK(low.scale == 0.5);
  CHECK(low.mixup == 0.0);
  const AugmentHyp high = load_augment_hyp((configs / "hyp.scratch-high.yaml").string());
  CHECK(high.scale == 0.9);
  CHECK(high.mixup == 0.1);
  CHECK(high.copy_paste == 0.1);
  const auto dir = std::filesystem::temp_directory_path() / "yolocore_hyp_test";
  std::filesystem::create_directories(dir);
  const auto write = [&](const std::string& text) {
    const auto f = dir / "hyp.yaml";
    std::ofstream(f) << text;
    return f.string();
  };
  REQUIRE_THROWS_WITH(load_augment_hyp(write("fliplr: 1.5\n")),
                      Catch::Contains("'fliplr' is 1.5") && Catch::Contains("probability"));
  REQUIRE_THROWS_WITH(load_augment_hyp(write("hsv_h: abc\n")),
                      Catch::Contains("'hsv_h' must be a number"));
  REQUIRE_THROWS_WITH(load_augment_hyp(write("scale: 1.2\n")), Catch::Contains("'scale' is 1.2"));
  REQUIRE_THROWS_WITH(load_augment_hyp((dir / "absent.yaml").string()),
                      Catch::Contains("cannot read the hyp file"));
  std::filesystem::remove_all(dir);
}

namespace {

// A small on-disk shapes dataset shared by the plan tests below.
const std::filesystem::path& shapes_dir() {
  static const std::filesystem::path dir = [] {
    const auto d = std::filesystem::temp_directory_path() /
                   ("yolocore_augment_test_" + std::to_string(test::base_seed() % 100000));
    std::filesystem::remove_all(d);
    ShapesOptions o;
    o.out_dir = d.string();
    o.train = 10;
    o.val = 2;
    o.imgsz = 96;
    o.seed = 3;
    write_shapes_dataset(o);
    return d;
  }();
  return dir;
}

LabelScan shapes_scan() {
  ScanOptions so;
  so.use_cache = false;
  return scan_labels({(shapes_dir() / "images" / "train").string()}, so);
}

}  // namespace

TEST_CASE("sample plans: pure in (seed, epoch, index); flips mirror the labels", "[data][augment]") {
  DatasetOptions opt;
  opt.img_size = 64;
  opt.augment = true;
  opt.hyp.mixup = 0.5;
  opt.hyp.fliplr = 0.0;
  opt.hyp.flipud = 0.0;
  DetectionDataset plain(shapes_scan(), opt);
  opt.hyp.fliplr = 1.0;
  opt.hyp.flipud = 1.0;
  DetectionDataset flipped(shapes_scan(), opt);
  int mixups = 0;
  for (int64_t i = 0; i < plain.size(); ++i) {
    const PreparedSample a = plain.prepare(i, 2), b = plain.prepare(i, 2);
    REQUIRE(a.images == b.images);
    REQUIRE(a.labels == b.labels);
    REQUIRE(std::memcmp(&a.desc.views[0].m, &b.desc.views[0].m, sizeof(a.desc.views[0].m)) == 0);
    REQUIRE(a.desc.hsv_gain[0] == b.desc.hsv_gain[0]);
    REQUIRE(a.out_w == 64);
    REQUIRE(a.out_h == 64);
    for (size_t k = 0; k < a.labels.size(); ++k) {
      if (k % 5 == 0) continue;
      REQUIRE(a.labels[k] >= 0.0f);
      REQUIRE(a.labels[k] <= 1.0f);
    }
    mixups += a.desc.mixup;
    REQUIRE(a.images.size() == (a.desc.mixup ? 8u : 4u));
    // The flip coins come last in the stream: everything else is the same plan.
    const PreparedSample f = flipped.prepare(i, 2);
    REQUIRE(f.desc.flip_lr);
    REQUIRE(f.desc.flip_ud);
    REQUIRE(f.images == a.images);
    REQUIRE(f.labels.size() == a.labels.size());
    for (size_t r = 0; r < a.labels.size(); r += 5) {
      REQUIRE(f.labels[r + 1] == 1.0f - a.labels[r + 1]);
      REQUIRE(f.labels[r + 2] == 1.0f - a.labels[r + 2]);
      REQUIRE(f.labels[r + 3] == a.labels[r + 3]);
    }
    // A different epoch gives a different plan.
    const PreparedSample e = plain.prepare(i, 3);
    REQUIRE(std::memcmp(&e.desc.views[0].m, &a.desc.views[0].m, sizeof(a.desc.views[0].m)) != 0);
  }
  CHECK(mixups > 0);
  CHECK(mixups < plain.size());
}

TEST_CASE("validation samples: rect letterbox with the reference's shapes, pixels as letterbox",
          "[data][augment]") {
  DatasetOptions opt;
  opt.img_size = 64;
  opt.batch_size = 4;
  opt.rect = true;
  opt.pad = 0.5;
  DetectionDataset ds(shapes_scan(), opt);
  REQUIRE_FALSE(ds.mosaic());
  for (int64_t i = 0; i < ds.size(); ++i) {
    const Sample s = ds.get(i, 0);
    const auto [bh, bw] = ds.batch_shape_hw(i);
    const ImageLabels& im = ds.images()[static_cast<size_t>(i)];
    const auto [h, w] = ds.loaded_size_hw(i);
    const LetterboxParams lb = letterbox_params(h, w, bh, bw, false, false, false, 32);
    REQUIRE(s.image.width == lb.out_w());
    REQUIRE(s.image.height == lb.out_h());
    // Pixels: exactly the letterbox of the loaded image.
    const Image want = letterbox_image(ds.load_image(i)->image, lb);
    REQUIRE(want.width == s.image.width);
    REQUIRE(want.height == s.image.height);
    REQUIRE(want.pixels == s.image.pixels);
    // Labels: the scan's boxes through letterbox and back to normalised xywh.
    std::vector<float> xywh;
    for (size_t r = 0; r < im.boxes.size(); r += 5) {
      for (int c = 1; c < 5; ++c) xywh.push_back(im.boxes[r + c]);
    }
    const std::vector<float> want_boxes = xyxy_to_xywhn(
        xywhn_to_xyxy(xywh, lb.ratio_w * w, lb.ratio_h * h, lb.dw, lb.dh), lb.out_w(), lb.out_h(),
        true, 1e-3);
    REQUIRE(s.prepared.labels.size() == im.boxes.size());
    for (size_t r = 0; r < s.prepared.labels.size() / 5; ++r) {
      REQUIRE(s.prepared.labels[5 * r] == im.boxes[5 * r]);
      for (int c = 0; c < 4; ++c) REQUIRE(s.prepared.labels[5 * r + 1 + c] == want_boxes[4 * r + c]);
    }
    REQUIRE(s.prepared.h0 == im.height);
    REQUIRE(s.prepared.w0 == im.width);
    REQUIRE(s.prepared.pad_w == lb.dw);
  }
}

TEST_CASE("training samples: the CPU path makes every pixel, the RAM cache changes nothing",
          "[data][augment]") {
  DatasetOptions opt;
  opt.img_size = 64;
  opt.augment = true;
  opt.hyp.mixup = 0.3;
  opt.seed = 5;
  DetectionDataset ds(shapes_scan(), opt);
  DetectionDataset cached(shapes_scan(), opt);
  const int64_t bytes = cached.cache_images();
  REQUIRE(bytes > 0);
  for (int64_t i = 0; i < ds.size(); ++i) {
    const Sample a = ds.get(i, 1), b = cached.get(i, 1);
    REQUIRE(a.image.width == 64);
    REQUIRE(a.image.height == 64);
    REQUIRE(a.image.pixels == b.image.pixels);
    REQUIRE(a.prepared.labels == b.prepared.labels);
  }
}

TEST_CASE("dataset: bad indices and an image changed after the scan are clear errors",
          "[data][augment]") {
  DatasetOptions opt;
  opt.img_size = 64;
  DetectionDataset ds(shapes_scan(), opt);
  REQUIRE_THROWS_WITH(ds.prepare(ds.size(), 0), Catch::Contains("out of range"));
  REQUIRE_THROWS_WITH(DetectionDataset(LabelScan{}, opt), Catch::Contains("no usable images"));
  LabelScan scan = shapes_scan();
  scan.images[0].width += 1;  // as if the file had been replaced since the scan
  DetectionDataset stale(std::move(scan), opt);
  REQUIRE_THROWS_WITH(stale.load_image(0), Catch::Contains("when the labels were scanned"));
}

TEST_CASE("source crops: decoding only what the warp reads gives the same samples",
          "[data][augment]") {
  for (const char* hyps : {"low", "heavy", "perspective"}) {
    INFO(hyps);
    DatasetOptions opt;
    opt.img_size = 64;
    opt.augment = true;
    opt.seed = 11;
    opt.hyp.mixup = 0.5;
    if (std::string(hyps) == "heavy") {
      opt.hyp.degrees = 30;
      opt.hyp.shear = 10;
      opt.hyp.scale = 0.9;
      opt.hyp.translate = 0.3;
      opt.hyp.flipud = 0.5;
    } else if (std::string(hyps) == "perspective") {
      opt.hyp.degrees = 10;
      opt.hyp.perspective = 0.001;
    }
    DatasetOptions whole_opt = opt;
    whole_opt.crop_sources = false;
    DetectionDataset cropped(shapes_scan(), opt), whole(shapes_scan(), whole_opt);
    int64_t cropped_px = 0, whole_px = 0;
    for (int64_t epoch = 0; epoch < 3; ++epoch) {
      for (int64_t i = 0; i < cropped.size(); ++i) {
        const Sample a = cropped.get(i, epoch), b = whole.get(i, epoch);
        REQUIRE(a.image.pixels == b.image.pixels);
        REQUIRE(a.prepared.labels == b.prepared.labels);
        REQUIRE(a.prepared.images.size() <= b.prepared.images.size());
        for (const PixelRect& r : a.prepared.crops) cropped_px += int64_t{r.w} * r.h;
        for (const PixelRect& r : b.prepared.crops) whole_px += int64_t{r.w} * r.h;
      }
    }
    // The warp's scale is U(0.5, 1.5) (0.1 to 1.9 for heavy): on average well under the whole.
    CHECK(cropped_px < whole_px * 3 / 4);
  }
}
