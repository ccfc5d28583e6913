// Image lists and YOLO label files as the reference's LoadImagesAndLabels reads them: sources
// (folders walked recursively, .txt lists), the images -> labels path rule, every check of
// verify_image_label with its message, and a binary label cache next to the labels.
//   LabelScan scan = yolo::scan_labels(cfg.train, {.prefix = "train: "});
//   for (const ImageLabels& im : scan.images) ... im.boxes holds (class, x, y, w, h) rows
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace yolo {

// The reference's IMG_FORMATS: bmp dng jpeg jpg mpo png tif tiff webp.
const std::vector<std::string>& image_extensions();
// True when the text after the last '.' of `path`, lower-cased, is one of image_extensions().
bool has_image_extension(const std::string& path);

// Every image of the sources, sorted and without repeats. A folder is walked recursively (hidden
// names skipped, as glob's **/*.* does); a .txt file lists one image per line (a leading ./ is the
// list's folder, other relative lines are relative to the working directory; lines are trimmed);
// an image file is itself. Throws yolo::Error "<source> does not exist" or "No images found in
// ...".
std::vector<std::string> list_image_files(const std::vector<std::string>& sources);

// The reference's img2label_paths for one path: the last /images/ becomes /labels/ and the text
// after the last '.' becomes txt (no /images/: the label sits beside the image).
std::string image_to_label_path(const std::string& image_path);

// Where the label cache of these sources lives: beside the .txt list when the last source is a
// list, else beside the folder of the first label file: labels/train2017 ->
// labels/train2017.yolocore.cache (our own format, so a reference .cache beside it is left alone).
std::filesystem::path label_cache_path(const std::vector<std::string>& sources,
                                       const std::vector<std::string>& label_files);

// One label file's rows after verify_image_label's checks (Note [Label checks]).
struct ParsedLabels {
  std::vector<float> boxes;  // (n, 5) row-major: class, x, y, w, h (normalised)
  std::vector<std::vector<float>>
      segments;  // polygon files only: per row, x0 y0 x1 y1 ... (normalised)
  int duplicates_removed = 0;
  int64_t count() const { return static_cast<int64_t>(boxes.size() / 5); }
};
// Parses label text; throws yolo::Error with the reference's message ("labels require 5 columns,
// 6 columns detected", "negative label values [-0.1]", "non-normalized or out of bounds
// coordinates [1.5]", "could not convert string to float: 'abc'", ...).
ParsedLabels parse_label_text(std::string_view text);

enum class LabelStatus : uint8_t { found = 0, missing = 1, empty = 2 };

// One usable image (corrupt ones are dropped from a scan, as the reference drops them).
struct ImageLabels {
  std::string image;
  int width = 0;  // EXIF-corrected, as the reference's exif_size
  int height = 0;
  LabelStatus status = LabelStatus::missing;
  std::vector<float> boxes;                  // (n, 5): class, x, y, w, h
  std::vector<std::vector<float>> segments;  // empty unless the label file holds polygons
  int64_t count() const { return static_cast<int64_t>(boxes.size() / 5); }
};

struct ScanOptions {
  bool use_cache = true;  // read a matching cache and write a new one when it does not match
  int threads = 0;        // 0: min(8, hardware threads), as the reference's NUM_THREADS
  std::string prefix;     // put before every message, e.g. "train: "
};

struct LabelScan {
  std::vector<ImageLabels> images;  // sorted by image path
  int found = 0, missing = 0, empty = 0, corrupt = 0, total = 0;
  std::vector<std::string> messages;  // one per problem, naming the file
  std::filesystem::path cache_path;
  bool from_cache = false;  // the labels came from a matching cache file
  std::vector<std::string>
      cache_messages;  // "New cache created: ...", unwritable-folder or stale-cache warnings
  std::string
      summary;  // "Scanning '...' images and labels... N found, M missing, E empty, C corrupt"
};

// Lists the sources' images, then reads the cache or checks every (image, label) pair in threads
// and writes the cache (temp file + rename; an unwritable folder only warns). Throws yolo::Error
// only for a missing source or no images at all; every bad file becomes a message.
LabelScan scan_labels(const std::vector<std::string>& sources, const ScanOptions& options = {});

// The highest class id in the scan (-1 when there are no labels) and, when it is >= nc, the
// reference's "Label class X exceeds nc=Y in DATA. Possible class labels are 0-(Y-1)" plus the
// files holding such labels; empty when every class is below nc.
std::vector<std::string> class_range_problems(const LabelScan& scan, int nc,
                                              const std::string& data_name);

}  // namespace yolo
