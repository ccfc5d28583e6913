// scan_labels (yolo/data/labels.h) against the reference's own label checks on a crafted bad
// dataset: tests/fixtures/label_checks.json, written by tools/parity/make_label_check_fixtures.py
// from the outcome of ultralytics' LoadImagesAndLabels on the same bytes. The test rebuilds the
// files in a temporary folder, scans them and compares every file's outcome (kept or dropped,
// counts, labels bit-exact, polygons, size, messages), the totals and the summary line. Where
// yolocore differs from the reference, the expected outcome is edited in apply_differences() below,
// each edit naming the difference and why it is there.
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/harness.h"
#include "yolo/data/labels.h"

using namespace yolo;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const json& fixture() {
  static const json doc = [] {
    const auto path = fs::path(__FILE__).parent_path() / "fixtures" / "label_checks.json";
    std::ifstream in(path);
    REQUIRE(in.good());
    return json::parse(in);
  }();
  return doc;
}

std::string base64_decode(const std::string& text) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    if (c == '=') break;
    const int v = value(c);
    if (v < 0) FAIL("not base64: '" << c << "'");
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  return out;
}

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (auto at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
  return s;
}

// One image's expected scan outcome, in the fixture's "{root}" notation.
struct Expected {
  bool listed = true;  // false: yolocore's listing does not return this path at all
  bool kept = false;
  int missing = 0, found = 0, empty = 0, corrupt = 0;
  std::vector<std::string> messages;
  int width = 0, height = 0;
  std::vector<float> boxes;  // (n, 5)
  std::vector<std::vector<float>> segments;
};

std::vector<float> floats(const json& a) {
  std::vector<float> out;
  for (const auto& v : a) out.push_back(static_cast<float>(v.get<double>()));
  return out;
}

// The reference's outcomes keyed by image path ("{root}/images/...").
std::map<std::string, Expected> reference_outcomes(const json& doc) {
  std::map<std::string, Expected> out;
  for (const auto& r : doc.at("results")) {
    Expected e;
    e.kept = r.at("kept").get<bool>();
    e.missing = r.at("missing").get<int>();
    e.found = r.at("found").get<int>();
    e.empty = r.at("empty").get<int>();
    e.corrupt = r.at("corrupt").get<int>();
    if (!r.at("message").get<std::string>().empty())
      e.messages.push_back(r.at("message").get<std::string>());
    if (e.kept) {
      e.width = r.at("size")[0].get<int>();
      e.height = r.at("size")[1].get<int>();
      for (const auto& row : r.at("labels")) {
        const auto v = floats(row);
        e.boxes.insert(e.boxes.end(), v.begin(), v.end());
      }
      for (const auto& s : r.at("segments")) e.segments.push_back(floats(s));
    }
    out.emplace(r.at("image").get<std::string>(), std::move(e));
  }
  return out;
}

Expected& at(std::map<std::string, Expected>& m, const std::string& image) {
  const auto it = m.find("{root}/images/" + image);
  REQUIRE(it != m.end());
  return it->second;
}

void make_corrupt(Expected& e, const std::string& image, const std::string& reason) {
  e.kept = false;
  e.missing = e.found = e.empty = 0;
  e.corrupt = 1;
  e.messages = {"WARNING: {root}/images/" + image + ": ignoring corrupt image/label: " + reason};
  e.boxes.clear();
  e.segments.clear();
}

