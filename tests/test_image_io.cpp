// Tests for yolo/data/image_io: decoding JPEG (TurboJPEG) and PNG/BMP/TGA/GIF (stb) files that the
// test writes itself, EXIF orientation 1..8, DCT-scaled decodes, the pixel limit, grey/alpha/16-bit
// conversion, and truncated or garbage input (always a yolo::Error, never a crash; run under ASan).
//   yolo_tests "[image_io]"
#include <stb_image_write.h>
#include <turbojpeg.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/philox.h"
#include "tests/harness.h"
#include "yolo/data/image_io.h"

using namespace yolo;

namespace {

// JPEG of a smooth image at quality 95: per-pixel error bound and mean error bound (codec error).
constexpr double kJpegMaxErr = 24.0;
constexpr double kJpegMeanErr = 2.5;
// DCT-scaled decode vs the box-filtered full decode of the same smooth image.
constexpr double kDctScaleMaxErr = 12.0;
constexpr double kDctScaleMeanErr = 1.5;

using Bytes = std::vector<uint8_t>;

// Smooth colourful RGB image, plus a little deterministic texture.
Image smooth_image(int w, int h, uint64_t seed) {
  Image im(w, h);
  const Philox4 r =
      philox4x32_10(Philox4{{1, 2, 3, 4}}, PhiloxKey{{static_cast<uint32_t>(seed), 7}});
  const double p0 = (r.v[0] % 628) / 100.0, p1 = (r.v[1] % 628) / 100.0;
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      uint8_t* p = im.at(x, y);
      p[0] = static_cast<uint8_t>(128 + 100 * std::sin(x * 0.05 + p0));
      p[1] = static_cast<uint8_t>(128 + 100 * std::cos(y * 0.04 + p1));
      p[2] = static_cast<uint8_t>(128 + 90 * std::sin((x + y) * 0.03));
    }
  }
  return im;
}

// Random RGB image (for lossless formats).
Image random_image(int w, int h, uint64_t seed) {
  Image im(w, h);
  for (size_t i = 0; i < im.pixels.size(); i += 4) {
    const Philox4 r = philox_block(seed, 0, i / 4);
    for (size_t k = 0; k < 4 && i + k < im.pixels.size(); ++k) {
      im.pixels[i + k] = static_cast<uint8_t>(r.v[k] >> 24);
    }
  }
  return im;
}

