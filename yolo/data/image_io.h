// Image decoding and encoding for the data pipeline: JPEG through libjpeg-turbo (TurboJPEG API,
// with DCT scaling when the caller wants a much smaller image), PNG/BMP/TGA/GIF through stb_image,
// EXIF orientation as cv2.imread applies it, a pixel-count limit, and JPEG/PNG encoding.
//   yolo::Image im = yolo::decode_image("images/train/0001.jpg", 640);  // RGB, long side >= 640
//   yolo::write_jpeg("out.jpg", im, 95);
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "yolo/data/image_probe.h"  // ImageFormat, image_format_name

namespace yolo {

// Note [RGB images]
// Every decoded image is 8-bit, 3-channel, interleaved RGB, rows top to bottom, no row padding.
// The reference (cv2) holds BGR until collate, where it flips to the model's CHW RGB. We store RGB
// from the start because (a) the model input is RGB, so the CPU and GPU apply paths write the
// batch without a channel flip; (b) libjpeg-turbo and stb_image produce RGB natively; (c) the HSV
// augmentation is defined on named R, G, B values (cv2's BGR2HSV reads them from the other end of
// the pixel), so it gives the same numbers for the same colours whatever the storage order; and
// (d) the JPEG/PNG writers for plots take RGB. Reference fixtures stored as BGR arrays are
// flipped once where a test reads them.
struct Image {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> pixels;  // (height, width, 3) RGB, row-major

  Image() = default;
  Image(int w, int h);  // zero-filled
  uint8_t* row(int y) { return pixels.data() + static_cast<size_t>(y) * width * 3; }
  const uint8_t* row(int y) const { return pixels.data() + static_cast<size_t>(y) * width * 3; }
  uint8_t* at(int x, int y) { return row(y) + 3 * x; }
  const uint8_t* at(int x, int y) const { return row(y) + 3 * x; }
  bool empty() const { return width == 0 || height == 0; }
};

// Recognised from the first bytes (never from the file name, like cv2.imread). TGA has no magic
// number: a buffer that is none of the others and has a plausible TGA header is called TGA.
// Returns jpeg, png, bmp, gif, tga or unknown.
ImageFormat sniff_image_format(const uint8_t* data, size_t size);

// Decompression-bomb limit: images with more source pixels than this are refused before any
// pixel buffer is allocated. 2^28 (268 million) is far above any real training photo.
inline constexpr int64_t kDefaultMaxPixels = int64_t{1} << 28;

struct DecodeOptions {
  // 0: full resolution. > 0: a JPEG may be decoded at 1/2, 1/4 or 1/8 scale (DCT scaling) when
  // that scaled image still has a long side >= target_long_side; the caller resizes the rest.
  // Other formats always decode at full size. (Note [DCT scaling])
  int target_long_side = 0;
  int64_t max_pixels = kDefaultMaxPixels;
  // A JPEG whose data ends before its end-of-image marker is an Error by default. With true it
  // decodes like cv2.imread does (the missing part grey), which is what the reference trains on
  // after its "corrupt JPEG restored" re-save.
  bool accept_truncated_jpeg = false;
};

struct DecodedImage {
  Image image;            // EXIF-oriented; possibly DCT-scaled (JPEG only)
  int source_width = 0;   // full-resolution size after EXIF orientation (the reference's w0)
  int source_height = 0;  // (the reference's h0)
  ImageFormat format = ImageFormat::unknown;
  int exif_orientation = 1;  // 1..8 as read and applied (1 when absent)
  int scale_denom = 1;       // 1, 2, 4 or 8: the DCT scale that was used
};

// A rectangle of pixels: columns [x, x + w), rows [y, y + h).
struct PixelRect {
  int x = 0, y = 0, w = 0, h = 0;
  bool operator==(const PixelRect&) const = default;
};

// Reads and decodes a file. Throws yolo::Error naming the file for a missing, unreadable,
// unsupported, corrupt, truncated or too-large image; never crashes on bad input.
// Grayscale, palette, alpha and 16-bit inputs become 8-bit RGB as cv2.imread(IMREAD_COLOR) makes
// them (grey replicated, alpha dropped, 16-bit to the high byte; CMYK JPEG through cv2's formula).
DecodedImage decode_image_file(const std::string& path, const DecodeOptions& options = {});
// Same, for bytes in memory; `name` is used in error messages.
DecodedImage decode_image_memory(const uint8_t* data, size_t size, const DecodeOptions& options,
                                 const std::string& name);
// Note [Region decode]
// The pixels of `region` (in the EXIF-oriented image's coordinates), exactly as
// decode_image_file(path).image cropped to it. A JPEG with orientation 1 that is not CMYK runs the
// IDCT only for the iMCU columns covering the region and stops after its last row (libjpeg-turbo's
// jpeg_crop_scanline / jpeg_skip_scanlines), with one iMCU of margin on every side so that fancy
// upsampling sees the same neighbours as in a full decode; anything else (other formats, other
// orientations, a warning from libjpeg) is decoded in full and cropped, with the same errors.
// options.target_long_side must be 0. Returns the region in `image` and the full size in
// source_width / source_height. Throws yolo::Error for a region outside the image.
DecodedImage decode_image_region(const std::string& path, const PixelRect& region,
                                 const DecodeOptions& options = {});
DecodedImage decode_image_region_memory(const uint8_t* data, size_t size, const PixelRect& region,
                                        const DecodeOptions& options, const std::string& name);
// The pixels of `region` of `im`, copied.
Image crop_image(const Image& im, const PixelRect& region);

// Shorthand: decode_image_file(path, {target_long_side}).image
Image decode_image(const std::string& path, int target_long_side = 0);

// The EXIF orientation tag (0x0112) of a JPEG (first APP1 segment) or a PNG (eXIf chunk), found
// where cv2.imread finds it (Note [EXIF orientation]); 1 when there is none, it cannot be parsed,
// or the format carries no EXIF.
int exif_orientation(const uint8_t* data, size_t size);
int jpeg_exif_orientation(const uint8_t* data, size_t size);
// Applies EXIF orientation o (1..8) the way cv2.imread does (Note [EXIF orientation]).
Image apply_exif_orientation(const Image& im, int orientation);

// Baseline JPEG from an RGB image; quality 1..100, 4:2:0 chroma subsampling (cv2.imwrite's
// default), integer DCT: the bytes depend only on the pixels and the quality.
std::vector<uint8_t> encode_jpeg(const Image& im, int quality = 95);
// PNG (stb_image_write, its default compression level 8): for plots.
std::vector<uint8_t> encode_png(const Image& im);
// Writes bytes to `path` (replacing it); throws yolo::Error naming the file on failure.
void write_file(const std::string& path, const std::vector<uint8_t>& bytes);
void write_jpeg(const std::string& path, const Image& im, int quality = 95);
void write_png(const std::string& path, const Image& im);

}  // namespace yolo
