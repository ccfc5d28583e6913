// Image decoding (TurboJPEG for JPEG, stb_image for PNG/BMP/TGA/GIF), EXIF orientation, and
// JPEG/PNG encoding. See yolo/data/image_io.h for the contract; the notes below say why the
// behaviour is what it is.
#include "yolo/data/image_io.h"

#include <turbojpeg.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>

#include "core/error.h"
#include "stb_image.h"
#include "stb_image_write.h"

namespace yolo {

Image::Image(int w, int h) : width(w), height(h), pixels(static_cast<size_t>(w) * h * 3, 0) {}

namespace {

uint16_t le16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] | (p[1] << 8));
}
uint32_t le32(const uint8_t* p) {
  return uint32_t{p[0]} | (uint32_t{p[1]} << 8) | (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 24);
}

// TGA has no signature: an 18-byte header with a colour-map type of 0 or 1, an image type stb
// reads (1-3 plain, 9-11 run-length), a colour map exactly when the type needs one, a pixel depth
// of 8/15/16/24/32 and a non-empty size. Random bytes pass this about once in 10^6.
bool tga_header_plausible(const uint8_t* d, size_t size) {
  if (size < 18) return false;
  const int cmap = d[1], type = d[2], bpp = d[16];
  if (cmap > 1) return false;
  if (type != 1 && type != 2 && type != 3 && type != 9 && type != 10 && type != 11) return false;
  if ((type == 1 || type == 9) != (cmap == 1)) return false;
  if (bpp != 8 && bpp != 15 && bpp != 16 && bpp != 24 && bpp != 32) return false;
  return le16(d + 12) > 0 && le16(d + 14) > 0;
}

// Note [Truncated BMP, TGA, GIF and PNG]
// stb_image reads zeros past the end of a BMP, TGA or GIF and reports success, so a cut-off file
// would decode with a black tail, and it decodes a PNG without IEND or with bad CRCs. cv2 refuses
// such BMPs and PNGs (it has no TGA or GIF reader), and so do we, with a check of the file's
// structure before stb sees it: the pixel data a BMP header promises, TGA run-length packets that
// cover the image, a GIF's blocks complete up to its trailer, a PNG's chunks intact up to IEND.
void check_bmp_complete(const uint8_t* d, size_t size, const std::string& name) {
  YOLO_CHECK(size >= 26, name << ": truncated BMP header (" << size << " bytes)");
  const uint32_t offset = le32(d + 10), dib = le32(d + 14);
  int64_t w, h, bpp, compression = 0;
  if (dib == 12) {
    w = le16(d + 18), h = le16(d + 20), bpp = le16(d + 24);
  } else {
    YOLO_CHECK(size >= 34, name << ": truncated BMP header (" << size << " bytes)");
    w = static_cast<int32_t>(le32(d + 18)), h = static_cast<int32_t>(le32(d + 22));
    bpp = le16(d + 28), compression = le32(d + 30);
  }
  if (compression != 0 && compression != 3 && compression != 6) return;  // stb refuses the rest
  if (w <= 0 || h == 0 || bpp <= 0) return;                              // stb reports these
  const int64_t row = (w * bpp + 31) / 32 * 4;
  const int64_t need = static_cast<int64_t>(offset) + row * (h < 0 ? -h : h);
  YOLO_CHECK(static_cast<int64_t>(size) >= need, name << ": truncated BMP (" << size
                                                      << " bytes, the header promises " << need
                                                      << "); the image is skipped");
}

// Walks the PNG chunks to IEND, checking the CRC of each critical chunk, as libpng (and so
// cv2.imread) does; stb_image skips CRCs and accepts a file without IEND.
void check_png_complete(const uint8_t* d, size_t size, const std::string& name);