void append(void* ctx, void* data, int size) {
  auto* v = static_cast<Bytes*>(ctx);
  v->insert(v->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
}

Bytes stb_encode(const char* format, int w, int h, int comp, const uint8_t* px) {
  Bytes out;
  int ok = 0;
  if (std::strcmp(format, "png") == 0)
    ok = stbi_write_png_to_func(append, &out, w, h, comp, px, w * comp);
  if (std::strcmp(format, "bmp") == 0) ok = stbi_write_bmp_to_func(append, &out, w, h, comp, px);
  if (std::strcmp(format, "tga") == 0) ok = stbi_write_tga_to_func(append, &out, w, h, comp, px);
  REQUIRE(ok != 0);
  return out;
}

DecodedImage decode(const Bytes& b, DecodeOptions opt = {}) {
  return decode_image_memory(b.data(), b.size(), opt, "test-image");
}

void require_equal_images(const Image& got, const Image& want, const std::string& what) {
  INFO(what);
  REQUIRE(got.width == want.width);
  REQUIRE(got.height == want.height);
  size_t bad = 0;
  for (size_t i = 0; i < got.pixels.size(); ++i) bad += got.pixels[i] != want.pixels[i];
  REQUIRE(bad == 0);
}

struct ErrStats {
  double max = 0, mean = 0;
};
ErrStats image_error(const Image& a, const Image& b) {
  REQUIRE(a.width == b.width);
  REQUIRE(a.height == b.height);
  ErrStats s;
  for (size_t i = 0; i < a.pixels.size(); ++i) {
    const double d = std::abs(static_cast<double>(a.pixels[i]) - b.pixels[i]);
    s.max = std::max(s.max, d);
    s.mean += d;
  }
  s.mean /= static_cast<double>(a.pixels.size());
  return s;
}

// JPEG through TurboJPEG directly, any pixel format (grey, CMYK tests).
Bytes tj_encode(const uint8_t* px, int w, int h, int pixel_format, int subsamp, int quality) {
  tjhandle tj = tjInitCompress();
  REQUIRE(tj != nullptr);
  unsigned char* buf = nullptr;
  unsigned long len = 0;
  const int rc = tjCompress2(tj, px, w, 0, h, pixel_format, &buf, &len, subsamp, quality, 0);
  Bytes out(buf, buf + (rc == 0 ? len : 0));
  tjFree(buf);
  tjDestroy(tj);
  REQUIRE(rc == 0);
  return out;
}

// APP1 "Exif" segment holding only an orientation tag, in either byte order.
Bytes exif_segment(int orientation, bool little_endian) {
  auto u16 = [&](Bytes& b, int v) {
    if (little_endian) {
      b.push_back(v & 0xFF), b.push_back((v >> 8) & 0xFF);
    } else {
      b.push_back((v >> 8) & 0xFF), b.push_back(v & 0xFF);
    }
  };
  auto u32 = [&](Bytes& b, uint32_t v) {
    if (little_endian) {
      u16(b, v & 0xFFFF), u16(b, v >> 16);
    } else {
      u16(b, v >> 16), u16(b, v & 0xFFFF);
    }
  };
  Bytes tiff;
  tiff.push_back(little_endian ? 'I' : 'M'), tiff.push_back(little_endian ? 'I' : 'M');
  u16(tiff, 42);
  u32(tiff, 8);
  u16(tiff, 1);       // one IFD0 entry
  u16(tiff, 0x0112);  // orientation
  u16(tiff, 3);       // SHORT
  u32(tiff, 1);       // count
  u16(tiff, orientation);
  u16(tiff, 0);
  u32(tiff, 0);  // no next IFD
  Bytes seg = {0xFF, 0xE1};
  const size_t len = 2 + 6 + tiff.size();
  seg.push_back(static_cast<uint8_t>(len >> 8)), seg.push_back(static_cast<uint8_t>(len));
  for (char c : std::string("Exif\0\0", 6)) seg.push_back(static_cast<uint8_t>(c));
  seg.insert(seg.end(), tiff.begin(), tiff.end());
  return seg;
}

Bytes insert_after_soi(const Bytes& jpeg, const Bytes& segment) {
  Bytes out(jpeg.size() + segment.size());
  std::copy(jpeg.begin(), jpeg.begin() + 2, out.begin());
  std::copy(segment.begin(), segment.end(), out.begin() + 2);
  std::copy(jpeg.begin() + 2, jpeg.end(), out.begin() + 2 + static_cast<long>(segment.size()));
  return out;
}

// The display transforms named by the EXIF specification, written independently of the decoder.
Image mirror_h(const Image& in) {
  Image out(in.width, in.height);
  for (int y = 0; y < in.height; ++y)
    for (int x = 0; x < in.width; ++x) std::memcpy(out.at(x, y), in.at(in.width - 1 - x, y), 3);
  return out;
}
Image mirror_v(const Image& in) {
  Image out(in.width, in.height);
  for (int y = 0; y < in.height; ++y)
    for (int x = 0; x < in.width; ++x) std::memcpy(out.at(x, y), in.at(x, in.height - 1 - y), 3);
  return out;
}
Image rotate_cw(const Image& in) {  // 90 degrees clockwise
  Image out(in.height, in.width);
  for (int y = 0; y < out.height; ++y)
    for (int x = 0; x < out.width; ++x) std::memcpy(out.at(x, y), in.at(y, in.height - 1 - x), 3);
  return out;
}
Image rotate_ccw(const Image& in) {  // 90 degrees counter-clockwise (270 clockwise)
  Image out(in.height, in.width);
  for (int y = 0; y < out.height; ++y)
    for (int x = 0; x < out.width; ++x) std::memcpy(out.at(x, y), in.at(in.width - 1 - y, x), 3);
  return out;
}
Image exif_display(const Image& stored, int orientation) {
  switch (orientation) {
    case 2:
      return mirror_h(stored);
    case 3:
      return mirror_v(mirror_h(stored));  // rotate 180
    case 4:
      return mirror_v(stored);
    case 5:
      return rotate_ccw(mirror_h(stored));  // mirror horizontal, rotate 270 CW
    case 6:
      return rotate_cw(stored);
    case 7:
      return rotate_cw(mirror_h(stored));  // mirror horizontal, rotate 90 CW
    case 8:
      return rotate_ccw(stored);
    default:
      return stored;
  }
}

uint32_t crc32(const uint8_t* p, size_t n) {
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
  }
  return c ^ 0xFFFFFFFFu;
}

