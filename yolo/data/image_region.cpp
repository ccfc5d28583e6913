// Region decoding (Note [Region decode] in image_io.h): the part of an image an augmentation plan
// reads. JPEGs go through libjpeg-turbo's libjpeg API so only the needed iMCU columns are
// transformed and decoding stops after the last needed row; everything else falls back to a full
// decode and a crop.
#include <cstddef>
#include <cstdio>
// clang-format off: jpeglib.h needs size_t and FILE declared first
#include <jpeglib.h>
// clang-format on

#include <algorithm>
#include <csetjmp>
#include <cstring>
#include <fstream>
#include <iterator>

#include "core/error.h"
#include "yolo/data/image_io.h"

namespace yolo {
namespace {

struct JpegErrors {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
  int warnings;
};

[[noreturn]] void on_jpeg_error(j_common_ptr cinfo) {
  std::longjmp(reinterpret_cast<JpegErrors*>(cinfo->err)->jump, 1);
}

void on_jpeg_message(j_common_ptr cinfo, int level) {
  if (level < 0) ++reinterpret_cast<JpegErrors*>(cinfo->err)->warnings;
}

// A decompressor whose errors longjmp to err.jump and whose warnings are counted.
void create_decompress(jpeg_decompress_struct& cinfo, JpegErrors& err) {
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = on_jpeg_error;
  err.pub.emit_message = on_jpeg_message;
  err.warnings = 0;
  jpeg_create_decompress(&cinfo);
}

// Decodes `r` of a JPEG into out (r.w * r.h * 3 bytes, RGB). Returns false — and the caller falls
// back to a full decode — for CMYK/YCCK data, any libjpeg error or warning, or a region outside
// the image. Only trivially destructible locals live in this frame (longjmp crosses it).
bool decode_jpeg_region_raw(const uint8_t* data, size_t size, const PixelRect& r, uint8_t* out) {
  jpeg_decompress_struct cinfo;
  JpegErrors err;
  create_decompress(cinfo, err);
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  jpeg_mem_src(&cinfo, data, static_cast<unsigned long>(size));
  jpeg_read_header(&cinfo, TRUE);
  if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  // What TurboJPEG's decompress to RGB (and cv2.imread) use: islow IDCT, fancy upsampling.
  cinfo.out_color_space = JCS_RGB;
  cinfo.dct_method = JDCT_ISLOW;
  cinfo.do_fancy_upsampling = TRUE;
  jpeg_start_decompress(&cinfo);
  const int full_w = static_cast<int>(cinfo.output_width);
  const int full_h = static_cast<int>(cinfo.output_height);
  if (r.x < 0 || r.y < 0 || r.w <= 0 || r.h <= 0 || r.x + r.w > full_w || r.y + r.h > full_h ||
      cinfo.output_components != 3) {
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  const int margin_x = cinfo.max_h_samp_factor * DCTSIZE;
  const int margin_y = cinfo.max_v_samp_factor * DCTSIZE;
  JDIMENSION xoff = static_cast<JDIMENSION>(std::max(0, r.x - margin_x));
  JDIMENSION width = static_cast<JDIMENSION>(std::min(full_w, r.x + r.w + margin_x)) - xoff;
  if (width < static_cast<JDIMENSION>(full_w)) jpeg_crop_scanline(&cinfo, &xoff, &width);
  const int first = std::max(0, r.y - margin_y);
  if (first > 0) jpeg_skip_scanlines(&cinfo, static_cast<JDIMENSION>(first));
  JSAMPARRAY row = (*cinfo.mem->alloc_sarray)(reinterpret_cast<j_common_ptr>(&cinfo), JPOOL_IMAGE,
                                              width * 3, 1);
  const size_t row_bytes = static_cast<size_t>(r.w) * 3;
  const size_t from = static_cast<size_t>(r.x - static_cast<int>(xoff)) * 3;
  while (static_cast<int>(cinfo.output_scanline) < r.y + r.h) {
    const int y = static_cast<int>(cinfo.output_scanline);
    if (jpeg_read_scanlines(&cinfo, row, 1) != 1) break;
    if (y >= r.y) std::memcpy(out + static_cast<size_t>(y - r.y) * row_bytes, row[0] + from, row_bytes);
  }
  const bool ok = static_cast<int>(cinfo.output_scanline) >= r.y + r.h && err.warnings == 0;
  jpeg_abort_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return ok;
}

// The frame size from the JPEG header; 0 x 0 when libjpeg cannot read it.
void jpeg_header_size(const uint8_t* data, size_t size, int& w, int& h) {
  jpeg_decompress_struct cinfo;
  JpegErrors err;
  create_decompress(cinfo, err);
  w = h = 0;
  if (!setjmp(err.jump)) {
    jpeg_mem_src(&cinfo, data, static_cast<unsigned long>(size));
    jpeg_read_header(&cinfo, TRUE);
    w = static_cast<int>(cinfo.image_width);
    h = static_cast<int>(cinfo.image_height);
  }
  jpeg_destroy_decompress(&cinfo);
}

// Throws unless `r` is a non-empty rectangle inside a w x h image.
void check_region(const std::string& name, const PixelRect& r, int w, int h) {
  YOLO_CHECK(r.x >= 0 && r.y >= 0 && r.w > 0 && r.h > 0 && r.x + r.w <= w && r.y + r.h <= h,
             name << ": region (" << r.x << ", " << r.y << ") " << r.w << "x" << r.h
                  << " is not inside the " << w << "x" << h << " image");
}

}  // namespace

Image crop_image(const Image& im, const PixelRect& r) {
  check_region("crop_image", r, im.width, im.height);
  Image out(r.w, r.h);
  const size_t row_bytes = static_cast<size_t>(r.w) * 3;
  for (int y = 0; y < r.h; ++y) std::memcpy(out.row(y), im.at(r.x, r.y + y), row_bytes);
  return out;
}

DecodedImage decode_image_region_memory(const uint8_t* data, size_t size, const PixelRect& region,
                                        const DecodeOptions& options, const std::string& name) {
  YOLO_CHECK(options.target_long_side == 0,
             name << ": a region decode is at full resolution (target_long_side must be 0)");
  YOLO_CHECK(data != nullptr && size > 0, name << ": empty image file; the image is skipped");
  if (sniff_image_format(data, size) == ImageFormat::jpeg && exif_orientation(data, size) == 1) {
    DecodedImage out;
    int w = 0, h = 0;
    jpeg_header_size(data, size, w, h);
    if (w > 0 && h > 0 && static_cast<int64_t>(w) * h <= options.max_pixels) {
      check_region(name, region, w, h);
      out.image = Image(region.w, region.h);
      if (decode_jpeg_region_raw(data, size, region, out.image.pixels.data())) {
        out.format = ImageFormat::jpeg;
        out.source_width = w;
        out.source_height = h;
        return out;
      }
    }
  }
  DecodedImage full = decode_image_memory(data, size, options, name);
  check_region(name, region, full.image.width, full.image.height);
  full.image = crop_image(full.image, region);
  return full;
}

DecodedImage decode_image_region(const std::string& path, const PixelRect& region,
                                 const DecodeOptions& options) {
  std::ifstream f(path, std::ios::binary);
  YOLO_CHECK(f.good(), path << ": cannot open the image file");
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  YOLO_CHECK(!f.bad(), path << ": read error");
  return decode_image_region_memory(bytes.data(), bytes.size(), region, options, path);
}

}  // namespace yolo