// The block structure must be complete up to the trailer, with at least one image (stb_image
// would read zeros past the end and decode a cut-off first frame with a black tail).
void check_gif_complete(const uint8_t* d, size_t size, const std::string& name) {
  auto fail = [&](const char* what) {
    YOLO_FAIL(name << ": " << what << " GIF (" << size << " bytes); the image is skipped");
  };
  size_t pos = 13;
  if (size < pos) fail("truncated");
  if (d[10] & 0x80) pos += 3 * (size_t{1} << ((d[10] & 7) + 1));
  auto skip_sub_blocks = [&] {
    while (true) {
      if (pos >= size) fail("truncated");
      const size_t len = d[pos++];
      if (len == 0) return;
      pos += len;
    }
  };
  bool image = false;
  while (true) {
    if (pos >= size) fail("truncated");
    const uint8_t block = d[pos++];
    if (block == 0x21) {  // extension: label, then sub-blocks
      ++pos;
      skip_sub_blocks();
    } else if (block == 0x2C) {  // image descriptor, optional local table, LZW data
      if (pos + 9 > size) fail("truncated");
      const uint8_t flags = d[pos + 8];
      pos += 9;
      if (flags & 0x80) pos += 3 * (size_t{1} << ((flags & 7) + 1));
      ++pos;  // LZW minimum code size
      skip_sub_blocks();
      image = true;
    } else if (block == 0x3B) {
      if (!image) fail("imageless");
      return;
    } else {
      fail("corrupt");
    }
  }
}

void check_tga_complete(const uint8_t* d, size_t size, const std::string& name) {
  const int64_t w = le16(d + 12), h = le16(d + 14), type = d[2];
  const int64_t pixel_bytes = (d[16] + 7) / 8;
  const int64_t cmap_bytes = d[1] ? int64_t{le16(d + 5)} * ((d[7] + 7) / 8) : 0;
  int64_t pos = 18 + int64_t{d[0]} + cmap_bytes;
  const int64_t n = static_cast<int64_t>(size);
  bool complete;
  if (type < 9) {
    complete = pos + w * h * pixel_bytes <= n;
  } else {
    int64_t pixels = 0;
    while (pixels < w * h && pos < n) {
      const int header = d[pos++];
      const int64_t count = (header & 0x7F) + 1;
      pos += (header & 0x80) ? pixel_bytes : count * pixel_bytes;
      pixels += count;
    }
    complete = pixels >= w * h && pos <= n;
  }
  YOLO_CHECK(complete, name << ": truncated TGA (" << size << " bytes); the image is skipped");
}

}  // namespace