void put_be32(Bytes& b, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<uint8_t>(v >> s));
}

void set_be32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24), p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8), p[3] = static_cast<uint8_t>(v);
}

Bytes png_chunk(const char* type, const Bytes& body) {
  Bytes c(12 + body.size());
  set_be32(c.data(), static_cast<uint32_t>(body.size()));
  std::memcpy(c.data() + 4, type, 4);
  std::copy(body.begin(), body.end(), c.begin() + 8);
  set_be32(c.data() + 8 + body.size(), crc32(c.data() + 4, body.size() + 4));
  return c;
}

// A 16-bit RGB PNG built by hand (zlib stream of stored deflate blocks).
Bytes png16(int w, int h, const std::vector<uint16_t>& rgb) {
  Bytes raw;
  for (int y = 0; y < h; ++y) {
    raw.push_back(0);  // filter: none
    for (int i = 0; i < w * 3; ++i) {
      const uint16_t v = rgb[static_cast<size_t>(y) * w * 3 + i];
      raw.push_back(static_cast<uint8_t>(v >> 8)), raw.push_back(static_cast<uint8_t>(v));
    }
  }
  Bytes z = {0x78, 0x01, 0x01};  // zlib header, final stored block
  z.push_back(static_cast<uint8_t>(raw.size())), z.push_back(static_cast<uint8_t>(raw.size() >> 8));
  z.push_back(static_cast<uint8_t>(~raw.size())),
      z.push_back(static_cast<uint8_t>(~raw.size() >> 8));
  z.insert(z.end(), raw.begin(), raw.end());
  uint32_t a = 1, b = 0;
  for (uint8_t v : raw) a = (a + v) % 65521, b = (b + a) % 65521;
  put_be32(z, (b << 16) | a);
  Bytes png = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  Bytes ihdr;
  put_be32(ihdr, w), put_be32(ihdr, h);
  ihdr.insert(ihdr.end(), {16, 2, 0, 0, 0});
  for (const Bytes& c : {png_chunk("IHDR", ihdr), png_chunk("IDAT", z), png_chunk("IEND", {})}) {
    png.insert(png.end(), c.begin(), c.end());
  }
  return png;
}

// A GIF89a with a 4-colour global table and LZW data written as literal codes, with a clear code
// before the code table can grow (so every code stays 3 bits wide).
Bytes tiny_gif(int w, int h, const std::vector<int>& indices, const uint8_t palette[4][3]) {
  Bytes g = {'G', 'I', 'F', '8', '9', 'a'};
  g.push_back(static_cast<uint8_t>(w)), g.push_back(static_cast<uint8_t>(w >> 8));
  g.push_back(static_cast<uint8_t>(h)), g.push_back(static_cast<uint8_t>(h >> 8));
  g.insert(g.end(), {0x81, 0, 0});  // global table of 2^(1+1) entries
  for (int i = 0; i < 4; ++i) g.insert(g.end(), palette[i], palette[i] + 3);
  g.push_back(0x2C);
  g.insert(g.end(), {0, 0, 0, 0});
  g.push_back(static_cast<uint8_t>(w)), g.push_back(static_cast<uint8_t>(w >> 8));
  g.push_back(static_cast<uint8_t>(h)), g.push_back(static_cast<uint8_t>(h >> 8));
  g.push_back(0);
  g.push_back(2);  // LZW minimum code size
  std::vector<int> codes;
  for (size_t i = 0; i < indices.size(); ++i) {
    if (i % 2 == 0) codes.push_back(4);  // clear
    codes.push_back(indices[i]);
  }
  codes.push_back(5);  // end of information
  Bytes data;
  uint32_t acc = 0;
  int bits = 0;
  for (int c : codes) {
    acc |= static_cast<uint32_t>(c) << bits;
    bits += 3;
    while (bits >= 8) data.push_back(static_cast<uint8_t>(acc)), acc >>= 8, bits -= 8;
  }
  if (bits > 0) data.push_back(static_cast<uint8_t>(acc));
  REQUIRE(data.size() < 255);
  g.push_back(static_cast<uint8_t>(data.size()));
  g.insert(g.end(), data.begin(), data.end());
  g.push_back(0);
  g.push_back(0x3B);
  return g;
}

