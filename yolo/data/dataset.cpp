// DetectionDataset: the reference's LoadImagesAndLabels.__getitem__ / load_mosaic / load_image as a
// pure plan (prepare) plus the pixel apply of kernels/augment.h. Note [Plan order] explains which
// draws come from which stream.
#include "yolo/data/dataset.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "yolo/data/geometry.h"
#include "yolo/data/image_ops.h"

namespace yolo {

// Note [Plan order]
// The reference draws from one Python `random` stream per worker, so its samples depend on which
// worker made them. Here each sample has its own streams keyed by (seed, epoch, index):
//   stream 0: the mosaic-or-not coin, the mosaic centre (yc then xc), the three partners, their
//             shuffle, the perspective draws (perspective, angle, scale, shear x, shear y,
//             translate x, translate y), the mixup coin and partner, then the flip coins (up-down,
//             left-right);
//   stream 1: the HSV gains and the mixup ratio (the reference's NumPy draws);
//   stream 2: the mixup partner's own mosaic (its centre, partners and warp).
// The distributions are the reference's: centre int(U(s/2, 3s/2)), partners uniform over the
// dataset (random.choices), Fisher-Yates shuffle, gains U(-1, 1) * gain + 1, ratio Beta(32, 32).

struct DetectionDataset::Cache {
  std::mutex mutex;
  std::vector<std::shared_ptr<const LoadedImage>> images;  // filled by cache_images()
  std::atomic<bool> complete{false};
};

DetectionDataset::DetectionDataset(LabelScan scan, DatasetOptions options)
    : scan_(std::move(scan)), options_(std::move(options)), cache_(std::make_unique<Cache>()) {
  const std::string& pre = options_.prefix;
  YOLO_CHECK(!scan_.images.empty(), pre << "no usable images in the dataset (every image was "
                                           "missing or corrupt): run `yolo dataset check` on it");
  YOLO_CHECK(options_.img_size > 0 && options_.img_size % 2 == 0,
             pre << "img_size must be a positive even number of pixels, got " << options_.img_size);
  YOLO_CHECK(options_.stride > 0 && options_.batch_size > 0,
             pre << "stride and batch_size must be positive");
  if (options_.single_cls) {
    for (ImageLabels& im : scan_.images) {
      for (size_t r = 0; r < im.boxes.size(); r += 5) im.boxes[r] = 0.0f;
    }
  }
  if (options_.augment && options_.hyp.copy_paste > 0.0) {
    bool polygons = false;
    for (const ImageLabels& im : scan_.images) polygons = polygons || !im.segments.empty();
    // Without polygons the reference's copy_paste does nothing either.
    if (polygons) {
      warnings_.push_back(pre + "WARNING: copy_paste " + std::to_string(options_.hyp.copy_paste) +
                          " is not applied by yolocore (it pastes polygon-labelled objects); "
                          "training continues without it. Set copy_paste: 0.0 in the hyp file to "
                          "silence this warning");
    }
  }
  if (options_.rect) {
    // The reference sorts its file list by aspect ratio and serves it in that order.
    std::vector<std::pair<int, int>> wh;
    wh.reserve(scan_.images.size());
    for (const ImageLabels& im : scan_.images) wh.emplace_back(im.width, im.height);
    RectBatches rb = rect_batch_shapes(wh, options_.batch_size, options_.img_size, options_.stride,
                                       options_.pad);
    std::vector<ImageLabels> sorted;
    sorted.reserve(scan_.images.size());
    rect_shape_.resize(scan_.images.size());
    for (size_t k = 0; k < rb.order.size(); ++k) {
      sorted.push_back(std::move(scan_.images[static_cast<size_t>(rb.order[k])]));
      rect_shape_[k] = rb.shapes_hw[k / static_cast<size_t>(options_.batch_size)];
    }
    scan_.images = std::move(sorted);
  }
}

DetectionDataset::~DetectionDataset() = default;

int64_t DetectionDataset::size() const { return static_cast<int64_t>(scan_.images.size()); }

bool DetectionDataset::mosaic() const { return options_.augment && !options_.rect; }

std::pair<int, int> DetectionDataset::batch_shape_hw(int64_t index) const {
  YOLO_CHECK(index >= 0 && index < size(), "sample index " << index << " out of range [0, "
                                                           << size() << ")");
  if (options_.rect) return rect_shape_[static_cast<size_t>(index)];
  return {options_.img_size, options_.img_size};
}

std::pair<int, int> DetectionDataset::loaded_size_hw(int64_t i) const {
  const ImageLabels& im = scan_.images.at(static_cast<size_t>(i));
  const LoadSize s = load_image_size(im.height, im.width, options_.img_size, options_.augment);
  return {s.h, s.w};
}

namespace {

// A decoded image must still be the size the scan recorded (plans are made from that size).
void check_scanned_size(const ImageLabels& entry, const DecodedImage& dec, const std::string& prefix,
                        const std::filesystem::path& cache_path) {
  YOLO_CHECK(dec.source_height == entry.height && dec.source_width == entry.width,
             prefix << entry.image << " is " << dec.source_width << "x" << dec.source_height
                    << " but was " << entry.width << "x" << entry.height
                    << " when the labels were scanned; delete the label cache ("
                    << cache_path.string() << ") so it is rescanned");
}

}  // namespace

std::shared_ptr<const LoadedImage> DetectionDataset::load_image(int64_t i) const {
  YOLO_CHECK(i >= 0 && i < size(), "image index " << i << " out of range [0, " << size() << ")");
  if (cache_->complete.load(std::memory_order_acquire)) return cache_->images[static_cast<size_t>(i)];
  const ImageLabels& entry = scan_.images[static_cast<size_t>(i)];
  DecodeOptions opt;
  opt.target_long_side = options_.img_size;  // DCT scaling only when it stays >= img_size
  DecodedImage dec = decode_image_file(entry.image, opt);
  auto out = std::make_shared<LoadedImage>();
  out->h0 = dec.source_height;
  out->w0 = dec.source_width;
  check_scanned_size(entry, dec, options_.prefix, scan_.cache_path);
  const LoadSize size = load_image_size(out->h0, out->w0, options_.img_size, options_.augment);
  if (dec.image.height == size.h && dec.image.width == size.w) {
    out->image = std::move(dec.image);
  } else {
    // From a DCT-scaled decode the resize goes from that smaller image to the same target size.
    LoadSize from_decoded = size;
    if (from_decoded.interp == Interp::none) from_decoded.interp = Interp::area;
    out->image = resize_for_load(dec.image, from_decoded);
  }
  return out;
}

int64_t DetectionDataset::cache_images() {
  if (cache_->complete.load()) {
    int64_t bytes = 0;
    for (const auto& im : cache_->images) bytes += static_cast<int64_t>(im->image.pixels.size());
    return bytes;
  }
  const size_t n = scan_.images.size();
  std::vector<std::shared_ptr<const LoadedImage>> images(n);
  int threads = options_.threads > 0
                    ? options_.threads
                    : static_cast<int>(std::min(8u, std::max(1u, std::thread::hardware_concurrency())));
  threads = static_cast<int>(std::min<size_t>(static_cast<size_t>(threads), n));
  std::atomic<size_t> next{0};
  std::mutex error_mutex;
  std::string error;
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      for (size_t i = next++; i < n; i = next++) {
        try {
          images[i] = load_image(static_cast<int64_t>(i));
        } catch (const std::exception& e) {
          std::lock_guard<std::mutex> lock(error_mutex);
          if (error.empty()) error = e.what();
          next = n;
        }
      }
    });
  }
  for (std::thread& t : pool) t.join();
  YOLO_CHECK(error.empty(), options_.prefix << "caching images failed: " << error);
  int64_t bytes = 0;
  for (const auto& im : images) bytes += static_cast<int64_t>(im->image.pixels.size());
  {
    std::lock_guard<std::mutex> lock(cache_->mutex);
    cache_->images = std::move(images);
    cache_->complete.store(true, std::memory_order_release);
  }
  return bytes;
}

