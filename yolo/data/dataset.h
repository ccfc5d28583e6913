// The reference's LoadImagesAndLabels as plan-then-apply: a scanned image list plus hyp-driven
// augmentation. prepare() turns (index, epoch) into a PreparedSample — which source images, where
// they go, the warp, HSV gains, flips, mixup and the final labels — with no pixels touched;
// augment_apply (kernels/augment.h) then makes the pixels on the CPU or the GPU.
//   DetectionDataset ds(scan_labels(cfg.train), {.img_size = 640, .augment = true, .hyp = hyp});
//   PreparedSample p = ds.prepare(i, epoch);   // labels final, pixels not yet made
//   Sample s = ds.get(i, epoch);               // the CPU path end to end (u8 image + labels)
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "kernels/augment.h"
#include "yolo/data/augment.h"
#include "yolo/data/image_io.h"
#include "yolo/data/labels.h"

namespace yolo {

struct DatasetOptions {
  int img_size = 640;
  int batch_size = 16;  // only for rect batch shapes
  bool augment = false;
  bool rect = false;  // rectangular batches (val); disables mosaic
  int stride = 32;
  double pad = 0.0;  // rect batch padding (0.5 for val)
  bool single_cls = false;
  AugmentHyp hyp;
  uint64_t seed = 0;  // augmentation plans are keyed by (seed, epoch, index)
  // Read only the pixels each sample uses (Note [Source crops] in dataset.cpp): same output, less
  // decoding. false reads whole images.
  bool crop_sources = true;
  int threads = 0;  // for cache_images() (--cache ram); 0 = min(8, hardware threads)
  std::string prefix;  // message prefix, e.g. "train: "
};

// One image after load_image: resized so its long side is img_size (cv2 numerics), RGB.
struct LoadedImage {
  Image image;
  int h0 = 0, w0 = 0;  // original size (EXIF-oriented)
};

// Everything needed to make one sample's pixels, and its final labels.
struct PreparedSample {
  int64_t index = 0;
  bool mosaic = false;  // a 4-image mosaic (the reference's shapes is None for these)
  // Dataset indices of the images the sample reads, in the order desc's tiles number them
  // (tile.source = position in this list), and the part of each loaded image it reads
  // (crops[k], in load_image coordinates). Their pixels: DetectionDataset::source_image(p, k).
  std::vector<int64_t> images;
  std::vector<PixelRect> crops;
  // Non-mosaic samples whose letterbox changes the loaded size: the size source 0 is resized to
  // (cv2 INTER_LINEAR) before it is placed; 0 when no resize is needed.
  int resize_w = 0, resize_h = 0;
  AugmentSample desc;
  int out_h = 0, out_w = 0;
  std::vector<float> labels;  // (n, 5) row-major: class, x, y, w, h normalised to out_w/out_h
  // For validation (no mosaic): ((h0, w0), ((h / h0, w / w0), (padw, padh))) as the reference's
  // `shapes`, used to map predictions back to original pixels.
  int h0 = 0, w0 = 0;
  double ratio_h = 1.0, ratio_w = 1.0, pad_w = 0.0, pad_h = 0.0;
};

// One finished sample on the CPU: its pixels and its plan (prepared.labels are its labels).
struct Sample {
  Image image;  // out_w x out_h RGB
  PreparedSample prepared;
};

// The random choices of one load_mosaic call: the centre, the four images (after the shuffle, in
// tile order top-left, top-right, bottom-left, bottom-right) and the perspective draws.
struct MosaicDraw {
  int xc = 0, yc = 0;
  int64_t images[4] = {0, 0, 0, 0};
  PerspectiveDraw warp;
};
// A mosaic: the view over the virtual 2s x 2s canvas (tile.source = position in `images`), and its
// labels after the warp and the box-candidate filter: (n, 5) float32 class, x1, y1, x2, y2 pixels
// of the s x s output.
struct MosaicPlan {
  AugmentView view;
  std::vector<int64_t> images;
  std::vector<float> labels;
};

class DetectionDataset;
// load_mosaic's draws from `rng` in the reference's order (Note [Plan order] in dataset.cpp).
MosaicDraw draw_mosaic(const DetectionDataset& ds, int64_t index, AugmentRng& rng);
// load_mosaic with given draws (tests replay the reference's draws through it).
MosaicPlan plan_mosaic(const DetectionDataset& ds, const MosaicDraw& draw);

class DetectionDataset {
 public:
  // Throws yolo::Error when the scan holds no images.
  DetectionDataset(LabelScan scan, DatasetOptions options);
  ~DetectionDataset();
  DetectionDataset(const DetectionDataset&) = delete;
  DetectionDataset& operator=(const DetectionDataset&) = delete;

  int64_t size() const;
  const DatasetOptions& options() const { return options_; }
  const std::vector<ImageLabels>& images() const { return scan_.images; }
  const LabelScan& scan() const { return scan_; }
  // Things the user should know about the options (e.g. copy_paste with polygon labels, which
  // yolocore does not apply); the trainer prints them once.
  const std::vector<std::string>& warnings() const { return warnings_; }
  // True when samples use mosaic (augment and not rect), as the reference's self.mosaic.
  bool mosaic() const;
  // The letterbox target of sample `index`: its rect batch shape (rect mode, where the images are
  // held sorted by aspect ratio as the reference reorders them), else img_size x img_size.
  std::pair<int, int> batch_shape_hw(int64_t index) const;

  // load_image(i): decode (DCT-scaled when possible) and resize as the reference does, or return
  // the RAM-cached copy. Thread-safe. Throws yolo::Error naming the file for an unreadable image.
  std::shared_ptr<const LoadedImage> load_image(int64_t i) const;
  // The size load_image(i) will have, without decoding (from the scanned size).
  std::pair<int, int> loaded_size_hw(int64_t i) const;
  // --cache ram: load every image once, in threads; afterwards load_image never decodes.
  // Returns the bytes held.
  int64_t cache_images();

  // The pixels source k of a prepared sample reads: p.crops[k] of load_image(p.images[k]) (resized
  // first when p.resize_w/h ask for it), decoding only that region when the image needs no resize.
  // Thread-safe.
  std::shared_ptr<const Image> source_image(const PreparedSample& p, size_t k) const;

  // The plan of sample `index` at `epoch` (pure function of seed, epoch, index and the scan).
  PreparedSample prepare(int64_t index, int64_t epoch) const;
  // The CPU path end to end: prepare, load the images, augment_apply on the CPU.
  Sample get(int64_t index, int64_t epoch) const;

 private:
  struct Cache;
  LabelScan scan_;
  DatasetOptions options_;
  std::vector<std::pair<int, int>> rect_shape_;  // per image index (rect mode)
  std::vector<std::string> warnings_;
  std::unique_ptr<Cache> cache_;
};

}  // namespace yolo