void require_rejected(const Bytes& b, const std::string& what, DecodeOptions opt = {}) {
  INFO(what << " (" << b.size() << " bytes)");
  REQUIRE_THROWS_AS(decode_image_memory(b.data(), b.size(), opt, "bad-image"), Error);
  REQUIRE_THROWS_WITH(decode_image_memory(b.data(), b.size(), opt, "bad-image"),
                      Catch::Contains("bad-image"));
}

}  // namespace

TEST_CASE("image_io decodes JPEG within codec error", "[image_io]") {
  for (auto [w, h] : {std::pair{64, 48}, {97, 131}, {1, 1}, {17, 9}}) {
    const Image src = smooth_image(w, h, test::seed(1));
    const Bytes jpg = encode_jpeg(src, 95);
    REQUIRE(sniff_image_format(jpg.data(), jpg.size()) == ImageFormat::jpeg);
    const DecodedImage d = decode(jpg);
    CHECK(d.format == ImageFormat::jpeg);
    CHECK(d.scale_denom == 1);
    CHECK(d.exif_orientation == 1);
    CHECK(d.source_width == w);
    CHECK(d.source_height == h);
    const ErrStats e = image_error(d.image, src);
    INFO(w << "x" << h << " max " << e.max << " mean " << e.mean);
    CHECK(e.max <= kJpegMaxErr);
    CHECK(e.mean <= kJpegMeanErr);
  }
}

TEST_CASE("image_io encode_jpeg is deterministic and file round trip works", "[image_io]") {
  const Image src = smooth_image(40, 30, test::seed(2));
  REQUIRE(encode_jpeg(src, 90) == encode_jpeg(src, 90));
  REQUIRE(encode_jpeg(src, 90) != encode_jpeg(src, 50));
  const std::string path = "/tmp/yolo_image_io_roundtrip_" + std::to_string(test::seed(3)) + ".png";
  write_png(path, src);
  require_equal_images(decode_image(path), src, "png file round trip");
  std::remove(path.c_str());
  REQUIRE_THROWS_WITH(decode_image(path), Catch::Contains(path));
  REQUIRE_THROWS_AS(encode_jpeg(Image(), 90), Error);
  REQUIRE_THROWS_AS(encode_jpeg(src, 0), Error);
}

TEST_CASE("image_io decodes PNG BMP TGA exactly, grey and alpha become RGB", "[image_io]") {
  const int w = 23, h = 11;
  const Image rgb = random_image(w, h, test::seed(4));
  for (const char* fmt : {"png", "bmp", "tga"}) {
    INFO(fmt);
    const Bytes b = stb_encode(fmt, w, h, 3, rgb.pixels.data());
    const DecodedImage d = decode(b);
    const ImageFormat want = std::string(fmt) == "png"   ? ImageFormat::png
                             : std::string(fmt) == "bmp" ? ImageFormat::bmp
                                                         : ImageFormat::tga;
    CHECK(d.format == want);
    require_equal_images(d.image, rgb, std::string(fmt) + " rgb");

    // Grey (1 channel) -> replicated; RGBA -> alpha dropped (cv2.imread IMREAD_COLOR).
    std::vector<uint8_t> grey(static_cast<size_t>(w) * h), rgba(static_cast<size_t>(w) * h * 4);
    Image want_grey(w, h);
    for (size_t i = 0; i < grey.size(); ++i) {
      grey[i] = rgb.pixels[3 * i];
      for (int k = 0; k < 3; ++k) want_grey.pixels[3 * i + k] = grey[i];
      for (int k = 0; k < 3; ++k) rgba[4 * i + k] = rgb.pixels[3 * i + k];
      rgba[4 * i + 3] = static_cast<uint8_t>(i * 37);
    }
    if (std::string(fmt) != "bmp") {  // stb writes BMP as 24-bit whatever the input
      require_equal_images(decode(stb_encode(fmt, w, h, 1, grey.data())).image, want_grey,
                           std::string(fmt) + " grey");
    }
    require_equal_images(decode(stb_encode(fmt, w, h, 4, rgba.data())).image, rgb,
                         std::string(fmt) + " rgba");
  }
}