std::shared_ptr<const Image> DetectionDataset::source_image(const PreparedSample& p, size_t k) const {
  YOLO_CHECK(k < p.images.size() && k < p.crops.size(),
             "source_image: sample " << p.index << " has " << p.images.size() << " sources, asked for "
                                     << k);
  const int64_t i = p.images[k];
  const PixelRect& crop = p.crops[k];
  const bool resize = p.resize_w > 0 && k == 0;
  const ImageLabels& entry = scan_.images.at(static_cast<size_t>(i));
  const auto [h, w] = loaded_size_hw(i);
  if (!resize && !cache_->complete.load(std::memory_order_acquire) && h == entry.height &&
      w == entry.width) {
    // load_image would keep the decoded image as it is: decode just the crop.
    if (crop == PixelRect{0, 0, w, h}) {
      std::shared_ptr<const LoadedImage> loaded = load_image(i);
      return std::shared_ptr<const Image>(loaded, &loaded->image);
    }
    DecodedImage dec = decode_image_region(entry.image, crop);
    check_scanned_size(entry, dec, options_.prefix, scan_.cache_path);
    return std::make_shared<const Image>(std::move(dec.image));
  }
  std::shared_ptr<const LoadedImage> loaded = load_image(i);
  const Image* im = &loaded->image;
  Image resized;
  if (resize && (im->width != p.resize_w || im->height != p.resize_h)) {
    resized = resize_linear(*im, p.resize_w, p.resize_h);
    im = &resized;
  }
  if (crop == PixelRect{0, 0, im->width, im->height}) {
    if (im == &loaded->image) return std::shared_ptr<const Image>(loaded, &loaded->image);
    return std::make_shared<const Image>(std::move(resized));
  }
  return std::make_shared<const Image>(crop_image(*im, crop));
}

