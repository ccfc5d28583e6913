// Header probe for JPEG, PNG, BMP, GIF and TGA files (see image_probe.h): reads markers, chunks and
// fixed headers through bounded reads, never decodes pixels, and turns every inconsistency into a
// yolo::Error that names the file.
#include "yolo/data/image_probe.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <vector>

#include "core/error.h"

namespace yolo {

// Note [EXIF orientation and size]
// Orientations 5-8 store the picture transposed (5 transpose, 6 rotate 90, 7 transverse, 8 rotate
// 270), so the displayed width is the stored height. The decoder applies the orientation like
// cv2.imread does for the reference's training images, so the scan reports the displayed size for
// all four. The reference's exif_size swaps only for 6 and 8 (the common camera rotations); for the
// rare 5 and 7 its cached shape disagrees with the image it later loads, which we do not copy.
// Only JPEG orientation is read: PIL's exif_size ignores EXIF in other formats.

namespace {

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

// Bounded reads over one open file; every short read is reported as a truncated file.
class Reader {
 public:
  Reader(const std::string& path) : path_(path) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(path, ec);
    YOLO_CHECK(!ec, path << ": cannot read image file (" << ec.message() << ")");
    size_ = static_cast<uint64_t>(size);
    file_.reset(std::fopen(path.c_str(), "rb"));
    YOLO_CHECK(file_ != nullptr,
               path << ": cannot open image file (" << std::strerror(errno) << ")");
  }
  uint64_t size() const { return size_; }
  uint64_t pos() const { return pos_; }
  uint64_t left() const { return size_ - pos_; }
  void read(void* dst, uint64_t n, const char* what) {
    YOLO_CHECK(n <= left() && std::fread(dst, 1, n, file_.get()) == n,
               path_ << ": truncated file while reading " << what << " at byte " << pos_);
    pos_ += n;
  }
  void seek(uint64_t at, const char* what) {
    YOLO_CHECK(at <= size_ && std::fseek(file_.get(), static_cast<long>(at), SEEK_SET) == 0,
               path_ << ": truncated file while reading " << what << " at byte " << at);
    pos_ = at;
  }
  uint8_t u8(const char* what) {
    uint8_t b = 0;
    read(&b, 1, what);
    return b;
  }
  uint32_t be16(const char* what) {
    uint8_t b[2];
    read(b, 2, what);
    return (uint32_t{b[0]} << 8) | b[1];
  }
  uint32_t be32(const char* what) {
    uint8_t b[4];
    read(b, 4, what);
    return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  File file_;
  uint64_t size_ = 0;
  uint64_t pos_ = 0;
};

uint32_t le16(const uint8_t* p) {
  return uint32_t{p[0]} | (uint32_t{p[1]} << 8);
}
uint32_t le32(const uint8_t* p) {
  return le16(p) | (le16(p + 2) << 16);
}

// EXIF orientation from the body of an APP1 "Exif\0\0" segment (a TIFF structure); 1 when the tag
// is absent or the structure is malformed (PIL ignores unreadable EXIF for the size, too).
int exif_orientation(const std::vector<uint8_t>& app1) {
  if (app1.size() < 6 + 8 || std::memcmp(app1.data(), "Exif\0\0", 6) != 0) return 1;
  const uint8_t* t = app1.data() + 6;
  const uint64_t n = app1.size() - 6;
  const bool little = t[0] == 'I' && t[1] == 'I';
  if (!little && !(t[0] == 'M' && t[1] == 'M')) return 1;
  auto u16 = [&](uint64_t at) -> uint32_t {
    return little ? le16(t + at) : (uint32_t{t[at]} << 8) | t[at + 1];
  };
  auto u32 = [&](uint64_t at) -> uint32_t {
    return little ? le32(t + at) : (u16(at) << 16) | u16(at + 2);
  };
  if (u16(2) != 42) return 1;
  const uint64_t ifd = u32(4);
  if (ifd + 2 > n) return 1;
  const uint32_t count = u16(ifd);
  for (uint32_t i = 0; i < count; ++i) {
    const uint64_t e = ifd + 2 + uint64_t{i} * 12;
    if (e + 12 > n) return 1;
    if (u16(e) == 0x0112 && u16(e + 2) == 3) {
      const uint32_t v = u16(e + 8);
      return v >= 1 && v <= 8 ? static_cast<int>(v) : 1;
    }
  }
  return 1;
}

bool is_sof(uint8_t m) {
  return m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
}

void probe_jpeg(Reader& r, ImageProbe& out) {
  r.seek(2, "JPEG markers");
  bool have_sof = false;
  while (true) {
    uint8_t m = r.u8("JPEG marker");
    YOLO_CHECK(m == 0xFF, r.path() << ": corrupt JPEG (expected a marker at byte " << r.pos() - 1
                                   << ", found 0x" << std::hex << int{m} << ")");
    while (m == 0xFF) m = r.u8("JPEG marker");
    if ((m >= 0xD0 && m <= 0xD7) || m == 0x01 || m == 0xD8) continue;
    if (m == 0xD9 || m == 0xDA) break;  // end of image or start of scan: headers are over
    const uint32_t len = r.be16("JPEG segment length");
    YOLO_CHECK(len >= 2, r.path() << ": corrupt JPEG (segment length " << len << " at byte "
                                  << r.pos() - 2 << ")");
    const uint64_t body = r.pos();
    if (is_sof(m) && !have_sof) {
      YOLO_CHECK(len >= 8, r.path() << ": corrupt JPEG (frame header of " << len << " bytes)");
      r.u8("JPEG frame header");
      out.height = static_cast<int>(r.be16("JPEG frame height"));
      out.width = static_cast<int>(r.be16("JPEG frame width"));
      have_sof = true;
    } else if (m == 0xE1 && out.orientation == 1) {
      std::vector<uint8_t> app1(len - 2);
      r.read(app1.data(), app1.size(), "JPEG EXIF segment");
      out.orientation = exif_orientation(app1);
    }
    r.seek(body + len - 2, "JPEG segment");
  }
  YOLO_CHECK(have_sof, r.path() << ": corrupt JPEG (no frame header before the image data)");
  uint8_t tail[2] = {0, 0};
  r.seek(r.size() - 2, "JPEG end marker");
  r.read(tail, 2, "JPEG end marker");
  out.jpeg_eoi = tail[0] == 0xFF && tail[1] == 0xD9;
}

uint32_t crc32_update(uint32_t crc, const uint8_t* p, uint64_t n) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  for (uint64_t i = 0; i < n; ++i) crc = table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return crc;
}

void probe_png(Reader& r, ImageProbe& out) {
  r.seek(8, "PNG chunks");
  std::vector<uint8_t> buf(1 << 16);
  bool first = true;
  while (true) {
    const uint32_t len = r.be32("PNG chunk length");
    uint8_t type[4];
    r.read(type, 4, "PNG chunk type");
    YOLO_CHECK(len <= r.left(), r.path() << ": truncated PNG (chunk '"
                                         << std::string(reinterpret_cast<char*>(type), 4) << "' of "
                                         << len << " bytes runs past the end of the file)");
    uint32_t crc = crc32_update(0xFFFFFFFFu, type, 4);
    const bool ihdr = std::memcmp(type, "IHDR", 4) == 0;
    YOLO_CHECK(!first || ihdr, r.path() << ": corrupt PNG (the first chunk is not IHDR)");
    if (ihdr) {
      YOLO_CHECK(first && len == 13, r.path() << ": corrupt PNG (bad IHDR chunk)");
      uint8_t h[13];
      r.read(h, 13, "PNG IHDR");
      out.width = static_cast<int>(std::min<uint32_t>(
          (uint32_t{h[0]} << 24) | (uint32_t{h[1]} << 16) | (uint32_t{h[2]} << 8) | h[3],
          0x7FFFFFFF));
      out.height = static_cast<int>(std::min<uint32_t>(
          (uint32_t{h[4]} << 24) | (uint32_t{h[5]} << 16) | (uint32_t{h[6]} << 8) | h[7],
          0x7FFFFFFF));
      crc = crc32_update(crc, h, 13);
    } else {
      for (uint64_t done = 0; done < len;) {
        const uint64_t n = std::min<uint64_t>(buf.size(), len - done);
        r.read(buf.data(), n, "PNG chunk data");
        crc = crc32_update(crc, buf.data(), n);
        done += n;
      }
    }
    const uint32_t stored = r.be32("PNG chunk CRC");
    YOLO_CHECK(stored == (crc ^ 0xFFFFFFFFu),
               r.path() << ": corrupt PNG (CRC mismatch in chunk '"
                        << std::string(reinterpret_cast<char*>(type), 4) << "')");
    first = false;
    if (std::memcmp(type, "IEND", 4) == 0) break;
  }
}

void probe_bmp(Reader& r, ImageProbe& out) {
  uint8_t h[26];
  r.seek(0, "BMP header");
  r.read(h, 26, "BMP header");
  const uint32_t dib = le32(h + 14);
  if (dib == 12) {
    out.width = static_cast<int>(le16(h + 18));
    out.height = static_cast<int>(le16(h + 20));
  } else {
    YOLO_CHECK(dib == 40 || dib == 52 || dib == 56 || dib == 64 || dib == 108 || dib == 124,
               r.path() << ": corrupt BMP (unknown info header size " << dib << ")");
    const int32_t w = static_cast<int32_t>(le32(h + 18));
    int64_t hh = static_cast<int32_t>(le32(h + 22));
    out.width = w;
    out.height = static_cast<int>(hh < 0 ? -hh : hh);  // negative height: rows stored top-down
    YOLO_CHECK(w > 0 && hh != INT32_MIN,
               r.path() << ": corrupt BMP (width " << w << ", height " << hh << ")");
  }
  const uint32_t data_offset = le32(h + 10);
  YOLO_CHECK(data_offset <= r.size(), r.path() << ": truncated BMP (pixel data offset "
                                               << data_offset << " is past the end of the "
                                               << r.size() << "-byte file)");
}

void probe_gif(Reader& r, ImageProbe& out) {
  uint8_t h[10];
  r.seek(0, "GIF header");
  r.read(h, 10, "GIF header");
  out.width = static_cast<int>(le16(h + 6));
  out.height = static_cast<int>(le16(h + 8));
}

bool tga_extension(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext == ".tga";
}

void probe_tga(Reader& r, ImageProbe& out) {
  uint8_t h[18];
  r.seek(0, "TGA header");
  r.read(h, 18, "TGA header");
  const uint8_t cmap = h[1], type = h[2], bpp = h[16];
  YOLO_CHECK(cmap <= 1 &&
                 (type == 1 || type == 2 || type == 3 || type == 9 || type == 10 || type == 11) &&
                 (bpp == 8 || bpp == 15 || bpp == 16 || bpp == 24 || bpp == 32),
             r.path() << ": corrupt TGA header (colour map " << int{cmap} << ", type " << int{type}
                      << ", " << int{bpp} << " bits per pixel)");
  out.width = static_cast<int>(le16(h + 12));
  out.height = static_cast<int>(le16(h + 14));
}

}  // namespace