// Every place where yolocore's scan differs from the reference on this dataset.
void apply_differences(std::map<std::string, Expected>& m, const json& doc) {
  // ---- Intentional, documented differences ----

  // A JPEG with bytes after its FF D9 marker: the reference re-saves it in place ("corrupt JPEG
  // restored and saved"); yolocore reads it as it is and never modifies a user's file (Note [JPEG
  // end marker] in labels.cpp). The test also checks below that no file changed.
  at(m, "trailing.jpg").messages = {
      "WARNING: {root}/images/trailing.jpg: corrupt JPEG (bytes after its FF D9 end marker); read "
      "as it is, the file is left unchanged"};

  // Orientation 5 (transpose) stores the picture transposed like 6 and 8; the reference's
  // exif_size swaps width and height only for 6 and 8, yolocore for 5-8, matching the image the
  // decoder returns (Note [EXIF orientation and size] in image_probe.cpp).
  {
    Expected& e = at(m, "exif5.jpg");
    std::swap(e.width, e.height);
  }

  // PIL reads TIFF and WebP; yolocore's decoder does not, so its scan drops them with a message
  // saying what to do (image_probe.h: "TIFF/WebP which yolocore cannot decode").
  make_corrupt(at(m, "tiff.tif"), "tiff.tif",
               "TIFF images are not supported (yolocore reads JPEG, PNG, BMP, GIF and TGA); "
               "convert it, e.g. to PNG");
  make_corrupt(at(m, "webp.webp"), "webp.webp",
               "WebP images are not supported (yolocore reads JPEG, PNG, BMP, GIF and TGA); "
               "convert it, e.g. to PNG");

  // Duplicate rows in a polygon file: the reference indexes its list of polygons with an index
  // array, which raises, and drops the image; yolocore removes the duplicates and re-orders the
  // polygons with their boxes (Note [Label checks] in labels.cpp). The expected rows are the
  // reference's own segments2boxes + np.unique steps carried to the end by the fixture tool.
  {
    const json& d = doc.at("polydup_deduplicated");
    Expected& e = at(m, "polydup.png");
    e.kept = true;
    e.corrupt = 0;
    e.found = 1;
    e.width = e.height = 24;
    e.boxes.clear();
    for (const auto& row : d.at("labels")) {
      const auto v = floats(row);
      e.boxes.insert(e.boxes.end(), v.begin(), v.end());
    }
    for (const auto& s : d.at("segments")) e.segments.push_back(floats(s));
    e.messages = {"WARNING: {root}/images/polydup.png: " +
                  std::to_string(d.at("removed").get<int>()) + " duplicate labels removed"};
  }

  // ---- Different wording for the same outcome: the reference passes on a library's exception
  // text (NumPy, PIL); yolocore says what is wrong in its own words ----

  // Rows of different lengths: numpy's "setting an array element with a sequence. ..." in the
  // reference; yolocore names the lines.
  at(m, "ragged.png").messages = {
      "WARNING: {root}/images/ragged.png: ignoring corrupt image/label: "
      "labels require 5 columns, line 2 has 4 and line 1 has 5"};
  // An odd coordinate count in a polygon file: numpy's "cannot reshape array of size 7 into shape
  // (2)" in the reference.
  at(m, "polyodd.png").messages = {
      "WARNING: {root}/images/polyodd.png: ignoring corrupt image/label: polygon row 1 has 7 "
      "coordinates; a polygon needs x y pairs (class x1 y1 x2 y2 ...)"};
  // Unreadable images: PIL's "cannot identify image file '<path>'" in the reference.
  at(m, "corrupt.jpg").messages = {
      "WARNING: {root}/images/corrupt.jpg: ignoring corrupt "
      "image/label: cannot identify image file (not JPEG, PNG, BMP, "
      "GIF or TGA; 311 bytes)"};
  at(m, "zero.png").messages = {
      "WARNING: {root}/images/zero.png: ignoring corrupt image/label: "
      "cannot identify image file (not JPEG, PNG, BMP, GIF or TGA; 0 "
      "bytes)"};

  // A JPEG cut inside its headers: both drop it; PIL says "Truncated File Read".
  at(m, "trunc_half.jpg").messages = {
      "WARNING: {root}/images/trunc_half.jpg: ignoring corrupt image/label: truncated file while "
      "reading JPEG segment at byte 393"};

  // A JPEG whose data ends before FF D9: both drop it; PIL's text counts the bytes it did not
  // process ("image file is truncated (26 bytes not processed)").
  at(m, "trunc_eoi.jpg").messages = {
      "WARNING: {root}/images/trunc_eoi.jpg: ignoring corrupt image/label: image file is truncated "
      "(no FF D9 end marker)"};

  // A folder named like an image: both list it (glob's **/*.* matches it) and drop it; Python
  // says "[Errno 21] Is a directory: '<path>'".
  at(m, "dir.jpg").messages = {
      "WARNING: {root}/images/dir.jpg: ignoring corrupt image/label: Is a directory: "
      "'{root}/images/dir.jpg'"};
}

}  // namespace