namespace {

// Labels of one image as float32 pixel xyxy at (w, h) shifted by (padw, padh): (n, 5) rows of
// class, x1, y1, x2, y2.
std::vector<float> pixel_labels(const ImageLabels& im, double w, double h, double padw,
                                double padh) {
  const size_t n = im.boxes.size() / 5;
  std::vector<float> xywh(n * 4);
  for (size_t r = 0; r < n; ++r) {
    for (int c = 0; c < 4; ++c) xywh[4 * r + c] = im.boxes[5 * r + 1 + c];
  }
  const std::vector<float> xyxy = xywhn_to_xyxy(xywh, w, h, padw, padh);
  std::vector<float> out(n * 5);
  for (size_t r = 0; r < n; ++r) {
    out[5 * r] = im.boxes[5 * r];
    for (int c = 0; c < 4; ++c) out[5 * r + 1 + c] = xyxy[4 * r + c];
  }
  return out;
}

void set_warp(AugmentView& view, const Mat3& m, bool perspective) {
  view.warp = perspective ? AugmentWarp::perspective : AugmentWarp::affine;
  for (int k = 0; k < 9; ++k) view.m[k] = m[k];
}

}  // namespace

MosaicDraw draw_mosaic(const DetectionDataset& ds, int64_t index, AugmentRng& rng) {
  const int s = ds.options().img_size;
  const int border = -(s / 2);  // mosaic_border = [-s // 2, -s // 2]
  MosaicDraw d;
  d.yc = static_cast<int>(rng.uniform(-border, 2 * s + border));
  d.xc = static_cast<int>(rng.uniform(-border, 2 * s + border));
  d.images[0] = index;
  for (int k = 1; k < 4; ++k) d.images[k] = rng.below(ds.size());
  for (int k = 3; k > 0; --k) std::swap(d.images[k], d.images[rng.below(k + 1)]);
  d.warp = draw_perspective(rng, ds.options().hyp);
  return d;
}