const char* image_format_name(ImageFormat f) {
  switch (f) {
    case ImageFormat::jpeg:
      return "JPEG";
    case ImageFormat::png:
      return "PNG";
    case ImageFormat::bmp:
      return "BMP";
    case ImageFormat::gif:
      return "GIF";
    case ImageFormat::tga:
      return "TGA";
    case ImageFormat::tiff:
      return "TIFF";
    case ImageFormat::webp:
      return "WEBP";
    case ImageFormat::unknown:
      break;
  }
  return "unknown";
}

ImageProbe probe_image(const std::string& path) {
  Reader r(path);
  uint8_t magic[12] = {};
  const uint64_t n = std::min<uint64_t>(12, r.size());
  r.read(magic, n, "the file signature");
  ImageProbe out;
  if (n >= 3 && magic[0] == 0xFF && magic[1] == 0xD8 && magic[2] == 0xFF) {
    out.format = ImageFormat::jpeg;
    probe_jpeg(r, out);
  } else if (n >= 8 && std::memcmp(magic, "\x89PNG\r\n\x1a\n", 8) == 0) {
    out.format = ImageFormat::png;
    probe_png(r, out);
  } else if (n >= 2 && magic[0] == 'B' && magic[1] == 'M') {
    out.format = ImageFormat::bmp;
    probe_bmp(r, out);
  } else if (n >= 6 &&
             (std::memcmp(magic, "GIF87a", 6) == 0 || std::memcmp(magic, "GIF89a", 6) == 0)) {
    out.format = ImageFormat::gif;
    probe_gif(r, out);
  } else if (n >= 4 &&
             (std::memcmp(magic, "II*\0", 4) == 0 || std::memcmp(magic, "MM\0*", 4) == 0)) {
    YOLO_FAIL(path << ": TIFF images are not supported (yolocore reads JPEG, PNG, BMP, GIF and "
                      "TGA); convert it, e.g. to PNG");
  } else if (n >= 12 && std::memcmp(magic, "RIFF", 4) == 0 &&
             std::memcmp(magic + 8, "WEBP", 4) == 0) {
    YOLO_FAIL(path << ": WebP images are not supported (yolocore reads JPEG, PNG, BMP, GIF and "
                      "TGA); convert it, e.g. to PNG");
  } else if (tga_extension(path)) {
    out.format = ImageFormat::tga;
    probe_tga(r, out);
  } else {
    YOLO_FAIL(path << ": cannot identify image file (not JPEG, PNG, BMP, GIF or TGA; " << r.size()
                   << " bytes)");
  }
  YOLO_CHECK(out.width > 0 && out.height > 0, path << ": corrupt " << image_format_name(out.format)
                                                   << " (size " << out.width << "x" << out.height
                                                   << ")");
  return out;
}

ImageSize probe_image_size(const std::string& path) {
  const ImageProbe p = probe_image(path);
  return {p.oriented_width(), p.oriented_height()};
}

}  // namespace yolo
