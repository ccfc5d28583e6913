// Region decoding (Note [Region decode] in yolo/data/image_io.h) against a full decode cropped:
// JPEGs in every chroma layout libjpeg writes (4:2:0, 4:2:2, 4:4:0, 4:4:4, grey), progressive, with
// restart markers, odd sizes, random regions including the image's edges; plus the fallbacks
// (PNG, EXIF-rotated, corrupt data).
#include <cstddef>
#include <cstdio>
// clang-format off: jpeglib.h needs size_t and FILE declared first
#include <jpeglib.h>
// clang-format on

#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "core/philox.h"
#include "tests/harness.h"
#include "yolo/data/image_io.h"

using namespace yolo;

namespace {

// A JPEG written through the libjpeg API: component 0 sampled (h, v), chroma 1x1; grey = one
// component.
std::vector<uint8_t> libjpeg_encode(const Image& im, int h_samp, int v_samp, bool grey,
                                    bool progressive, int restart_rows) {
  jpeg_compress_struct c;
  jpeg_error_mgr err;
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  unsigned char* buf = nullptr;
  unsigned long len = 0;
  jpeg_mem_dest(&c, &buf, &len);
  c.image_width = static_cast<JDIMENSION>(im.width);
  c.image_height = static_cast<JDIMENSION>(im.height);
  c.input_components = 3;
  c.in_color_space = JCS_RGB;
  jpeg_set_defaults(&c);
  if (grey) jpeg_set_colorspace(&c, JCS_GRAYSCALE);
  jpeg_set_quality(&c, 88, TRUE);
  c.comp_info[0].h_samp_factor = grey ? 1 : h_samp;
  c.comp_info[0].v_samp_factor = grey ? 1 : v_samp;
  if (progressive) jpeg_simple_progression(&c);
  c.restart_in_rows = restart_rows;
  jpeg_start_compress(&c, TRUE);
  while (c.next_scanline < c.image_height) {
    JSAMPROW row = const_cast<uint8_t*>(im.row(static_cast<int>(c.next_scanline)));
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  std::vector<uint8_t> out(buf, buf + len);
  jpeg_destroy_compress(&c);
  std::free(buf);
  return out;
}

// Smooth colour gradients plus noise: chroma differs between neighbours, so upsampling matters.
Image test_image(int w, int h, uint64_t seed) {
  Image im(w, h);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      const Philox4 r = philox_block(seed, 0, static_cast<uint64_t>(y) * w + x);
      uint8_t* p = im.at(x, y);
      p[0] = static_cast<uint8_t>((x * 255 / w + (r.v[0] & 31)) & 255);
      p[1] = static_cast<uint8_t>((y * 255 / h + (r.v[1] & 63)) & 255);
      p[2] = static_cast<uint8_t>(((x + y) * 3 + (r.v[2] & 15)) & 255);
    }
  }
  return im;
}

const std::filesystem::path& temp_dir() {
  static const std::filesystem::path d = [] {
    const auto p = std::filesystem::temp_directory_path() /
                   ("yolocore_region_" + std::to_string(test::base_seed() % 1000000));
    std::filesystem::create_directories(p);
    return p;
  }();
  return d;
}

void check_regions(const std::vector<uint8_t>& bytes, const std::string& what, uint64_t seed) {
  INFO(what);
  const DecodedImage full = decode_image_memory(bytes.data(), bytes.size(), {}, what);
  const int w = full.image.width, h = full.image.height;
  std::vector<PixelRect> regions = {{0, 0, w, h},          {0, 0, 1, 1},
                                    {w - 1, h - 1, 1, 1},  {w / 2, 0, w - w / 2, h},
                                    {0, h / 2, w, h - h / 2}, {17, 9, 5, 33}};
  for (uint64_t k = 0; k < 40; ++k) {
    const Philox4 r = philox_block(seed, 1, k);
    const int x0 = static_cast<int>(r.v[0] % static_cast<uint32_t>(w));
    const int y0 = static_cast<int>(r.v[1] % static_cast<uint32_t>(h));
    const int rw = 1 + static_cast<int>(r.v[2] % static_cast<uint32_t>(w - x0));
    const int rh = 1 + static_cast<int>(r.v[3] % static_cast<uint32_t>(h - y0));
    regions.push_back({x0, y0, rw, rh});
  }
  for (const PixelRect& rect : regions) {
    if (rect.x + rect.w > w || rect.y + rect.h > h) continue;
    INFO("region (" << rect.x << ", " << rect.y << ") " << rect.w << "x" << rect.h);
    const DecodedImage part = decode_image_region_memory(bytes.data(), bytes.size(), rect, {}, what);
    REQUIRE(part.source_width == w);
    REQUIRE(part.source_height == h);
    REQUIRE(part.image.width == rect.w);
    REQUIRE(part.image.height == rect.h);
    REQUIRE(part.image.pixels == crop_image(full.image, rect).pixels);
  }
}

}  // namespace