MosaicPlan plan_mosaic(const DetectionDataset& ds, const MosaicDraw& draw) {
  const DatasetOptions& o = ds.options();
  const int s = o.img_size;
  const int border = -(s / 2);
  const int xc = draw.xc, yc = draw.yc;
  const int64_t* idx = draw.images;
  for (int k = 0; k < 4; ++k) {
    YOLO_CHECK(idx[k] >= 0 && idx[k] < ds.size(),
               "plan_mosaic: image index " << idx[k] << " out of range [0, " << ds.size() << ")");
  }
  MosaicPlan mp;
  std::vector<float> labels4;
  std::vector<std::vector<float>> segments4;
  mp.view.canvas_w = mp.view.canvas_h = 2 * s;
  mp.view.n_tiles = 4;
  for (int i = 0; i < 4; ++i) {
    const auto [h, w] = ds.loaded_size_hw(idx[i]);
    int x1a = 0, y1a = 0, x2a = 0, y2a = 0, x1b = 0, y1b = 0;
    if (i == 0) {  // top left, ends at the centre
      x1a = std::max(xc - w, 0), y1a = std::max(yc - h, 0), x2a = xc, y2a = yc;
      x1b = w - (x2a - x1a), y1b = h - (y2a - y1a);
    } else if (i == 1) {  // top right
      x1a = xc, y1a = std::max(yc - h, 0), x2a = std::min(xc + w, 2 * s), y2a = yc;
      x1b = 0, y1b = h - (y2a - y1a);
    } else if (i == 2) {  // bottom left
      x1a = std::max(xc - w, 0), y1a = yc, x2a = xc, y2a = std::min(2 * s, yc + h);
      x1b = w - (x2a - x1a), y1b = 0;
    } else {  // bottom right
      x1a = xc, y1a = yc, x2a = std::min(xc + w, 2 * s), y2a = std::min(2 * s, yc + h);
      x1b = 0, y1b = 0;
    }
    mp.images.push_back(idx[i]);
    mp.view.tiles[i] = AugmentTile{i, x1a, y1a, x2a, y2a, x1b, y1b};
    const int padw = x1a - x1b, padh = y1a - y1b;
    const ImageLabels& im = ds.images()[static_cast<size_t>(idx[i])];
    const std::vector<float> l = pixel_labels(im, w, h, padw, padh);
    labels4.insert(labels4.end(), l.begin(), l.end());
    for (const std::vector<float>& seg : im.segments) {
      std::vector<float> px(seg.size());
      for (size_t k = 0; k + 1 < seg.size(); k += 2) {
        px[k] = static_cast<float>(w) * seg[k] + static_cast<float>(padw);
        px[k + 1] = static_cast<float>(h) * seg[k + 1] + static_cast<float>(padh);
      }
      segments4.push_back(std::move(px));
    }
  }
  // Clip to the canvas (the reference clips in place before the warp).
  const float lim = static_cast<float>(2 * s);
  for (size_t r = 0; r < labels4.size(); r += 5) {
    for (int c = 1; c < 5; ++c) labels4[r + c] = std::clamp(labels4[r + c], 0.0f, lim);
  }
  for (auto& seg : segments4) {
    for (float& v : seg) v = std::clamp(v, 0.0f, lim);
  }
  const int out = 2 * s + 2 * border;
  const PerspectiveDraw& d = draw.warp;
  const Mat3 m = perspective_matrix(d, 2 * s, 2 * s, out, out);
  const bool persp = o.hyp.perspective != 0.0;
  set_warp(mp.view, m, persp);  // border != 0: the mosaic is always warped
  mp.labels = warp_labels(labels4, segments4, m, persp, d.scale, out, out);
  return mp;
}