TEST_CASE("image_io 16-bit PNG keeps the high byte", "[image_io]") {
  const int w = 5, h = 3;
  std::vector<uint16_t> v(static_cast<size_t>(w) * h * 3);
  Image want(w, h);
  for (size_t i = 0; i < v.size(); ++i) {
    v[i] = static_cast<uint16_t>(i * 4099 + 0xFF);
    want.pixels[i] = static_cast<uint8_t>(v[i] >> 8);
  }
  require_equal_images(decode(png16(w, h, v)).image, want, "16-bit png");
}

TEST_CASE("image_io decodes the first frame of a GIF", "[image_io]") {
  const uint8_t palette[4][3] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {10, 20, 30}};
  const int w = 4, h = 3;
  std::vector<int> idx(static_cast<size_t>(w) * h);
  Image want(w, h);
  for (size_t i = 0; i < idx.size(); ++i) {
    idx[i] = static_cast<int>((i * 7 + i / 4) % 4);
    std::memcpy(want.pixels.data() + 3 * i, palette[idx[i]], 3);
  }
  const Bytes gif = tiny_gif(w, h, idx, palette);
  REQUIRE(sniff_image_format(gif.data(), gif.size()) == ImageFormat::gif);
  require_equal_images(decode(gif).image, want, "gif");
}

TEST_CASE("image_io grey and CMYK JPEGs become RGB", "[image_io]") {
  const int w = 32, h = 24;
  const Image src = smooth_image(w, h, test::seed(5));
  std::vector<uint8_t> grey(static_cast<size_t>(w) * h);
  for (size_t i = 0; i < grey.size(); ++i) grey[i] = src.pixels[3 * i + 1];
  const DecodedImage g = decode(tj_encode(grey.data(), w, h, TJPF_GRAY, TJSAMP_GRAY, 95));
  for (size_t i = 0; i < grey.size(); ++i) {
    REQUIRE(g.image.pixels[3 * i] == g.image.pixels[3 * i + 1]);
    REQUIRE(g.image.pixels[3 * i] == g.image.pixels[3 * i + 2]);
    REQUIRE(std::abs(g.image.pixels[3 * i] - grey[i]) <= kJpegMaxErr);
  }
  // CMYK with k = 255 - max(r, g, b) style values: cv2's formula (Note [CMYK JPEG]).
  std::vector<uint8_t> cmyk(static_cast<size_t>(w) * h * 4);
  for (size_t i = 0; i < cmyk.size(); ++i)
    cmyk[i] = static_cast<uint8_t>(src.pixels[(i / 4) * 3 + (i % 4) % 3]);
  const Bytes cj = tj_encode(cmyk.data(), w, h, TJPF_CMYK, TJSAMP_444, 100);
  const DecodedImage c = decode(cj);
  REQUIRE(c.image.width == w);
  // Decode the CMYK values themselves and apply the formula here.
  tjhandle tj = tjInitDecompress();
  std::vector<uint8_t> back(cmyk.size());
  REQUIRE(tjDecompress2(tj, cj.data(), cj.size(), back.data(), w, 0, h, TJPF_CMYK, 0) == 0);
  tjDestroy(tj);
  for (size_t i = 0; i < static_cast<size_t>(w) * h; ++i) {
    const int k = back[4 * i + 3];
    for (int ch = 0; ch < 3; ++ch) {
      const int want = k - (((255 - back[4 * i + ch]) * k) >> 8);
      REQUIRE(c.image.pixels[3 * i + ch] == want);
    }
  }
}