TEST_CASE("decode_image_region equals a full decode cropped, for every JPEG layout",
          "[data][image]") {
  const uint64_t seed = test::seed(71);
  struct Layout {
    const char* name;
    int h, v;
    bool grey, progressive;
    int restart;
  };
  const Layout layouts[] = {{"4:2:0", 2, 2, false, false, 0},  {"4:2:2", 2, 1, false, false, 0},
                            {"4:4:0", 1, 2, false, false, 0},  {"4:4:4", 1, 1, false, false, 0},
                            {"grey", 1, 1, true, false, 0},    {"4:2:0 progressive", 2, 2, false, true, 0},
                            {"4:2:0 restart", 2, 2, false, false, 1}};
  for (const Layout& l : layouts) {
    for (const auto& [w, h] : {std::pair{203, 157}, std::pair{64, 48}, std::pair{17, 300}}) {
      const Image im = test_image(w, h, seed + static_cast<uint64_t>(w));
      check_regions(libjpeg_encode(im, l.h, l.v, l.grey, l.progressive, l.restart),
                    std::string(l.name) + " " + std::to_string(w) + "x" + std::to_string(h),
                    seed + static_cast<uint64_t>(h));
    }
  }
  // Our own encoder's files (what `yolo dataset shapes` writes).
  check_regions(encode_jpeg(test_image(320, 240, seed), 90), "encode_jpeg 320x240", seed);
}

TEST_CASE("decode_image_region: PNG, EXIF-rotated and damaged files behave as a full decode",
          "[data][image]") {
  const Image im = test_image(40, 30, test::seed(72));
  // PNG: decoded in full, cropped.
  const auto png_path = temp_dir() / "a.png";
  write_png(png_path.string(), im);
  const DecodedImage p = decode_image_region(png_path.string(), {3, 4, 10, 7});
  REQUIRE(p.image.pixels == crop_image(im, {3, 4, 10, 7}).pixels);
  // EXIF orientation 6: the region is in the rotated image's coordinates (full decode + crop).
  {
    std::vector<uint8_t> jpg = encode_jpeg(im, 90);
    const uint8_t tiff[] = {'M', 'M', 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1,
                            0, 6, 0, 0, 0, 0, 0, 0};
    std::vector<uint8_t> app1 = {0xFF, 0xE1, 0, static_cast<uint8_t>(2 + 6 + sizeof tiff),
                                 'E', 'x', 'i', 'f', 0, 0};
    app1.insert(app1.end(), std::begin(tiff), std::end(tiff));
    jpg.insert(jpg.begin() + 2, app1.begin(), app1.end());
    const DecodedImage full = decode_image_memory(jpg.data(), jpg.size(), {}, "rot.jpg");
    REQUIRE(full.image.width == 30);
    REQUIRE(full.image.height == 40);
    const PixelRect r{5, 20, 20, 11};
    const DecodedImage part = decode_image_region_memory(jpg.data(), jpg.size(), r, {}, "rot.jpg");
    REQUIRE(part.image.pixels == crop_image(full.image, r).pixels);
  }
  // A region outside the image is an error naming the file.
  REQUIRE_THROWS_WITH(decode_image_region(png_path.string(), {35, 0, 10, 5}),
                      Catch::Contains("a.png") && Catch::Contains("not inside the 40x30 image"));
  // A JPEG cut short: the region path falls back to the full decode, which refuses it.
  std::vector<uint8_t> jpg = encode_jpeg(im, 90);
  const std::vector<uint8_t> cut(jpg.begin(), jpg.begin() + static_cast<long>(jpg.size() / 2));
  REQUIRE_THROWS_WITH(decode_image_region_memory(cut.data(), cut.size(), {0, 0, 4, 4}, {}, "cut.jpg"),
                      Catch::Contains("cut.jpg") && Catch::Contains("truncated"));
  // A DCT-scaled request is refused (regions are at full resolution).
  DecodeOptions scaled;
  scaled.target_long_side = 10;
  REQUIRE_THROWS_WITH(decode_image_region_memory(jpg.data(), jpg.size(), {0, 0, 4, 4}, scaled, "x.jpg"),
                      Catch::Contains("full resolution"));
}

TEST_CASE("decode_image_region survives truncated and corrupted JPEGs", "[data][image]") {
  const uint64_t seed = test::seed(73);
  const std::vector<uint8_t> good =
      libjpeg_encode(test_image(48, 40, seed), 2, 2, false, false, 0);
  const PixelRect r{10, 12, 20, 15};
  int failures = 0, successes = 0;
  auto attempt = [&](const std::vector<uint8_t>& bytes) {
    try {
      const DecodedImage d = decode_image_region_memory(bytes.data(), bytes.size(), r, {}, "f.jpg");
      REQUIRE(d.image.width == r.w);
      REQUIRE(d.image.height == r.h);
      ++successes;
    } catch (const Error& e) {
      REQUIRE_THAT(std::string(e.what()), Catch::Contains("f.jpg"));
      ++failures;
    }
  };
  for (size_t n = 1; n < good.size(); n += 7) attempt({good.begin(), good.begin() + static_cast<long>(n)});
  for (uint64_t k = 0; k < 300; ++k) {
    std::vector<uint8_t> bytes = good;
    const Philox4 x = philox_block(seed, 2, k);
    for (int j = 0; j < 3; ++j) bytes[x.v[j] % bytes.size()] ^= static_cast<uint8_t>(1 + (x.v[3] >> (8 * j)) % 255);
    attempt(bytes);
  }
  CHECK(failures > 0);
  CHECK(successes > 0);
}