// Note [Source crops]
// A 640x640 mosaic reads on average about a third of its 1280x1280 canvas (the warp's scale is
// U(0.5, 1.5)), so most decoded pixels of its four images would be thrown away. prepare() maps the
// output rectangle back through the inverse warp, widens the bounding box by the bilinear taps
// and a rounding margin, and keeps of each tile only the part inside it: tiles entirely outside
// are dropped with their images, the rest name the crop of their image they read. The canvas
// pixels the warp reads are unchanged, so the output is the same bytes; what changes is how much
// is decoded (DetectionDataset::source_image decodes only the crop when it can).
namespace {

// The canvas pixels view's warp can read: [x0, x1) x [y0, y1), or the whole canvas when the
// mapping cannot be bounded (a perspective whose horizon crosses the output).
PixelRect warp_footprint(const AugmentView& view, int out_w, int out_h) {
  const PixelRect whole{0, 0, view.canvas_w, view.canvas_h};
  if (view.warp == AugmentWarp::none) {
    return {0, 0, std::min(out_w, view.canvas_w), std::min(out_h, view.canvas_h)};
  }
  // Inverse of the forward matrix (output -> canvas), as a 3x3 adjugate over the determinant.
  const double* m = view.m;
  const double a = m[0], b = m[1], c = m[2], d = m[3], e = m[4], f = m[5];
  const double g = view.warp == AugmentWarp::perspective ? m[6] : 0.0;
  const double h = view.warp == AugmentWarp::perspective ? m[7] : 0.0;
  const double i = view.warp == AugmentWarp::perspective ? m[8] : 1.0;
  const double inv[9] = {e * i - f * h, c * h - b * i, b * f - c * e,
                         f * g - d * i, a * i - c * g, c * d - a * f,
                         d * h - e * g, b * g - a * h, a * e - b * d};
  const double det = a * inv[0] + b * inv[3] + c * inv[6];
  if (!(std::abs(det) > 1e-12)) return whole;
  double xmin = 1e300, ymin = 1e300, xmax = -1e300, ymax = -1e300;
  int sign = 0;
  for (const double ox : {-1.0, static_cast<double>(out_w)}) {
    for (const double oy : {-1.0, static_cast<double>(out_h)}) {
      const double z = inv[6] * ox + inv[7] * oy + inv[8];
      const int s = z > 0 ? 1 : (z < 0 ? -1 : 0);
      if (s == 0 || (sign != 0 && s != sign)) return whole;
      sign = s;
      const double x = (inv[0] * ox + inv[1] * oy + inv[2]) / z;
      const double y = (inv[3] * ox + inv[4] * oy + inv[5]) / z;
      if (!std::isfinite(x) || !std::isfinite(y)) return whole;
      xmin = std::min(xmin, x), xmax = std::max(xmax, x);
      ymin = std::min(ymin, y), ymax = std::max(ymax, y);
    }
  }
  // Bilinear taps at floor(x) and floor(x) + 1, plus 2 pixels for cv2's fixed-point rounding.
  constexpr double kMargin = 3.0;
  const double x0 = std::max(0.0, std::floor(xmin - kMargin));
  const double y0 = std::max(0.0, std::floor(ymin - kMargin));
  const double x1 = std::min(static_cast<double>(view.canvas_w), std::ceil(xmax + kMargin));
  const double y1 = std::min(static_cast<double>(view.canvas_h), std::ceil(ymax + kMargin));
  if (x1 <= x0 || y1 <= y0) return {0, 0, 0, 0};
  return {static_cast<int>(x0), static_cast<int>(y0), static_cast<int>(x1 - x0),
          static_cast<int>(y1 - y0)};
}

}  // namespace

