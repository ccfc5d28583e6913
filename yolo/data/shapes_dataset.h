// The built-in synthetic detection dataset: coloured shapes (rectangle, ellipse, triangle, star,
// cross, ring, hexagon, arrow) on textured backgrounds, written as JPEGs, ultralytics label txts
// and a data yaml. `yolo train` uses it when no --data is given.
//   yolo dataset shapes --out DIR [--train 256] [--val 64] [--imgsz 320] [--classes 4] [--seed 0]
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "yolo/data/image_io.h"

namespace yolo {

// Note [Shapes dataset defaults]
// 256 train + 64 val images with a long side of 320 px and 4 classes (rectangle, ellipse,
// triangle, star): small enough that `yolo train` runs an epoch in seconds on a laptop CPU at
// --img 320, varied enough that mAP climbs visibly within a few epochs. Per image: 0 objects
// (3%, background images as ultralytics recommends), 12-40 small objects (15%), else 1-8 objects
// of 5-45% of the long side; half the images are square, the rest have a short side of 60-100% of
// the long one. Aspect ratios up to 2.2:1, any rotation, shapes cut by the image border and by
// later shapes. An object's label is the tight box of its visible pixels. No label for an object
// with less than 10% of its area inside the image (the reference's box_candidates threshold), more
// than 60% of its in-image pixels hidden by later shapes, or a box under 3 px either way.
// JPEG quality 90, 4:2:0.
inline constexpr int kShapesMaxClasses = 8;

struct ShapesOptions {
  std::string out_dir;
  int train = 256;
  int val = 64;
  int imgsz = 320;  // long side of every image, in pixels
  int classes = 4;  // the first `classes` of shapes_class_names()
  uint64_t seed = 0;
  int jpeg_quality = 90;
};

// All eight class names in id order; a K-class set uses the first K.
const std::vector<std::string>& shapes_class_names();

// One labelled object: pixel box [x0, x1) x [y0, y1) of its visible pixels.
struct ShapeBox {
  int cls = 0;
  int x0 = 0, y0 = 0, x1 = 0, y1 = 0;
};

struct ShapesSample {
  Image image;
  std::vector<ShapeBox> boxes;
};

// Image `index` of split `split` (0 train, 1 val). Depends only on (seed, split, index, imgsz,
// classes): the Philox RNG is keyed by the seed with (split, index) in the counter, so images
// are independent of each other and of the number of threads.
ShapesSample render_shapes_image(uint64_t seed, int split, int64_t index, int imgsz, int classes);

// Label file text for a sample: "class xc yc w h\n" per box, normalised, 6 decimals.
std::string shapes_label_text(const ShapesSample& s);

struct ShapesSummary {
  int64_t images = 0;
  int64_t objects = 0;
  std::string data_yaml;  // path of the written data yaml
};

// Writes DIR/images/{train,val}/NNNNNN.jpg, DIR/labels/{train,val}/NNNNNN.txt and DIR/data.yaml
// (path = absolute DIR). Images are generated in parallel (OpenMP); the bytes depend only on the
// options. Refuses (yolo::Error) a folder whose split folders hold files it would not write, so a
// smaller set never leaves stale images of a bigger one behind.
ShapesSummary write_shapes_dataset(const ShapesOptions& options);

// `yolo dataset shapes ...`: argv holds only the options after "shapes" (argv[0] is the first
// option). Prints a summary to `out`; returns 0, or throws yolo::Error for bad options.
int run_dataset_shapes(int argc, char** argv, std::FILE* out);

}  // namespace yolo