TEST_CASE("image_io applies EXIF orientation 1-8 like cv2.imread", "[image_io]") {
  const int w = 48, h = 32;  // not square, so transposes show
  Image src = smooth_image(w, h, test::seed(6));
  for (int y = 0; y < 8; ++y)  // a dark corner block makes flips visible even to the eye
    for (int x = 0; x < 8; ++x) std::memset(src.at(x, y), 0, 3);
  const Bytes plain = encode_jpeg(src, 95);
  const Image stored = decode(plain).image;
  for (int o = 1; o <= 8; ++o) {
    for (bool little : {true, false}) {
      INFO("orientation " << o << (little ? " II" : " MM"));
      const Bytes jpg = insert_after_soi(plain, exif_segment(o, little));
      REQUIRE(exif_orientation(jpg.data(), jpg.size()) == o);
      const DecodedImage d = decode(jpg);
      CHECK(d.exif_orientation == o);
      const Image want = exif_display(stored, o);
      require_equal_images(d.image, want, "oriented");
      CHECK(d.source_width == want.width);
      CHECK(d.source_height == want.height);
    }
  }
  // An APP1 that is not EXIF ahead of the EXIF one hides it (OpenCV reads the first APP1 only).
  Bytes xmp = {0xFF, 0xE1, 0x00, 0x0A, 'h', 't', 't', 'p', ':', '/', '/', 'n'};
  const Bytes hidden = insert_after_soi(insert_after_soi(plain, exif_segment(6, true)), xmp);
  CHECK(decode(hidden).exif_orientation == 1);
  // Orientation values outside 1..8 and a cut-off IFD are ignored.
  CHECK(decode(insert_after_soi(plain, exif_segment(9, true))).image.width == w);
  Bytes cut = exif_segment(6, true);
  cut.resize(cut.size() - 8);
  cut[3] = static_cast<uint8_t>(cut.size() - 2);
  CHECK(decode(insert_after_soi(plain, cut)).exif_orientation == 1);
}

TEST_CASE("image_io applies the EXIF orientation of a PNG eXIf chunk", "[image_io]") {
  const Image src = random_image(9, 5, test::seed(7));
  const Bytes png = encode_png(src);
  const Bytes seg = exif_segment(6, false);
  const Bytes tiff(seg.begin() + 10, seg.end());  // eXIf holds the TIFF block without "Exif\0\0"
  const Bytes chunk = png_chunk("eXIf", tiff);
  Bytes with(png.begin(), png.begin() + 33);  // signature + IHDR
  with.insert(with.end(), chunk.begin(), chunk.end());
  with.insert(with.end(), png.begin() + 33, png.end());
  require_equal_images(decode(with).image, exif_display(src, 6), "png exif 6");
  with[33 + 8 + tiff.size() + 3] ^= 1;  // bad CRC: libpng drops the chunk
  require_equal_images(decode(with).image, src, "png exif with bad crc");
}