// Rewrites p's tiles to read only their footprint (Note [Source crops]); with crop = false, each
// image is read whole.
static void assign_crops(PreparedSample& p, const DetectionDataset& ds, bool crop) {
  std::vector<int64_t> images;
  std::vector<PixelRect> crops;
  const int n_views = p.desc.mixup ? 2 : 1;
  for (int v = 0; v < n_views; ++v) {
    AugmentView& view = p.desc.views[v];
    const PixelRect need = crop ? warp_footprint(view, p.out_w, p.out_h)
                                : PixelRect{0, 0, view.canvas_w, view.canvas_h};
    AugmentTile kept[4];
    int n = 0;
    for (int t = 0; t < view.n_tiles; ++t) {
      const AugmentTile& tile = view.tiles[t];
      const int64_t image = p.images.at(static_cast<size_t>(tile.source));
      if (!crop) {
        const auto [h, w] = ds.loaded_size_hw(image);
        const int sh = (p.resize_w > 0 && tile.source == 0) ? p.resize_h : h;
        const int sw = (p.resize_w > 0 && tile.source == 0) ? p.resize_w : w;
        images.push_back(image);
        crops.push_back({0, 0, sw, sh});
        kept[n] = tile;
        kept[n++].source = static_cast<int32_t>(images.size() - 1);
        continue;
      }
      const int x0 = std::max(tile.x0, need.x), y0 = std::max(tile.y0, need.y);
      const int x1 = std::min(tile.x1, need.x + need.w), y1 = std::min(tile.y1, need.y + need.h);
      if (x1 <= x0 || y1 <= y0) continue;  // the warp never reads this tile
      images.push_back(image);
      crops.push_back({tile.src_x + (x0 - tile.x0), tile.src_y + (y0 - tile.y0), x1 - x0, y1 - y0});
      kept[n++] = AugmentTile{static_cast<int32_t>(images.size() - 1), x0, y0, x1, y1, 0, 0};
    }
    view.n_tiles = n;
    for (int t = 0; t < 4; ++t) view.tiles[t] = t < n ? kept[t] : AugmentTile{};
  }
  p.images = std::move(images);
  p.crops = std::move(crops);
}

