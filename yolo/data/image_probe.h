// Image header probe: format, size and EXIF orientation of an image file without decoding pixels
// (JPEG SOF, PNG IHDR, BMP, GIF, TGA). The dataset scan (yolo/data/labels.cpp) uses it the way the
// reference uses PIL's open + verify + exif_size: a file it cannot read is reported and skipped.
//   ImageSize s = yolo::probe_image_size("a.jpg");   // EXIF-corrected width and height
#pragma once

#include <string>

namespace yolo {

enum class ImageFormat { unknown, jpeg, png, bmp, gif, tga, tiff, webp };

// "JPEG", "PNG", ... as PIL names formats (used in messages).
const char* image_format_name(ImageFormat f);

struct ImageProbe {
  ImageFormat format = ImageFormat::unknown;
  int width = 0;  // as stored in the file
  int height = 0;
  int orientation = 1;   // EXIF orientation 1..8 (1 when absent or unreadable)
  bool jpeg_eoi = true;  // JPEG only: the file ends with the FF D9 end-of-image marker
  // Size after applying the EXIF orientation: orientations 5-8 are transposes, so w and h swap
  // (Note [EXIF orientation and size]).
  int oriented_width() const { return orientation >= 5 ? height : width; }
  int oriented_height() const { return orientation >= 5 ? width : height; }
};

// Reads the headers of `path`. Throws yolo::Error naming the file and what is wrong (unreadable,
// unknown format, truncated header, zero size, TIFF/WebP which yolocore cannot decode). PNG files
// are walked chunk by chunk with their CRCs checked up to IEND, as PIL's verify() does.
ImageProbe probe_image(const std::string& path);

struct ImageSize {
  int width = 0;
  int height = 0;
};
// probe_image(path) reduced to the EXIF-corrected size.
ImageSize probe_image_size(const std::string& path);

}  // namespace yolo