TEST_CASE("image_io DCT scaling never goes below the target and matches a box downsample",
          "[image_io]") {
  const int w = 640, h = 480;
  const Image src = smooth_image(w, h, test::seed(8));
  const Bytes jpg = encode_jpeg(src, 95);
  const Image full = decode(jpg).image;
  struct Case {
    int target, denom;
  };
  for (const Case c :
       {Case{0, 1}, Case{641, 1}, Case{400, 1}, Case{321, 1}, Case{320, 2}, Case{300, 2},
        Case{161, 2}, Case{160, 4}, Case{81, 4}, Case{80, 8}, Case{8, 8}}) {
    INFO("target " << c.target);
    DecodeOptions opt;
    opt.target_long_side = c.target;
    const DecodedImage d = decode(jpg, opt);
    REQUIRE(d.scale_denom == c.denom);
    REQUIRE(d.image.width == w / c.denom);
    REQUIRE(d.image.height == h / c.denom);
    REQUIRE(std::max(d.image.width, d.image.height) >= std::min(c.target, w));
    CHECK(d.source_width == w);
    CHECK(d.source_height == h);
    if (c.denom == 1) continue;
    Image box(w / c.denom, h / c.denom);
    for (int y = 0; y < box.height; ++y) {
      for (int x = 0; x < box.width; ++x) {
        for (int k = 0; k < 3; ++k) {
          int sum = 0;
          for (int dy = 0; dy < c.denom; ++dy)
            for (int dx = 0; dx < c.denom; ++dx)
              sum += full.at(x * c.denom + dx, y * c.denom + dy)[k];
          box.at(x, y)[k] =
              static_cast<uint8_t>((sum + c.denom * c.denom / 2) / (c.denom * c.denom));
        }
      }
    }
    const ErrStats e = image_error(d.image, box);
    INFO("max " << e.max << " mean " << e.mean);
    CHECK(e.max <= kDctScaleMaxErr);
    CHECK(e.mean <= kDctScaleMeanErr);
  }
  // Odd sizes round up (TurboJPEG's scaled size is ceil(w / denom)), with EXIF applied after.
  const Bytes odd = insert_after_soi(encode_jpeg(smooth_image(101, 37, test::seed(9)), 90),
                                     exif_segment(8, true));
  DecodeOptions opt;
  opt.target_long_side = 27;  // 101 / 4 -> 26 is too small, 101 / 2 -> 51
  const DecodedImage d = decode(odd, opt);
  CHECK(d.scale_denom == 2);
  CHECK(d.image.width == 19);
  CHECK(d.image.height == 51);
  CHECK(d.source_width == 37);
  opt.target_long_side = 26;
  const DecodedImage d4 = decode(odd, opt);
  CHECK(d4.scale_denom == 4);
  CHECK(d4.image.width == 10);
  CHECK(d4.image.height == 26);
  CHECK(d.source_height == 101);
}

TEST_CASE("image_io pixel limit refuses large images before decoding", "[image_io]") {
  const Image src = smooth_image(64, 64, test::seed(10));
  DecodeOptions opt;
  for (const Bytes& b : {encode_jpeg(src, 90), encode_png(src)}) {
    opt.max_pixels = 64 * 64;
    CHECK(decode(b, opt).image.width == 64);
    opt.max_pixels = 64 * 64 - 1;
    REQUIRE_THROWS_WITH(decode(b, opt), Catch::Contains("limit") && Catch::Contains("test-image"));
  }
  // Headers claiming 60000 x 60000 (3.6e9 pixels) are refused at the default limit, with no
  // attempt to allocate.
  Bytes jpg = encode_jpeg(src, 90);
  for (size_t i = 2; i + 9 < jpg.size(); ++i) {
    if (jpg[i] == 0xFF && jpg[i + 1] == 0xC0) {  // SOF0: FF C0 len(2) precision(1) h(2) w(2)
      jpg[i + 5] = 0xEA, jpg[i + 6] = 0x60, jpg[i + 7] = 0xEA, jpg[i + 8] = 0x60;
      break;
    }
  }
  REQUIRE_THROWS_WITH(decode(jpg), Catch::Contains("limit"));
  Bytes png = encode_png(src);
  png[16] = 0, png[17] = 0, png[18] = 0xEA, png[19] = 0x60;  // IHDR width
  png[20] = 0, png[21] = 0, png[22] = 0xEA, png[23] = 0x60;  // IHDR height
  REQUIRE_THROWS_AS(decode(png), Error);
}