PreparedSample DetectionDataset::prepare(int64_t index, int64_t epoch) const {
  YOLO_CHECK(index >= 0 && index < size(), "sample index " << index << " out of range [0, "
                                                           << size() << ")");
  const AugmentHyp& hyp = options_.hyp;
  AugmentRng rng(options_.seed, epoch, index, 0);
  AugmentRng rng_np(options_.seed, epoch, index, 1);
  PreparedSample p;
  p.index = index;
  std::vector<float> labels;  // (n, 5) class + pixel xyxy, float32
  const bool use_mosaic = mosaic() && rng.uniform() < hyp.mosaic;
  if (use_mosaic) {
    p.mosaic = true;
    MosaicPlan a = plan_mosaic(*this, draw_mosaic(*this, index, rng));
    p.out_h = p.out_w = options_.img_size;
    p.desc.views[0] = a.view;
    p.images = a.images;
    labels = std::move(a.labels);
    if (rng.uniform() < hyp.mixup) {
      const int64_t partner = rng.below(size());
      AugmentRng rng_partner(options_.seed, epoch, index, 2);
      MosaicPlan b = plan_mosaic(*this, draw_mosaic(*this, partner, rng_partner));
      for (int t = 0; t < b.view.n_tiles; ++t) b.view.tiles[t].source += 4;
      p.desc.views[1] = b.view;
      p.desc.mixup = true;
      p.desc.mixup_r = rng_np.beta(32.0, 32.0);
      p.images.insert(p.images.end(), b.images.begin(), b.images.end());
      labels.insert(labels.end(), b.labels.begin(), b.labels.end());
    }
  } else {
    const ImageLabels& im = scan_.images[static_cast<size_t>(index)];
    const auto [h, w] = loaded_size_hw(index);
    const auto [shape_h, shape_w] = batch_shape_hw(index);
    const LetterboxParams lb =
        letterbox_params(h, w, shape_h, shape_w, false, false, options_.augment, options_.stride);
    p.images = {index};
    if (lb.unpad_w != w || lb.unpad_h != h) {
      p.resize_w = lb.unpad_w;
      p.resize_h = lb.unpad_h;
    }
    AugmentView& v = p.desc.views[0];
    v.canvas_w = lb.out_w();
    v.canvas_h = lb.out_h();
    v.n_tiles = 1;
    v.tiles[0] = AugmentTile{0, lb.left, lb.top, lb.left + lb.unpad_w, lb.top + lb.unpad_h, 0, 0};
    p.out_w = v.canvas_w;
    p.out_h = v.canvas_h;
    p.h0 = im.height;
    p.w0 = im.width;
    p.ratio_h = static_cast<double>(h) / im.height;
    p.ratio_w = static_cast<double>(w) / im.width;
    p.pad_w = lb.dw;
    p.pad_h = lb.dh;
    labels = pixel_labels(im, lb.ratio_w * w, lb.ratio_h * h, lb.dw, lb.dh);
    if (options_.augment) {
      const PerspectiveDraw d = draw_perspective(rng, hyp);
      const Mat3 m = perspective_matrix(d, p.out_w, p.out_h, p.out_w, p.out_h);
      const bool persp = hyp.perspective != 0.0;
      if (needs_warp(m, false)) set_warp(v, m, persp);
      labels = warp_labels(labels, {}, m, persp, d.scale, p.out_w, p.out_h);
    }
  }

  // Pixel xyxy -> normalised xywh, clipped to the image less 1e-3.
  const size_t n = labels.size() / 5;
  std::vector<float> xyxy(n * 4);
  for (size_t r = 0; r < n; ++r) {
    for (int c = 0; c < 4; ++c) xyxy[4 * r + c] = labels[5 * r + 1 + c];
  }
  const std::vector<float> xywh = xyxy_to_xywhn(xyxy, p.out_w, p.out_h, true, 1e-3);
  p.labels.resize(n * 5);
  for (size_t r = 0; r < n; ++r) {
    p.labels[5 * r] = labels[5 * r];
    for (int c = 0; c < 4; ++c) p.labels[5 * r + 1 + c] = xywh[4 * r + c];
  }

  if (options_.augment) {
    if (hyp.hsv_h != 0.0 || hyp.hsv_s != 0.0 || hyp.hsv_v != 0.0) {
      p.desc.hsv = true;
      const double gains[3] = {hyp.hsv_h, hyp.hsv_s, hyp.hsv_v};
      for (int k = 0; k < 3; ++k) p.desc.hsv_gain[k] = rng_np.uniform(-1.0, 1.0) * gains[k] + 1.0;
    }
    if (rng.uniform() < hyp.flipud) {
      p.desc.flip_ud = true;
      for (size_t r = 0; r < n; ++r) p.labels[5 * r + 2] = 1.0f - p.labels[5 * r + 2];
    }
    if (rng.uniform() < hyp.fliplr) {
      p.desc.flip_lr = true;
      for (size_t r = 0; r < n; ++r) p.labels[5 * r + 1] = 1.0f - p.labels[5 * r + 1];
    }
  }
  assign_crops(p, *this, options_.crop_sources);
  return p;
}

Sample DetectionDataset::get(int64_t index, int64_t epoch) const {
  Sample s;
  s.prepared = prepare(index, epoch);
  const PreparedSample& p = s.prepared;
  std::vector<std::shared_ptr<const Image>> images;
  int64_t bytes = 0;
  for (size_t k = 0; k < p.images.size(); ++k) {
    images.push_back(source_image(p, k));
    bytes += static_cast<int64_t>(images.back()->pixels.size());
  }
  Tensor pixels = Tensor::empty_cpu({std::max<int64_t>(bytes, 1)}, DType::u8);
  std::vector<AugmentSource> sources;
  int64_t offset = 0;
  for (const auto& im : images) {
    std::memcpy(static_cast<uint8_t*>(pixels.raw()) + offset, im->pixels.data(), im->pixels.size());
    sources.push_back(AugmentSource{offset, im->width, im->height});
    offset += static_cast<int64_t>(im->pixels.size());
  }
  s.image = Image(p.out_w, p.out_h);
  Tensor out = Tensor::wrap(s.image.pixels.data(), {1, p.out_h, p.out_w, 3}, DType::u8,
                            Device::cpu());
  Context ctx(Device::cpu(), 1);
  augment_apply(ctx, pixels, sources, {p.desc}, out);
  return s;
}

}  // namespace yolo
