// Datasets as ultralytics reads them: data yamls, image listing, the images -> labels rule, header
// probing, every label check with the reference's message (outcomes taken from running the
// reference's verify_image_label on the same text), the label cache, and `yolo dataset check`.
// Every dataset is built in a temporary folder from hand-made image headers.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "tests/harness.h"
#include "yolo/data/dataset_check.h"
#include "yolo/data/image_io.h"
#include "yolo/data/dataset_config.h"
#include "yolo/data/image_probe.h"
#include "yolo/data/labels.h"

using namespace yolo;
namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

namespace {

class TempDir {
 public:
  TempDir() {
    static int counter = 0;
    path_ = fs::temp_directory_path() /
            ("yolo_data_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::permissions(path_, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& rel) const { return path_ / rel; }

 private:
  fs::path path_;
};

void write_file(const fs::path& p, const Bytes& bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}
void write_text(const fs::path& p, const std::string& text) {
  write_file(p, Bytes(text.begin(), text.end()));
}
std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void put_be32(Bytes& b, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<uint8_t>(v >> s));
}
void put_le16(Bytes& b, uint32_t v) {
  b.push_back(static_cast<uint8_t>(v));
  b.push_back(static_cast<uint8_t>(v >> 8));
}
void put_le32(Bytes& b, uint32_t v) {
  put_le16(b, v & 0xFFFF);
  put_le16(b, v >> 16);
}

uint32_t crc32(const uint8_t* p, std::size_t n) {
  uint32_t c = 0xFFFFFFFFu;
  for (std::size_t i = 0; i < n; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
  }
  return c ^ 0xFFFFFFFFu;
}

void png_chunk(Bytes& b, const char* type, const Bytes& data) {
  put_be32(b, static_cast<uint32_t>(data.size()));
  Bytes body(type, type + 4);
  body.insert(body.end(), data.begin(), data.end());
  b.insert(b.end(), body.begin(), body.end());
  put_be32(b, crc32(body.data(), body.size()));
}

// A valid w x h grey RGB PNG (zlib stored blocks, no compression).
Bytes png(uint32_t w, uint32_t h) {
  Bytes b = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  Bytes ihdr;
  put_be32(ihdr, w);
  put_be32(ihdr, h);
  ihdr.insert(ihdr.end(), {8, 2, 0, 0, 0});
  png_chunk(b, "IHDR", ihdr);
  Bytes raw;
  for (uint32_t y = 0; y < h; ++y) {
    raw.push_back(0);
    raw.insert(raw.end(), w * 3, 128);
  }
  Bytes z = {0x78, 0x01};
  std::size_t at = 0;
  do {
    const std::size_t n = std::min<std::size_t>(65535, raw.size() - at);
    z.push_back(at + n == raw.size() ? 1 : 0);
    put_le16(z, static_cast<uint32_t>(n));
    put_le16(z, static_cast<uint32_t>(~n & 0xFFFF));
    z.insert(z.end(), raw.begin() + static_cast<long>(at), raw.begin() + static_cast<long>(at + n));
    at += n;
  } while (at < raw.size());
  uint32_t a = 1, s = 0;
  for (uint8_t v : raw) a = (a + v) % 65521, s = (s + a) % 65521;
  put_be32(z, (s << 16) | a);
  png_chunk(b, "IDAT", z);
  png_chunk(b, "IEND", {});
  return b;
}

// A valid 24-bit BMP (BITMAPINFOHEADER); negative height when top_down.
Bytes bmp(int32_t w, int32_t h, bool top_down = false) {
  const uint32_t row = (static_cast<uint32_t>(w) * 3 + 3) & ~3u;
  Bytes b = {'B', 'M'};
  put_le32(b, 54 + row * static_cast<uint32_t>(h));
  put_le32(b, 0);
  put_le32(b, 54);
  put_le32(b, 40);
  put_le32(b, static_cast<uint32_t>(w));
  put_le32(b, static_cast<uint32_t>(top_down ? -h : h));
  put_le16(b, 1);
  put_le16(b, 24);
  for (int i = 0; i < 6; ++i) put_le32(b, 0);
  b.insert(b.end(), row * static_cast<uint32_t>(h), 200);
  return b;
}

// JPEG headers: SOI, optional APP1 Exif with an orientation, SOF0 (h, w), SOS, a few bytes, EOI.
Bytes jpeg(uint16_t w, uint16_t h, int orientation = 0, bool eoi = true) {
  Bytes b = {0xFF, 0xD8};
  if (orientation > 0) {
    Bytes tiff = {'M', 'M', 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1};
    tiff.insert(tiff.end(), {0, static_cast<uint8_t>(orientation), 0, 0, 0, 0, 0, 0});
    Bytes app1 = {'E', 'x', 'i', 'f', 0, 0};
    app1.insert(app1.end(), tiff.begin(), tiff.end());
    b.insert(b.end(), {0xFF, 0xE1, static_cast<uint8_t>((app1.size() + 2) >> 8),
                       static_cast<uint8_t>(app1.size() + 2)});
    b.insert(b.end(), app1.begin(), app1.end());
  }
  b.insert(b.end(), {0xFF, 0xC0, 0, 17, 8, static_cast<uint8_t>(h >> 8), static_cast<uint8_t>(h),
                     static_cast<uint8_t>(w >> 8), static_cast<uint8_t>(w), 3, 1, 0x11, 0, 2, 0x11,
                     1, 3, 0x11, 1});
  b.insert(b.end(), {0xFF, 0xDA, 0, 12, 3, 1, 0, 2, 0x11, 3, 0x11, 0, 63, 0, 0x12, 0x34, 0x56});
  if (eoi) b.insert(b.end(), {0xFF, 0xD9});
  return b;
}

Bytes gif(uint16_t w, uint16_t h) {
  Bytes b = {'G', 'I', 'F', '8', '9', 'a'};
  put_le16(b, w);
  put_le16(b, h);
  b.insert(b.end(), {0, 0, 0, ';'});
  return b;
}

Bytes tga(uint16_t w, uint16_t h) {
  Bytes b = {0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  put_le16(b, w);
  put_le16(b, h);
  b.insert(b.end(), {24, 0});
  b.insert(b.end(), static_cast<std::size_t>(w) * h * 3, 7);
  return b;
}

std::string probe_error(const fs::path& p) {
  try {
    probe_image(p.string());
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::string parse_error(const std::string& text) {
  try {
    parse_label_text(text);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::vector<std::string>& msgs, const std::string& needle) {
  for (const auto& m : msgs)
    if (m.find(needle) != std::string::npos) return true;
  return false;
}

std::string data_yaml(const fs::path& root, const std::string& extra = "") {
  return "path: " + root.string() +
         "\ntrain: images/train\nval: images/val\nnames: [cat, dog, bird]\n" + extra;
}

// Runs run_dataset_check on `yaml` and returns (exit code, report).
std::pair<int, std::string> check(const fs::path& yaml, bool no_cache = false) {
  std::string data = yaml.string();
  std::vector<std::string> args = {"check", "--data", data};
  if (no_cache) args.push_back("--no-cache");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  std::FILE* f = std::tmpfile();
  const int rc = run_dataset_check(static_cast<int>(argv.size()), argv.data(), f);
  std::rewind(f);
  std::string text;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) text.append(buf, n);
  std::fclose(f);
  return {rc, text};
}

}  // namespace

TEST_CASE("probe_image_size reads PNG, BMP, JPEG, GIF and TGA headers with EXIF orientation",
          "[data]") {
  TempDir d;
  write_file(d / "a.png", png(23, 11));
  write_file(d / "b.bmp", bmp(17, 12));
  write_file(d / "c.bmp", bmp(17, 12, true));
  write_file(d / "d.jpg", jpeg(640, 480));
  write_file(d / "e.gif", gif(31, 7));
  write_file(d / "f.tga", tga(12, 13));
  auto size = [&](const char* name) {
    const ImageSize s = probe_image_size((d / name).string());
    return std::pair<int, int>(s.width, s.height);
  };
  CHECK(size("a.png") == std::pair(23, 11));
  CHECK(size("b.bmp") == std::pair(17, 12));
  CHECK(size("c.bmp") == std::pair(17, 12));
  CHECK(size("d.jpg") == std::pair(640, 480));
  CHECK(size("e.gif") == std::pair(31, 7));
  CHECK(size("f.tga") == std::pair(12, 13));
  CHECK(probe_image((d / "a.png").string()).format == ImageFormat::png);
  for (int o = 1; o <= 8; ++o) {
    write_file(d / "o.jpg", jpeg(640, 480, o));
    const ImageProbe p = probe_image((d / "o.jpg").string());
    CHECK(p.orientation == o);
    CHECK(probe_image_size((d / "o.jpg").string()).width == (o >= 5 ? 480 : 640));
  }
  write_file(d / "noeoi.jpg", jpeg(64, 48, 0, false));
  CHECK_FALSE(probe_image((d / "noeoi.jpg").string()).jpeg_eoi);
  CHECK(probe_image((d / "d.jpg").string()).jpeg_eoi);
}

TEST_CASE("probe_image reports garbage, truncated and unsupported files with the file name",
          "[data]") {
  TempDir d;
  write_file(d / "garbage.jpg",
             Bytes{'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd', '!', '!'});
  write_file(d / "empty.png", {});
  Bytes p = png(20, 20);
  write_file(d / "trunc.png", Bytes(p.begin(), p.begin() + static_cast<long>(p.size() / 2)));
  Bytes crc = p;
  crc[45] ^= 0xFF;  // inside IDAT's data
  write_file(d / "crc.png", crc);
  Bytes j = jpeg(64, 64);
  write_file(d / "trunc.jpg", Bytes(j.begin(), j.begin() + 9));
  write_file(d / "sig.jpg", Bytes{0xFF, 0xD8, 0xFF});
  write_file(d / "tiff.tif", Bytes{'I', 'I', '*', 0, 8, 0, 0, 0, 0, 0, 0, 0});
  write_file(d / "zero.bmp", bmp(0, 5));
  Bytes b = bmp(20, 20);
  write_file(d / "trunc.bmp", Bytes(b.begin(), b.begin() + 20));
  CHECK_THAT(probe_error(d / "garbage.jpg"),
             Catch::Contains("cannot identify image file") && Catch::Contains("garbage.jpg"));
  CHECK_THAT(probe_error(d / "empty.png"), Catch::Contains("cannot identify image file"));
  CHECK_THAT(probe_error(d / "trunc.png"), Catch::Contains("truncated"));
  CHECK_THAT(probe_error(d / "crc.png"), Catch::Contains("CRC mismatch in chunk 'IDAT'"));
  CHECK_THAT(probe_error(d / "trunc.jpg"), Catch::Contains("truncated"));
  CHECK_THAT(probe_error(d / "sig.jpg"), Catch::Contains("truncated"));
  CHECK_THAT(probe_error(d / "tiff.tif"), Catch::Contains("TIFF images are not supported"));
  CHECK_THAT(probe_error(d / "zero.bmp"), Catch::Contains("corrupt BMP"));
  CHECK_THAT(probe_error(d / "trunc.bmp"), Catch::Contains("truncated"));
  CHECK_THAT(probe_error(d / "missing.png"),
             Catch::Contains("missing.png") && Catch::Contains("cannot read"));
  // Random bytes after a valid signature never crash the probe.
  std::mt19937 rng(static_cast<uint32_t>(test::seed(11)));
  for (int t = 0; t < 300; ++t) {
    Bytes f = t % 3 == 0 ? png(12, 12) : t % 3 == 1 ? jpeg(30, 30, 6) : bmp(12, 12);
    const int flips = 1 + static_cast<int>(rng() % 8);
    for (int k = 0; k < flips; ++k) f[rng() % f.size()] = static_cast<uint8_t>(rng());
    if (rng() % 2) f.resize(rng() % f.size());
    write_file(d / "fuzz.img", f);
    try {
      probe_image((d / "fuzz.img").string());
    } catch (const Error&) {
    }
  }
}

TEST_CASE("dataset yaml: names as list or dict, nc, path resolution and error messages", "[data]") {
  TempDir d;
  fs::create_directories(d / "ds/images/train");
  fs::create_directories(d / "ds/images/val");
  write_text(d / "ds/list.txt", "./images/val/a.png\n");
  write_text(d / "a.yaml",
             "path: ds\ntrain: images/train\nval: [images/val, list.txt]\ntest:\nnames: [a, b]\n");
  DatasetConfig c = load_dataset_config((d / "a.yaml").string());
  CHECK(c.nc == 2);
  CHECK(c.names == std::vector<std::string>{"a", "b"});
  CHECK(c.root == d / "ds");
  CHECK(c.train == std::vector<std::string>{(d / "ds/images/train").string()});
  REQUIRE(c.val.size() == 2);
  CHECK(c.val[1] == (d / "ds/list.txt").string());
  CHECK(c.test.empty());

  // Dict names with int keys in any order; nc consistent; the yaml's folder as root; Roboflow's
  // ../.
  write_text(
      d / "ds/b.yaml",
      "train: ../images/train\nval: images/val\nnc: 3\nnames: {2: car, 0: person, 1: bike}\n");
  c = load_dataset_config((d / "ds/b.yaml").string());
  CHECK(c.names == std::vector<std::string>{"person", "bike", "car"});
  CHECK(c.train[0] == (d / "ds/images/train").string());
  // The reference's repo-root rule: yaml in <root>/data/, path relative to <root>.
  write_text(d / "data/c.yaml", "path: ds\ntrain: images/train\nval: images/val\nnc: 4\n");
  c = load_dataset_config((d / "data/c.yaml").string());
  CHECK(c.root == d / "ds");
  CHECK(c.names == std::vector<std::string>{"class0", "class1", "class2", "class3"});
  CHECK(contains(c.warnings, "'names:' field missing"));

  auto err = [&](const std::string& text) {
    write_text(d / "bad.yaml", text);
    try {
      load_dataset_config((d / "bad.yaml").string());
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  const std::string root = "path: " + (d / "ds").string() + "\n";
  CHECK_THAT(err(root + "val: images/val\nnames: [a]\n"),
             Catch::Contains("bad.yaml") && Catch::Contains("'train:' field missing"));
  CHECK_THAT(err(root + "train: images/train\nnames: [a]\n"),
             Catch::Contains("'val:' field missing"));
  CHECK_THAT(err(root + "train: images/train\nval: images/val\n"),
             Catch::Contains("'names:' field missing"));
  CHECK_THAT(err(root + "train: images/train\nval: images/val\nnames: {a: x}\n"),
             Catch::Contains("names keys must be integers, i.e. 2: car") &&
                 Catch::Contains("key 'names:'"));
  CHECK_THAT(err(root + "train: images/train\nval: images/val\nnames: {0: x, 2: y}\n"),
             Catch::Contains("id 1 is missing"));
  CHECK_THAT(
      err(root + "train: images/train\nval: images/val\nnc: 3\nnames: [a, b]\n"),
      Catch::Contains("2 names found for nc=3 dataset in") && Catch::Contains("make nc equal"));
  CHECK_THAT(err(root + "train: images/train\nval: images/val\nnc: two\nnames: [a, b]\n"),
             Catch::Contains("key 'nc:'"));
  CHECK_THAT(
      err(root +
          "train: images/train\nval: images/nowhere\nnames: [a]\ndownload: https://x/y.zip\n"),
      Catch::Contains("key 'val:'") && Catch::Contains("missing path 'images/nowhere'") &&
          Catch::Contains((d / "ds/images/nowhere").string()) && Catch::Contains("does not run"));
  CHECK_THAT(err("train: [\n"), Catch::Contains("not valid yaml"));
  CHECK_THAT(err("- a\n- b\n"), Catch::Contains("expected a mapping"));
  CHECK_THAT(err(root + "train: {a: b}\nval: images/val\nnames: [a]\n"),
             Catch::Contains("key 'train:'"));
  CHECK_THROWS_WITH(load_dataset_config((d / "nope.yaml").string()),
                    Catch::Contains("nope.yaml") && Catch::Contains("no such file"));
}

TEST_CASE(
    "image listing: folders walked recursively, txt lists, extensions, sorted; the labels path "
    "rule",
    "[data]") {
  TempDir d;
  for (const char* f :
       {"ds/images/train/b.jpg", "ds/images/train/a.PNG", "ds/images/train/sub/c.jpeg",
        "ds/images/train/x.txt", "ds/images/train/.hidden.jpg", "ds/images/train/.cache/d.jpg",
        "ds/images/train/noext", "ds/images/val/v.bmp", "ds/images/train/e.gif"})
    write_text(d / f, "x");
  const std::string train = (d / "ds/images/train").string();
  const std::vector<std::string> got = list_image_files({train});
  CHECK(got == std::vector<std::string>{train + "/a.PNG", train + "/b.jpg", train + "/sub/c.jpeg"});
  const std::vector<std::string> two = list_image_files({(d / "ds/images/val").string(), train});
  CHECK(two.size() == 4);
  CHECK(std::is_sorted(two.begin(), two.end()));
  write_text(d / "ds/list.txt",
             "./images/val/v.bmp\r\n\n  " + train + "/b.jpg  \n./images/val/v.bmp\nnotes.doc\n");
  CHECK(list_image_files({(d / "ds/list.txt").string()}) ==
        std::vector<std::string>{train + "/b.jpg", (d / "ds/").string() + "images/val/v.bmp"});
  CHECK_THROWS_WITH(list_image_files({(d / "nowhere").string()}),
                    Catch::Contains("does not exist"));
  fs::create_directories(d / "empty");
  CHECK_THROWS_WITH(list_image_files({(d / "empty").string()}), Catch::Contains("No images found"));

  CHECK(image_to_label_path("/a/images/b/images/c.x.jpg") == "/a/images/b/labels/c.x.txt");
  CHECK(image_to_label_path("/data/img/c.png") == "/data/img/c.txt");
  CHECK(image_to_label_path("/d/images/c") == "/d/labels/c.txt");
  CHECK(label_cache_path({train}, {(d / "ds/labels/train/a.txt").string()}) ==
        d / "ds/labels/train.yolocore.cache");
  CHECK(label_cache_path({train, (d / "ds/list.txt").string()}, {"x/y.txt"}) ==
        d / "ds/list.yolocore.cache");
}

TEST_CASE("label parsing: every check of verify_image_label with its message", "[data]") {
  const ParsedLabels ok = parse_label_text("0 0.5 0.5 0.1 0.1\n2 0.25 0.75 0.5 0.5\n");
  REQUIRE(ok.count() == 2);
  CHECK(ok.boxes[5] == 2.0f);
  CHECK(ok.boxes[7] == 0.75f);
  CHECK(ok.segments.empty());
  CHECK(parse_label_text("").count() == 0);
  CHECK(parse_label_text(" \n\r\n\t").count() == 0);

  CHECK_THAT(parse_error("0 0.5 0.5 0.1\n"),
             Catch::Equals("labels require 5 columns, 4 columns detected"));
  CHECK_THAT(parse_error("0 0.5 0.5 0.1 0.1 0.3\n"),
             Catch::Equals("labels require 5 columns, 6 columns detected"));
  CHECK_THAT(parse_error("0 0.1 0.1 0.3 0.1 0.3\n"),
             Catch::Equals("labels require 5 columns, 6 columns detected"));
  CHECK_THAT(parse_error("0 0.5 0.5 0.1 0.1\n0 0.5 0.5 0.1\n"),
             Catch::Contains("labels require 5 columns, line 2 has 4"));
  CHECK_THAT(parse_error("0 0.5 0.5 0.1 0.1\n  \n0 0.5 0.5 0.1 0.1\n"),
             Catch::Contains("line 2 has 0"));
  CHECK_THAT(parse_error("0 -0.1 0.5 0.1 0.1\n0 -0.2 0.5 1.1 0.1\n"),
             Catch::Equals("negative label values [       -0.1        -0.2]"));
  CHECK_THAT(parse_error("0 0.5 1.5 0.1 0.1\n"),
             Catch::Equals("non-normalized or out of bounds coordinates [        1.5]"));
  CHECK_THAT(parse_error("0 abc 0.5 0.1 0.1\n"),
             Catch::Equals("could not convert string to float: 'abc'"));
  CHECK_THAT(parse_error("0 nan 0.5 0.1 0.1\n"), Catch::Equals("negative label values []"));
  CHECK_THAT(parse_error("0 inf 0.5 0.1 0.1\n"),
             Catch::Contains("non-normalized or out of bounds coordinates [        inf]"));
  CHECK_THAT(parse_error("0 -inf 0.5 0.1 0.1\n"), Catch::Contains("negative label values [       -inf]"));
  CHECK_THAT(parse_error("0 1e400 0.5 0.1 0.1\n"),
             Catch::Contains("out of bounds coordinates [        inf]"));
  // The reference reads "+1 1_0 .5" as 1, 10, 0.5 (Python float()).
  CHECK_THAT(parse_error("+1 1_0 .5 0.1 0.1\n"),
             Catch::Equals("non-normalized or out of bounds coordinates [         10]"));
  for (const char* bad :
       {"1__0", "_1", "1_", "0x1p3", "1e", "e5", "--1", "1.2.3", ".", "nan(1)", "infx"})
    CHECK_THAT(parse_error(std::string("0 ") + bad + " 0.5 0.1 0.1"),
               Catch::StartsWith("could not convert string to float"));
  // A huge class id is kept here (inf in float32) and rejected at dataset level against nc.
  const ParsedLabels huge = parse_label_text("1e40 0.5 0.5 0.1 0.1\n");
  CHECK(std::isinf(huge.boxes[0]));
  // -0 is not negative; 1e-400 underflows to 0.
  CHECK(parse_label_text("-0 1e-400 0.5 0.1 0.1").count() == 1);

  // CRLF, blank lines, tabs and trailing spaces are fine.
  const ParsedLabels crlf = parse_label_text("0 0.5 0.5 0.1 0.1\r\n\r\n1\t0.2 0.2 0.1 0.1 \r\n\n");
  CHECK(crlf.count() == 2);
  CHECK(crlf.boxes[5] == 1.0f);

  // Duplicates removed, rows re-ordered lexicographically (np.unique(axis=0)).
  const ParsedLabels dup =
      parse_label_text("1 0.5 0.5 0.1 0.1\n0 0.5 0.5 0.1 0.1\n1 0.5 0.5 0.1 0.1\n");
  CHECK(dup.duplicates_removed == 1);
  REQUIRE(dup.count() == 2);
  CHECK(dup.boxes[0] == 0.0f);
  CHECK(dup.boxes[5] == 1.0f);
  const ParsedLabels nodup = parse_label_text("1 0.5 0.5 0.1 0.1\n0 0.5 0.5 0.1 0.1\n");
  CHECK(nodup.boxes[0] == 1.0f);  // order kept when nothing is removed

  // Polygons: a file with any row of > 6 values is all polygons, each turned into its box.
  const ParsedLabels seg = parse_label_text("0 0.1 0.1 0.3 0.1 0.3 0.4\n1 0.5 0.5 0.1 0.1\n");
  REQUIRE(seg.count() == 2);
  REQUIRE(seg.segments.size() == 2);
  CHECK(seg.segments[0].size() == 6);
  const float want0[5] = {0.0f, (0.1f + 0.3f) / 2, (0.1f + 0.4f) / 2, 0.3f - 0.1f, 0.4f - 0.1f};
  const float want1[5] = {1.0f, (0.1f + 0.5f) / 2, (0.1f + 0.5f) / 2, 0.5f - 0.1f, 0.5f - 0.1f};
  for (int j = 0; j < 5; ++j) {
    CHECK(seg.boxes[j] == want0[j]);
    CHECK(seg.boxes[5 + j] == want1[j]);
  }
  CHECK_THAT(parse_error("0 0.1 0.1 0.3 0.1 0.3 0.4 0.5\n"),
             Catch::Contains("polygon row 1 has 7 coordinates"));
  CHECK_THAT(parse_error("0 0.1 0.1 0.3 0.1 0.3 0.4\n2\n"),
             Catch::Contains("polygon row 2 has 0 coordinates"));
  CHECK_THAT(parse_error("0 0.1 0.1 1.3 0.1 0.3 0.4\n"),
             Catch::Contains("non-normalized or out of bounds coordinates"));
  const ParsedLabels segdup = parse_label_text(
      "1 0.1 0.1 0.3 0.1 0.3 0.4\n0 0.2 0.2 0.3 0.1 0.3 0.4\n1 0.1 0.1 0.3 0.1 0.3 0.4\n");
  CHECK(segdup.duplicates_removed == 1);
  REQUIRE(segdup.segments.size() == 2);
  CHECK(segdup.boxes[0] == 0.0f);
  CHECK(segdup.segments[0][0] == 0.2f);
}

TEST_CASE("label parsing survives garbage bytes and odd text", "[data]") {
  std::mt19937 rng(static_cast<uint32_t>(test::seed(12)));
  static const char kAlphabet[] = "0123456789 .\n\r\t-+eE_naifNAIF\x00\xff\x85";
  const std::string alphabet(kAlphabet, sizeof kAlphabet - 1);
  for (int t = 0; t < 2000; ++t) {
    std::string s(rng() % 120, ' ');
    for (char& c : s) c = t % 2 ? static_cast<char>(rng()) : alphabet[rng() % alphabet.size()];
    try {
      const ParsedLabels p = parse_label_text(s);
      for (float v : p.boxes) CHECK(v >= 0);
    } catch (const Error& e) {
      CHECK(std::string(e.what()).size() > 0);
    }
  }
  static const char kBinary[] = "0 0.5\xff\x00 0.5 0.1 0.1";
  CHECK_THAT(parse_error(std::string(kBinary, sizeof kBinary - 1)),
             Catch::Contains("'0.5\\xff\\x00'"));
}

TEST_CASE("label scan: found, missing, empty and corrupt pairs with the reference's messages",
          "[data]") {
  TempDir d;
  const fs::path im = d / "ds/images/train", lb = d / "ds/labels/train";
  write_file(im / "a.png", png(20, 16));
  write_text(lb / "a.txt", "0 0.5 0.5 0.1 0.1\n2 0.2 0.2 0.1 0.1\n");
  write_file(im / "b.jpg", jpeg(32, 24, 6));  // EXIF rotate: stored 32x24, shown 24x32
  write_text(lb / "b.txt", "1 0.5 0.5 0.1 0.1\n1 0.5 0.5 0.1 0.1\n");
  write_file(im / "c.bmp", bmp(12, 12));  // no label file: background
  write_file(im / "d.png", png(12, 12));
  write_text(lb / "d.txt", "\n");  // empty: background
  write_file(im / "e.png", png(12, 12));
  write_text(lb / "e.txt", "0 0.5 1.5 0.1 0.1\n");  // corrupt label
  write_file(im / "f.jpg", Bytes{'n', 'o', 't', ' ', 'a', 'n', ' ', 'i', 'm', 'a', 'g', 'e'});
  write_file(im / "g.png", png(9, 40));              // too small
  // Bytes after the FF D9 marker: reported, read as it is, never modified (the reference re-saves).
  Bytes h_bytes = encode_jpeg(Image(50, 40), 90);
  h_bytes.insert(h_bytes.end(), {0x00, 0x12, 0x34});
  write_file(im / "h.jpg", h_bytes);
  write_text(lb / "h.txt", "0 0.1 0.1 0.3 0.1 0.3 0.4\n");
  write_file(im / "i.jpg", gif(40, 40));  // a GIF named .jpg: the reference's invalid format
  write_file(im / "j.jpg", jpeg(50, 40, 0, false));  // data cut before FF D9: corrupt
  const Bytes h_before = [&] {
    std::ifstream in(im / "h.jpg", std::ios::binary);
    return Bytes(std::istreambuf_iterator<char>(in), {});
  }();

  const LabelScan s =
      scan_labels({im.string()}, {.use_cache = false, .threads = 3, .prefix = "train: "});
  CHECK(s.total == 10);
  CHECK(s.found ==
        5);  // a, b, d, e, h: as the reference, an empty or a bad label file counts as found
  CHECK(s.missing == 1);
  CHECK(s.empty == 1);
  CHECK(s.corrupt == 5);
  CHECK_FALSE(s.from_cache);
  CHECK(s.summary == "train: Scanning '" + (d / "ds/labels/train").string() +
                         "' images and labels... 5 found, 1 missing, 1 empty, 5 corrupt");
  REQUIRE(s.images.size() == 5);
  CHECK(s.images[0].image == (im / "a.png").string());
  CHECK(s.images[0].status == LabelStatus::found);
  CHECK(s.images[0].count() == 2);
  CHECK(s.images[1].width == 24);
  CHECK(s.images[1].height == 32);
  CHECK(s.images[1].count() == 1);
  CHECK(s.images[2].status == LabelStatus::missing);
  CHECK(s.images[3].status == LabelStatus::empty);
  CHECK(s.images[4].segments.size() == 1);
  const std::string pre = "train: WARNING: ";
  CHECK(contains(s.messages, pre + (im / "b.jpg").string() + ": 1 duplicate labels removed"));
  CHECK(contains(
      s.messages,
      pre + (im / "e.png").string() +
          ": ignoring corrupt image/label: non-normalized or out of bounds coordinates "
          "[        1.5]"));
  CHECK(contains(s.messages, pre + (im / "f.jpg").string() +
                                 ": ignoring corrupt image/label: cannot identify image file"));
  CHECK(contains(s.messages, pre + (im / "g.png").string() +
                                 ": ignoring corrupt image/label: image size (9, 40) <10 pixels"));
  CHECK(contains(s.messages, pre + (im / "h.jpg").string() +
                                 ": corrupt JPEG (bytes after its FF D9 end marker)"));
  CHECK(contains(s.messages, pre + (im / "j.jpg").string() +
                                 ": ignoring corrupt image/label: image file is truncated"));
  CHECK(contains(s.messages, pre + (im / "i.jpg").string() +
                                 ": ignoring corrupt image/label: invalid image format GIF"));
  const Bytes h_after = [&] {
    std::ifstream in(im / "h.jpg", std::ios::binary);
    return Bytes(std::istreambuf_iterator<char>(in), {});
  }();
  CHECK(h_after == h_before);
  CHECK_FALSE(fs::exists(s.cache_path));

  const std::vector<std::string> ok = class_range_problems(s, 3, "data.yaml");
  CHECK(ok.empty());
  const std::vector<std::string> bad = class_range_problems(s, 2, "data.yaml");
  REQUIRE(bad.size() == 2);
  CHECK(bad[0] == "Label class 2 exceeds nc=2 in data.yaml. Possible class labels are 0-1");
  CHECK_THAT(bad[1], Catch::StartsWith((lb / "a.txt").string() + ": class [2] >= nc=2"));
}

TEST_CASE(
    "label cache: written, reused, invalidated by a change, a corrupt cache rebuilt, unwritable "
    "folder warns",
    "[data]") {
  TempDir d;
  const fs::path im = d / "ds/images/train", lb = d / "ds/labels/train";
  for (int i = 0; i < 5; ++i) {
    const std::string stem = std::string(1, 'p').append(std::to_string(i));
    write_file(im / (stem + ".png"), png(16, 16 + static_cast<uint32_t>(i)));
    write_text(lb / (stem + ".txt"), std::to_string(i % 3).append(" 0.5 0.5 0.25 0.125\n"));
  }
  write_text(lb / "p4.txt", "0 0.5 0.5 0.1\n");
  const std::vector<std::string> src = {im.string()};
  const LabelScan first = scan_labels(src);
  const fs::path cache = lb.parent_path() / "train.yolocore.cache";
  CHECK(first.cache_path == cache);
  REQUIRE(fs::exists(cache));
  CHECK_FALSE(first.from_cache);
  CHECK(contains(first.cache_messages, "New cache created: " + cache.string()));
  CHECK(first.corrupt == 1);

  const LabelScan second = scan_labels(src);
  CHECK(second.from_cache);
  CHECK(second.summary == "Scanning '" + cache.string() +
                              "' images and labels... 5 found, 0 missing, 0 empty, 1 corrupt");
  CHECK(second.messages == first.messages);
  REQUIRE(second.images.size() == first.images.size());
  for (std::size_t i = 0; i < first.images.size(); ++i) {
    CHECK(second.images[i].image == first.images[i].image);
    CHECK(second.images[i].height == first.images[i].height);
    CHECK(second.images[i].boxes == first.images[i].boxes);
  }

  // Same size, new content and a new mtime: the cache no longer matches.
  const auto t0 = fs::last_write_time(lb / "p1.txt");
  write_text(lb / "p1.txt", "2 0.5 0.5 0.25 0.125\n");
  fs::last_write_time(lb / "p1.txt", t0 + std::chrono::seconds(5));
  const LabelScan third = scan_labels(src);
  CHECK_FALSE(third.from_cache);
  CHECK(third.images[1].boxes[0] == 2.0f);
  CHECK(scan_labels(src).from_cache);
  // A new label file (missing -> found) also changes the hash.
  write_file(im / "q.png", png(16, 16));
  CHECK_FALSE(scan_labels(src).from_cache);
  const LabelScan fresh = scan_labels(src);
  CHECK(fresh.from_cache);
  CHECK(fresh.missing == 1);

  // Corrupt caches: flipped bytes, truncated, garbage, empty. Each is ignored and rebuilt.
  const std::string good = read_text(cache);
  for (int variant = 0; variant < 5; ++variant) {
    std::string bytes = good;
    if (variant == 0) bytes[bytes.size() / 2] ^= 0x5A;
    if (variant == 1) bytes.resize(bytes.size() / 3);
    if (variant == 2) bytes = std::string(333, '\xee');
    if (variant == 3) bytes.clear();
    if (variant == 4) bytes.replace(8, 4, std::string("\x07\0\0\0", 4));  // another version
    write_text(cache, bytes);
    const LabelScan s = scan_labels(src);
    CHECK_FALSE(s.from_cache);
    CHECK(s.images.size() == fresh.images.size());
    CHECK(read_text(cache) == good);
  }

  // Unwritable cache location: a folder sits where the cache file would go. No cache, a warning.
  fs::remove(cache);
  fs::create_directories(cache);
  const LabelScan blocked = scan_labels(src);
  CHECK_FALSE(blocked.from_cache);
  CHECK(contains(blocked.cache_messages,
                 "WARNING: Cache directory " + lb.parent_path().string() + " is not writeable"));
  CHECK(blocked.images.size() == fresh.images.size());
  for (const auto& e : fs::directory_iterator(lb.parent_path()))
    CHECK(e.path().filename().string().find(".tmp") == std::string::npos);
  fs::remove(cache);

  // A read-only dataset folder (only meaningful when not running as root, who may write anyway).
  fs::permissions(lb.parent_path(),
                  fs::perms::owner_write | fs::perms::group_write | fs::perms::others_write,
                  fs::perm_options::remove);
  if (::access(lb.parent_path().c_str(), W_OK) != 0) {
    const LabelScan ro = scan_labels(src);
    CHECK(contains(ro.cache_messages, "is not writeable"));
    CHECK_FALSE(fs::exists(cache));
  } else {
    WARN("running as root: the read-only-folder case is covered by the blocked-path case above");
  }
  fs::permissions(lb.parent_path(), fs::perms::owner_write, fs::perm_options::add);

  // A txt list keeps its cache beside the list.
  write_text(d / "ds/train.txt", "./images/train/p0.png\n./images/train/p1.png\n");
  const LabelScan listed = scan_labels({(d / "ds/train.txt").string()});
  CHECK(listed.cache_path == d / "ds/train.yolocore.cache");
  CHECK(fs::exists(listed.cache_path));
  CHECK(listed.images.size() == 2);
}

TEST_CASE("dataset check: summary, per-class counts, problems and exit codes", "[data]") {
  TempDir d;
  const fs::path root = d / "ds";
  write_file(root / "images/train/a.png", png(20, 20));
  write_text(root / "labels/train/a.txt",
             "0 0.5 0.5 0.1 0.1\n1 0.5 0.5 0.2 0.2\n1 0.2 0.2 0.1 0.1\n");
  write_file(root / "images/train/b.png", png(20, 20));
  write_text(root / "labels/train/b.txt", "0 0.5 0.5 0.1 -0.1\n");
  write_file(root / "images/val/c.bmp", bmp(20, 20));
  write_text(root / "labels/val/c.txt", "2 0.5 0.5 0.1 0.1\n");
  write_text(d / "good.yaml", data_yaml(root));
  auto [rc, text] = check(d / "good.yaml");
  CHECK(rc == 0);
  CHECK_THAT(text, Catch::Contains("train: Scanning '") &&
                       Catch::Contains("2 found, 0 missing, 0 empty, 1 corrupt"));
  CHECK_THAT(text, Catch::Contains((root / "images/train/b.png").string() +
                                   ": ignoring corrupt image/label: negative label values "
                                   "[       -0.1]"));
  CHECK_THAT(text, Catch::Contains("                   dog          1          2"));
  CHECK_THAT(text, Catch::Contains("                  bird          1          1"));
  CHECK_THAT(text, Catch::Contains("dataset is usable"));

  // A class id >= nc makes the set unusable, naming the file.
  write_text(root / "labels/val/c.txt", "3 0.5 0.5 0.1 0.1\n");
  std::tie(rc, text) = check(d / "good.yaml", true);
  CHECK(rc == 1);
  CHECK_THAT(text, Catch::Contains("val: ERROR: Label class 3 exceeds nc=3 in") &&
                       Catch::Contains("Possible class labels are 0-2") &&
                       Catch::Contains((root / "labels/val/c.txt").string()));

  // No label files at all in train: unusable.
  write_text(root / "labels/val/c.txt", "2 0.5 0.5 0.1 0.1\n");
  fs::remove_all(root / "labels/train");
  std::tie(rc, text) = check(d / "good.yaml");
  CHECK(rc == 1);
  CHECK_THAT(text, Catch::Contains("0 found, 2 missing") && Catch::Contains("No labels in"));

  // A broken yaml is reported, not thrown; bad arguments give 2.
  write_text(d / "bad.yaml", "train: images/train\n");
  std::tie(rc, text) = check(d / "bad.yaml");
  CHECK(rc == 1);
  CHECK_THAT(text,
             Catch::Contains("ERROR: dataset yaml") && Catch::Contains("'val:' field missing"));
  std::string w0 = "check", w1 = "--bogus";
  char* argv[] = {w0.data(), w1.data()};
  std::FILE* sink = std::tmpfile();
  CHECK(run_dataset_check(2, argv, sink) == 2);
  CHECK(run_dataset_check(1, argv, sink) == 2);
  std::fclose(sink);
}