ImageFormat sniff_image_format(const uint8_t* data, size_t size) {
  if (size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) return ImageFormat::jpeg;
  static const uint8_t kPng[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  if (size >= 8 && std::memcmp(data, kPng, 8) == 0) return ImageFormat::png;
  if (size >= 6 && (std::memcmp(data, "GIF87a", 6) == 0 || std::memcmp(data, "GIF89a", 6) == 0)) {
    return ImageFormat::gif;
  }
  if (size >= 2 && data[0] == 'B' && data[1] == 'M') return ImageFormat::bmp;
  if (tga_header_plausible(data, size)) return ImageFormat::tga;
  return ImageFormat::unknown;
}

namespace {

uint16_t be16(const uint8_t* p) {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}

// Where the first APP1 payload and the first SOS marker are, walking the marker segments from SOI
// the way libjpeg's jpeg_read_header does for well-formed files.
struct JpegLayout {
  const uint8_t* app1 = nullptr;  // payload after the length field
  size_t app1_size = 0;
  size_t sos = 0;  // offset of the first FF DA, 0 when not found
};

JpegLayout jpeg_layout(const uint8_t* data, size_t size) {
  JpegLayout out;
  size_t pos = 2;
  while (pos + 4 <= size) {
    if (data[pos] != 0xFF) break;
    const uint8_t m = data[pos + 1];
    if (m == 0xFF) {  // fill byte before a marker
      ++pos;
      continue;
    }
    if (m == 0xD8 || m == 0x01 || (m >= 0xD0 && m <= 0xD7)) {  // markers without a length
      pos += 2;
      continue;
    }
    if (m == 0xD9) break;
    if (m == 0xDA) {
      out.sos = pos;
      break;
    }
    const size_t len = be16(data + pos + 2);
    if (len < 2) break;
    if (m == 0xE1 && out.app1 == nullptr) {
      out.app1 = data + pos + 4;
      out.app1_size = std::min(len - 2, size - (pos + 4));
    }
    pos += 2 + len;
  }
  return out;
}

// True when an end-of-image marker follows the first scan. Entropy-coded data never contains
// FF D9 (a data FF is stuffed as FF 00), so its absence means the file was cut short.
bool jpeg_has_eoi(const uint8_t* data, size_t size, size_t sos) {
  for (size_t i = std::max<size_t>(sos, 2); i + 1 < size; ++i) {
    if (data[i] == 0xFF && data[i + 1] == 0xD9) return true;
  }
  return false;
}

// Bounds-checked reads of the TIFF block inside an EXIF APP1 segment.
struct TiffReader {
  const uint8_t* p;
  size_t n;
  bool little;
  bool u16(size_t off, uint16_t& v) const {
    if (off + 2 > n) return false;
    v = little ? static_cast<uint16_t>(p[off] | (p[off + 1] << 8))
               : static_cast<uint16_t>((p[off] << 8) | p[off + 1]);
    return true;
  }
  bool u32(size_t off, uint32_t& v) const {
    if (off + 4 > n) return false;
    v = little ? (uint32_t{p[off]} | (uint32_t{p[off + 1]} << 8) | (uint32_t{p[off + 2]} << 16) |
                  (uint32_t{p[off + 3]} << 24))
               : ((uint32_t{p[off]} << 24) | (uint32_t{p[off + 1]} << 16) |
                  (uint32_t{p[off + 2]} << 8) | uint32_t{p[off + 3]});
    return true;
  }
};

struct TjHandle {
  tjhandle h;
  explicit TjHandle(tjhandle handle) : h(handle) {}
  TjHandle(const TjHandle&) = delete;
  TjHandle& operator=(const TjHandle&) = delete;
  ~TjHandle() {
    if (h != nullptr) tjDestroy(h);
  }
};

void check_pixel_limit(int64_t w, int64_t h, const DecodeOptions& opt, const std::string& name) {
  YOLO_CHECK(w > 0 && h > 0, name << ": image has an empty size " << w << "x" << h);
  YOLO_CHECK(w * h <= opt.max_pixels,
             name << ": image is " << w << "x" << h << " = " << w * h
                  << " pixels, more than the limit of " << opt.max_pixels
                  << " (a decompression bomb or a huge scan; raise max_pixels if it is real)");
}

// Note [CMYK JPEG]
// libjpeg-turbo 2.1 cannot convert CMYK/YCCK to RGB, so such files are decoded to CMYK and
// converted with the formula cv2.imread uses (imgcodecs icvCvt_CMYK2BGR_8u_C4C3R):
// c' = k - ((255 - c) * k >> 8), likewise m', y'; then R = c', G = m', B = y'.
void cmyk_to_rgb(const std::vector<uint8_t>& cmyk, Image& out) {
  const size_t n = static_cast<size_t>(out.width) * out.height;
  for (size_t i = 0; i < n; ++i) {
    const int c = cmyk[4 * i], m = cmyk[4 * i + 1], y = cmyk[4 * i + 2], k = cmyk[4 * i + 3];
    out.pixels[3 * i + 0] = static_cast<uint8_t>(k - (((255 - c) * k) >> 8));
    out.pixels[3 * i + 1] = static_cast<uint8_t>(k - (((255 - m) * k) >> 8));
    out.pixels[3 * i + 2] = static_cast<uint8_t>(k - (((255 - y) * k) >> 8));
  }
}

// Note [DCT scaling]
// libjpeg can run the inverse DCT at 1/2, 1/4 or 1/8 size, skipping most of the decode work.
// We pick the smallest of those scales whose output still has a long side >= the target, so the
// caller only ever shrinks what we return (never enlarges it). TurboJPEG rounds scaled sizes up:
// ceil(w * num / denom). With no target, or a target above half the long side, the decode is at
// full size and matches cv2.imread pixel for pixel (same libjpeg-turbo, islow IDCT, fancy
// upsampling). A scaled decode differs from the reference's full decode + resize by an
// interpolation's worth (tested against a box-filtered full decode on a smooth image).
int choose_dct_denom(int w, int h, int target) {
  if (target <= 0) return 1;
  const int long_side = std::max(w, h);
  for (int denom : {8, 4, 2}) {
    const int scaled = (long_side + denom - 1) / denom;
    if (scaled >= target) return denom;
  }
  return 1;
}

DecodedImage decode_jpeg(const uint8_t* data, size_t size, const DecodeOptions& opt,
                         const std::string& name) {
  YOLO_CHECK(size <= static_cast<size_t>(ULONG_MAX), name << ": file too large");
  TjHandle tj(tjInitDecompress());
  YOLO_CHECK(tj.h != nullptr,
             name << ": cannot start the JPEG decoder: " << tjGetErrorStr2(nullptr));
  int w = 0, h = 0, subsamp = 0, colorspace = 0;
  if (tjDecompressHeader3(tj.h, data, static_cast<unsigned long>(size), &w, &h, &subsamp,
                          &colorspace) != 0) {
    YOLO_FAIL(name << ": corrupt JPEG header (" << tjGetErrorStr2(tj.h)
                   << "); the image is skipped");
  }
  check_pixel_limit(w, h, opt, name);
  const JpegLayout layout = jpeg_layout(data, size);

  DecodedImage out;
  out.format = ImageFormat::jpeg;
  out.scale_denom = choose_dct_denom(w, h, opt.target_long_side);
  const tjscalingfactor sf{1, out.scale_denom};
  const int sw = TJSCALED(w, sf), sh = TJSCALED(h, sf);
  const bool cmyk = colorspace == TJCS_CMYK || colorspace == TJCS_YCCK;
  Image im(sw, sh);
  std::vector<uint8_t> cmyk_buf;
  if (cmyk) cmyk_buf.resize(static_cast<size_t>(sw) * sh * 4);
  unsigned char* dst = cmyk ? cmyk_buf.data() : im.pixels.data();
  const int rc = tjDecompress2(tj.h, data, static_cast<unsigned long>(size), dst, sw, 0, sh,
                               cmyk ? TJPF_CMYK : TJPF_RGB, TJFLAG_LIMITSCANS);
  if (rc != 0) {
    const std::string msg = tjGetErrorStr2(tj.h);
    YOLO_CHECK(tjGetErrorCode(tj.h) == TJERR_WARNING,
               name << ": corrupt JPEG (" << msg << "); the image is skipped");
    // A warning: libjpeg finished the image, filling what it could not read. cv2.imread returns
    // such images too; we refuse only the ones that were cut short (unless asked not to).
    const bool truncated = !jpeg_has_eoi(data, size, layout.sos) ||
                           msg.find("Premature end of JPEG file") != std::string::npos;
    YOLO_CHECK(!truncated || opt.accept_truncated_jpeg,
               name << ": truncated JPEG (" << msg << ", " << size
                    << " bytes, no end-of-image marker); the image is skipped");
  }
  if (cmyk) cmyk_to_rgb(cmyk_buf, im);
  out.exif_orientation = layout.app1 ? jpeg_exif_orientation(data, size) : 1;
  out.image = apply_exif_orientation(im, out.exif_orientation);
  const bool swap = out.exif_orientation >= 5 && out.exif_orientation <= 8;
  out.source_width = swap ? h : w;
  out.source_height = swap ? w : h;
  return out;
}

DecodedImage decode_stb(const uint8_t* data, size_t size, ImageFormat format,
                        const DecodeOptions& opt, const std::string& name) {
  YOLO_CHECK(size <= static_cast<size_t>(INT_MAX),
             name << ": " << size << " bytes is too large for a " << image_format_name(format));
  if (format == ImageFormat::bmp) check_bmp_complete(data, size, name);
  if (format == ImageFormat::tga) check_tga_complete(data, size, name);
  if (format == ImageFormat::png) check_png_complete(data, size, name);
  if (format == ImageFormat::gif) check_gif_complete(data, size, name);
  const int len = static_cast<int>(size);
  int w = 0, h = 0, comp = 0;
  YOLO_CHECK(stbi_info_from_memory(data, len, &w, &h, &comp),
             name << ": corrupt " << image_format_name(format) << " header ("
                  << stbi_failure_reason() << "); the image is skipped");
  check_pixel_limit(w, h, opt, name);
  std::unique_ptr<stbi_uc, void (*)(void*)> px(stbi_load_from_memory(data, len, &w, &h, &comp, 3),
                                               stbi_image_free);
  YOLO_CHECK(px != nullptr, name << ": corrupt " << image_format_name(format) << " ("
                                 << stbi_failure_reason() << "); the image is skipped");
  Image im(w, h);
  std::memcpy(im.pixels.data(), px.get(), im.pixels.size());
  DecodedImage out;
  out.format = format;
  out.exif_orientation = exif_orientation(data, size);
  out.image = apply_exif_orientation(im, out.exif_orientation);
  out.source_width = out.image.width;
  out.source_height = out.image.height;
  return out;
}

void append_bytes(void* context, void* data, int size) {
  auto* v = static_cast<std::vector<uint8_t>*>(context);
  const auto* p = static_cast<const uint8_t*>(data);
  v->insert(v->end(), p, p + size);
}

void check_encodable(const Image& im) {
  YOLO_CHECK(im.width > 0 && im.height > 0 &&
                 im.pixels.size() == static_cast<size_t>(im.width) * im.height * 3,
             "encode: image " << im.width << "x" << im.height << " with " << im.pixels.size()
                              << " bytes is not a valid RGB image");
}

}  // namespace

// Note [EXIF orientation]
// The reference loads training images with cv2.imread(path) (IMREAD_COLOR), which since OpenCV
// 3.1 reads an EXIF orientation tag and rotates/flips the pixels (IMREAD_IGNORE_ORIENTATION is not
// set). OpenCV 4.6 (the one checked, python3-opencv on this machine: our decodes of JPEGs with
// each orientation 1..8 and of a PNG with an eXIf chunk equal cv2.imread's pixel for pixel) finds
// the tag in two places:
// - JPEG: the first APP1 segment before the first scan, whatever its signature (an XMP APP1 ahead
//   of the EXIF one hides the tag); 6 bytes ("Exif\0\0") are skipped to reach the TIFF header.
// - PNG: libpng's eXIf chunk, the TIFF header directly (no "Exif\0\0"): the first one before
//   IDAT, else the first one after it; libpng drops a chunk with a bad CRC or one that does not
//   start with "II"/"MM".
// The TIFF header: byte order "II" little-endian, anything else big-endian; 42 as the mark; IFD0
// walked entry by entry, the first 0x0112 entry's 16-bit value is the orientation; a read past the
// end stops the walk. Values other than 1..8 are ignored. BMP, TGA and GIF carry no EXIF.
// (The reference's label checker uses PIL's exif_size, which swaps width and height only for
// orientations 6 and 8, not 5 and 7; that quirk belongs to the checker, not to the pixels.)
namespace {

int tiff_orientation(const uint8_t* tiff, size_t n) {
  TiffReader r{tiff, n, n >= 2 && tiff[0] == 'I' && tiff[1] == 'I'};
  uint16_t mark = 0;
  uint32_t ifd = 0;
  if (!r.u16(2, mark) || mark != 0x2A || !r.u32(4, ifd)) return 1;
  uint16_t count = 0;
  if (!r.u16(ifd, count)) return 1;
  for (size_t e = 0; e < count; ++e) {
    const size_t off = static_cast<size_t>(ifd) + 2 + 12 * e;
    uint16_t tag = 0;
    if (!r.u16(off, tag)) return 1;
    if (tag == 0x0112) {
      uint16_t v = 0;
      if (!r.u16(off + 8, v)) return 1;
      return (v >= 1 && v <= 8) ? v : 1;
    }
  }
  return 1;
}

uint32_t crc32_bytes(const uint8_t* p, size_t n) {
  static const auto table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

uint32_t be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

void check_png_complete(const uint8_t* d, size_t size, const std::string& name) {
  size_t pos = 8;
  while (true) {
    YOLO_CHECK(
        pos + 12 <= size && be32(d + pos) <= size - pos - 12,
        name << ": truncated PNG (" << size << " bytes, no IEND chunk); the image is skipped");
    const size_t len = be32(d + pos);
    const uint8_t* type = d + pos + 4;
    if ((type[0] & 0x20) == 0) {
      YOLO_CHECK(crc32_bytes(type, len + 4) == be32(type + 4 + len),
                 name << ": corrupt PNG (CRC error in the " << std::string(type, type + 4)
                      << " chunk at byte " << pos << "); the image is skipped");
    }
    if (std::memcmp(type, "IEND", 4) == 0) return;
    pos += 12 + len;
  }
}

int png_exif_orientation(const uint8_t* data, size_t size) {
  const uint8_t* before = nullptr;
  const uint8_t* after = nullptr;
  size_t before_n = 0, after_n = 0;
  bool seen_idat = false;
  size_t pos = 8;
  while (pos + 12 <= size) {
    const size_t len = be32(data + pos);
    const uint8_t* type = data + pos + 4;
    if (len > size - pos - 12) break;
    if (std::memcmp(type, "IEND", 4) == 0) break;
    if (std::memcmp(type, "IDAT", 4) == 0) seen_idat = true;
    const uint8_t* body = data + pos + 8;
    if (std::memcmp(type, "eXIf", 4) == 0 && len >= 2 && body[0] == body[1] &&
        (body[0] == 'I' || body[0] == 'M') && crc32_bytes(type, len + 4) == be32(body + len)) {
      if (!seen_idat && before == nullptr) {
        before = body;
        before_n = len;
      } else if (seen_idat && after == nullptr) {
        after = body;
        after_n = len;
      }
    }
    pos += 12 + len;
  }
  if (before != nullptr) return tiff_orientation(before, before_n);
  if (after != nullptr) return tiff_orientation(after, after_n);
  return 1;
}

}  // namespace

int jpeg_exif_orientation(const uint8_t* data, size_t size) {
  if (sniff_image_format(data, size) != ImageFormat::jpeg) return 1;
  const JpegLayout layout = jpeg_layout(data, size);
  if (layout.app1 == nullptr || layout.app1_size <= 6) return 1;
  return tiff_orientation(layout.app1 + 6, layout.app1_size - 6);
}

int exif_orientation(const uint8_t* data, size_t size) {
  switch (sniff_image_format(data, size)) {
    case ImageFormat::jpeg:
      return jpeg_exif_orientation(data, size);
    case ImageFormat::png:
      return png_exif_orientation(data, size);
    default:
      return 1;
  }
}

// cv2's ApplyExifOrientation: 2 flip x; 3 flip both; 4 flip y; 5 transpose; 6 transpose + flip x;
// 7 transpose + flip both; 8 transpose + flip y. For output pixel (x, y) of an image that is
// W x H after the transform, the source pixel is computed directly.
Image apply_exif_orientation(const Image& im, int orientation) {
  if (orientation < 2 || orientation > 8) return im;
  const bool transpose = orientation >= 5;
  const int ow = transpose ? im.height : im.width;
  const int oh = transpose ? im.width : im.height;
  const bool flip_x = orientation == 2 || orientation == 3 || orientation == 6 || orientation == 7;
  const bool flip_y = orientation == 3 || orientation == 4 || orientation == 7 || orientation == 8;
  Image out(ow, oh);
  for (int y = 0; y < oh; ++y) {
    uint8_t* dst = out.row(y);
    const int ty = flip_y ? oh - 1 - y : y;
    for (int x = 0; x < ow; ++x) {
      const int tx = flip_x ? ow - 1 - x : x;
      const uint8_t* src = transpose ? im.at(ty, tx) : im.at(tx, ty);
      dst[3 * x] = src[0];
      dst[3 * x + 1] = src[1];
      dst[3 * x + 2] = src[2];
    }
  }
  return out;
}

DecodedImage decode_image_memory(const uint8_t* data, size_t size, const DecodeOptions& options,
                                 const std::string& name) {
  YOLO_CHECK(options.max_pixels > 0, name << ": max_pixels must be positive");
  YOLO_CHECK(data != nullptr && size > 0, name << ": empty image file; the image is skipped");
  const ImageFormat f = sniff_image_format(data, size);
  switch (f) {
    case ImageFormat::jpeg:
      return decode_jpeg(data, size, options, name);
    case ImageFormat::png:
    case ImageFormat::bmp:
    case ImageFormat::tga:
    case ImageFormat::gif:
      return decode_stb(data, size, f, options, name);
    default:
      break;
  }
  YOLO_FAIL(name << ": not a JPEG, PNG, BMP, TGA or GIF image (" << size
                 << " bytes, unrecognised signature); the image is skipped");
}

DecodedImage decode_image_file(const std::string& path, const DecodeOptions& options) {
  std::ifstream f(path, std::ios::binary);
  YOLO_CHECK(f.good(), path << ": cannot open the image file");
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  YOLO_CHECK(!f.bad(), path << ": read error");
  return decode_image_memory(bytes.data(), bytes.size(), options, path);
}

Image decode_image(const std::string& path, int target_long_side) {
  DecodeOptions opt;
  opt.target_long_side = target_long_side;
  return decode_image_file(path, opt).image;
}

std::vector<uint8_t> encode_jpeg(const Image& im, int quality) {
  check_encodable(im);
  YOLO_CHECK(quality >= 1 && quality <= 100,
             "encode_jpeg: quality " << quality << " not in 1..100");
  TjHandle tj(tjInitCompress());
  YOLO_CHECK(tj.h != nullptr, "encode_jpeg: cannot start the JPEG encoder");
  unsigned char* buf = nullptr;
  unsigned long len = 0;
  const int rc = tjCompress2(tj.h, im.pixels.data(), im.width, 0, im.height, TJPF_RGB, &buf, &len,
                             TJSAMP_420, quality, 0);
  std::unique_ptr<unsigned char, void (*)(unsigned char*)> owned(buf, tjFree);
  YOLO_CHECK(rc == 0, "encode_jpeg: " << tjGetErrorStr2(tj.h));
  return std::vector<uint8_t>(buf, buf + len);
}

std::vector<uint8_t> encode_png(const Image& im) {
  check_encodable(im);
  std::vector<uint8_t> out;
  YOLO_CHECK(
      stbi_write_png_to_func(append_bytes, &out, im.width, im.height, 3, im.pixels.data(),
                             im.width * 3) != 0,
      "encode_png: stb_image_write failed for a " << im.width << "x" << im.height << " image");
  return out;
}

void write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  YOLO_CHECK(f.good(), path << ": cannot open for writing");
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  f.close();
  YOLO_CHECK(!f.fail(), path << ": write failed (disk full?)");
}

void write_jpeg(const std::string& path, const Image& im, int quality) {
  write_file(path, encode_jpeg(im, quality));
}

void write_png(const std::string& path, const Image& im) {
  write_file(path, encode_png(im));
}

}  // namespace yolo