TEST_CASE("scan_labels matches the reference's label checks on a crafted bad dataset",
          "[data][labels]") {
  const json& doc = fixture();
  const fs::path root =
      fs::temp_directory_path() / ("yolo_label_fixture_" + std::to_string(::getpid())) / "ds";
  fs::remove_all(root.parent_path());
  std::map<std::string, std::string> written;
  for (const auto& f : doc.at("files")) {
    const std::string rel = f.at("path").get<std::string>();
    const std::string bytes = base64_decode(f.at("base64").get<std::string>());
    fs::create_directories((root / rel).parent_path());
    std::ofstream(root / rel, std::ios::binary)
        .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    written[rel] = bytes;
  }
  const std::string r = root.string();
  auto real = [&](const std::string& s) { return replace_all(s, "{root}", r); };
  auto symbolic = [&](const std::string& s) { return replace_all(s, r, "{root}"); };

  std::map<std::string, Expected> expected = reference_outcomes(doc);
  apply_differences(expected, doc);

  ScanOptions options;
  options.use_cache = false;
  options.threads = 2;
  const LabelScan scan = scan_labels({real(doc.at("source").get<std::string>())}, options);

  // Listing: the reference's order (byte-wise sorted paths), less what yolocore does not list.
  std::vector<std::string> want_listed;
  for (const auto& f : doc.at("listed")) {
    const std::string p = f.get<std::string>();
    if (expected.at(p).listed) want_listed.push_back(p);
  }
  std::vector<std::string> got_listed;
  for (const auto& f : list_image_files({real(doc.at("source").get<std::string>())}))
    got_listed.push_back(symbolic(f));
  CHECK(got_listed == want_listed);
  for (const auto& ignored : doc.at("ignored")) {
    const std::string p = "{root}/" + ignored.get<std::string>();
    CHECK(std::find(got_listed.begin(), got_listed.end(), p) == got_listed.end());
  }

  // Per file.
  std::map<std::string, const ImageLabels*> kept;
  for (const auto& im : scan.images) kept[symbolic(im.image)] = &im;
  std::vector<std::string> want_messages;
  int found = 0, missing = 0, empty = 0, corrupt = 0;
  for (const auto& image : want_listed) {
    const Expected& e = expected.at(image);
    INFO(image);
    found += e.found, missing += e.missing, empty += e.empty, corrupt += e.corrupt;
    want_messages.insert(want_messages.end(), e.messages.begin(), e.messages.end());
    std::vector<std::string> got_messages;
    const std::string tag = real(image) + ": ";
    for (const auto& msg : scan.messages)
      if (msg.find(tag) != std::string::npos) got_messages.push_back(symbolic(msg));
    CHECK(got_messages == e.messages);
    const auto it = kept.find(image);
    REQUIRE((it != kept.end()) == e.kept);
    if (!e.kept) continue;
    const ImageLabels& im = *it->second;
    CHECK(im.width == e.width);
    CHECK(im.height == e.height);
    const LabelStatus status = e.missing ? LabelStatus::missing
                               : e.empty ? LabelStatus::empty
                                         : LabelStatus::found;
    CHECK(im.status == status);
    CHECK(im.boxes == e.boxes);  // float32, bit-exact
    CHECK(im.segments.size() == e.segments.size());
    CHECK(im.segments == e.segments);
  }

  // Totals and the summary, as the reference's cache_labels counts and prints them.
  const json& totals = doc.at("totals");
  int ref_found = 0, ref_missing = 0, ref_empty = 0, ref_corrupt = 0;
  for (const auto& rec : doc.at("results")) {
    ref_found += rec.at("found").get<int>(), ref_missing += rec.at("missing").get<int>();
    ref_empty += rec.at("empty").get<int>(), ref_corrupt += rec.at("corrupt").get<int>();
  }
  REQUIRE(ref_found == totals.at("found").get<int>());  // the fixture is self-consistent
  REQUIRE(ref_missing == totals.at("missing").get<int>());
  REQUIRE(ref_empty == totals.at("empty").get<int>());
  REQUIRE(ref_corrupt == totals.at("corrupt").get<int>());
  CHECK(scan.found == found);
  CHECK(scan.missing == missing);
  CHECK(scan.empty == empty);
  CHECK(scan.corrupt == corrupt);
  CHECK(scan.total == static_cast<int>(want_listed.size()));
  CHECK(scan.images.size() == kept.size());
  std::vector<std::string> got_messages;
  for (const auto& m : scan.messages) got_messages.push_back(symbolic(m));
  CHECK(got_messages == want_messages);
  const std::string counts = std::to_string(found) + " found, " + std::to_string(missing) +
                             " missing, " + std::to_string(empty) + " empty, " +
                             std::to_string(corrupt) + " corrupt";
  CHECK(symbolic(scan.summary) == "Scanning '{root}/labels' images and labels... " + counts);
  const std::string ref_summary = doc.at("summary").get<std::string>();
  CHECK(ref_summary.substr(0, ref_summary.find("... ") + 4) ==
        "Scanning '{root}/labels' images and labels... ");

  // No file is modified (the reference rewrote the ones in rewritten_by_reference).
  CHECK_FALSE(doc.at("rewritten_by_reference").empty());
  for (const auto& [rel, bytes] : written) {
    INFO(rel);
    CHECK(read_bytes(root / rel) == bytes);
  }
  std::error_code ec;
  fs::remove_all(root.parent_path(), ec);
}