TEST_CASE("image_io truncated files are an error at every length", "[image_io]") {
  const Image src = smooth_image(40, 24, test::seed(11));
  std::vector<uint8_t> rgba(static_cast<size_t>(40) * 24 * 4, 200);
  const uint8_t palette[4][3] = {{1, 2, 3}, {4, 5, 6}, {7, 8, 9}, {10, 11, 12}};
  struct Named {
    const char* name;
    Bytes bytes;
  };
  const Bytes progressive = [&] {
    tjhandle tj = tjInitCompress();
    unsigned char* buf = nullptr;
    unsigned long len = 0;
    REQUIRE(tjCompress2(tj, src.pixels.data(), 40, 0, 24, TJPF_RGB, &buf, &len, TJSAMP_444, 80,
                        TJFLAG_PROGRESSIVE) == 0);
    Bytes b(buf, buf + len);
    tjFree(buf);
    tjDestroy(tj);
    return b;
  }();
  const std::vector<Named> files = {
      {"jpeg", encode_jpeg(src, 90)},
      {"progressive jpeg", progressive},
      {"jpeg with exif", insert_after_soi(encode_jpeg(src, 90), exif_segment(6, true))},
      {"png", encode_png(src)},
      {"png rgba", stb_encode("png", 40, 24, 4, rgba.data())},
      {"bmp", stb_encode("bmp", 40, 24, 3, src.pixels.data())},
      {"tga", stb_encode("tga", 40, 24, 3, src.pixels.data())},
      {"gif", tiny_gif(4, 3, {0, 1, 2, 3, 3, 2, 1, 0, 0, 0, 1, 1}, palette)},
  };
  for (const Named& f : files) {
    REQUIRE_NOTHROW(decode(f.bytes));
    for (size_t len = 0; len < f.bytes.size(); ++len) {
      Bytes cut(f.bytes.begin(), f.bytes.begin() + len);
      require_rejected(cut, std::string(f.name) + " truncated");
    }
  }
  // Opting in, a JPEG cut in its scan decodes the way cv2.imread does (the rest grey).
  const Bytes jpg = encode_jpeg(random_image(200, 120, test::seed(13)), 90);  // mostly scan data
  DecodeOptions lenient;
  lenient.accept_truncated_jpeg = true;
  const Bytes cut(jpg.begin(), jpg.begin() + static_cast<long>(jpg.size() * 3 / 4));
  const DecodedImage d = decode(cut, lenient);
  CHECK(d.image.width == 200);
  CHECK(d.image.height == 120);
}

TEST_CASE("image_io garbage and corrupted files are an error, never a crash", "[image_io]") {
  const uint64_t seed = test::seed(12);
  const Bytes jpg = encode_jpeg(smooth_image(40, 24, seed), 90);
  const Bytes png = encode_png(random_image(13, 7, seed));
  const std::vector<Bytes> prefixes = {{},
                                       {0xFF, 0xD8, 0xFF},
                                       {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A},
                                       {'B', 'M'},
                                       {'G', 'I', 'F', '8', '9', 'a'},
                                       {0, 0, 2}};
  for (uint64_t t = 0; t < 60; ++t) {
    const size_t n = 1 + (philox_block(seed, 1000, t).v[0] % 3000);
    Bytes b;
    for (size_t i = 0; i < n; i += 4) {
      const Philox4 r = philox_block(seed, 2000 + t * 1000, i / 4);
      for (int k = 0; k < 4; ++k) b.push_back(static_cast<uint8_t>(r.v[k]));
    }
    b.resize(n);
    const Bytes& prefix = prefixes[t % prefixes.size()];
    if (b.size() < prefix.size()) continue;  // before the copy: a 1- or 2-byte file cannot hold it
    std::copy(prefix.begin(), prefix.end(), b.begin());
    require_rejected(b, "garbage " + std::to_string(t));
  }
  // Flipped bytes inside real files: any outcome but a crash or an out-of-bounds access, and a
  // decoded image always has the declared size.
  for (const Bytes* f : {&jpg, &png}) {
    for (uint64_t t = 0; t < 200; ++t) {
      Bytes b = *f;
      const Philox4 r = philox_block(seed, 9000, t);
      for (int k = 0; k < 3; ++k)
        b[r.v[k] % b.size()] ^= static_cast<uint8_t>(1 + (r.v[3] >> (8 * k)) % 255);
      try {
        const DecodedImage d = decode(b);
        REQUIRE(d.image.pixels.size() == static_cast<size_t>(d.image.width) * d.image.height * 3);
      } catch (const Error& e) {
        REQUIRE(std::string(e.what()).find("test-image") != std::string::npos);
      }
    }
  }
  require_rejected({}, "empty");
}
