// Tests for the synthetic shapes dataset (yolo/data/shapes_dataset): same seed -> same bytes
// whatever the thread count, sane ultralytics labels for every image, a data.yaml that parses,
// and the `yolo dataset shapes` option handling.
//   yolo_tests "[shapes]"
#include <omp.h>
#include <stdlib.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "tests/harness.h"
#include "yolo/data/shapes_dataset.h"

using namespace yolo;
namespace fs = std::filesystem;

namespace {

// Normalised label values carry 6 decimals: a box edge may round past 0 or 1 by half a unit.
constexpr double kLabelRounding = 0.5e-6 * 2;

struct TempDir {
  fs::path dir;
  TempDir() {
    std::string name = (fs::temp_directory_path() / "yolo_shapes_XXXXXX").string();
    REQUIRE(::mkdtemp(name.data()) != nullptr);
    dir = name;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

std::string read_all(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  REQUIRE(f.good());
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Every file under `root`, relative path -> bytes.
std::vector<std::pair<std::string, std::string>> snapshot(const fs::path& root) {
  std::vector<std::pair<std::string, std::string>> files;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (e.is_regular_file())
      files.emplace_back(fs::relative(e.path(), root).string(), read_all(e.path()));
  }
  std::sort(files.begin(), files.end());
  return files;
}

ShapesOptions small_options(const fs::path& dir, uint64_t seed) {
  ShapesOptions o;
  o.out_dir = dir.string();
  o.train = 14;
  o.val = 5;
  o.imgsz = 96;
  o.classes = 8;
  o.seed = seed;
  return o;
}

std::string without_path_line(const std::string& yaml) {
  std::string out, line;
  std::istringstream in(yaml);
  while (std::getline(in, line)) {
    if (line.rfind("path:", 0) != 0) out += line + "\n";
  }
  return out;
}

}  // namespace

TEST_CASE("shapes dataset is byte-identical for the same seed and any thread count", "[shapes]") {
  const uint64_t seed = test::seed(1) % 1000000;
  TempDir a, b;
  const int threads = omp_get_max_threads();
  write_shapes_dataset(small_options(a.dir, seed));
  omp_set_num_threads(1);
  write_shapes_dataset(small_options(b.dir, seed));
  omp_set_num_threads(threads);
  auto sa = snapshot(a.dir), sb = snapshot(b.dir);
  REQUIRE(sa.size() == 2 * (14 + 5) + 1);
  REQUIRE(sa.size() == sb.size());
  for (size_t i = 0; i < sa.size(); ++i) {
    INFO(sa[i].first);
    REQUIRE(sa[i].first == sb[i].first);
    if (sa[i].first == "data.yaml") {
      REQUIRE(without_path_line(sa[i].second) == without_path_line(sb[i].second));
    } else {
      REQUIRE(sa[i].second == sb[i].second);
    }
  }
  // Regenerating into the same folder rewrites the same bytes.
  write_shapes_dataset(small_options(a.dir, seed));
  REQUIRE(snapshot(a.dir) == sa);
  // Another seed gives other images.
  TempDir c;
  write_shapes_dataset(small_options(c.dir, seed + 1));
  REQUIRE(read_all(c.dir / "images/train/000000.jpg") !=
          read_all(a.dir / "images/train/000000.jpg"));
}

TEST_CASE("shapes images are independent of the others in the set", "[shapes]") {
  const uint64_t seed = test::seed(2) % 1000000;
  TempDir a;
  ShapesOptions o = small_options(a.dir, seed);
  write_shapes_dataset(o);
  for (int i : {0, 7, 13}) {
    const ShapesSample s = render_shapes_image(seed, 0, i, o.imgsz, o.classes);
    char stem[16];
    std::snprintf(stem, sizeof(stem), "%06d", i);
    const std::vector<uint8_t> jpg = encode_jpeg(s.image, o.jpeg_quality);
    REQUIRE(read_all(a.dir / "images/train" / (std::string(stem) + ".jpg")) ==
            std::string(jpg.begin(), jpg.end()));
    REQUIRE(read_all(a.dir / "labels/train" / (std::string(stem) + ".txt")) ==
            shapes_label_text(s));
    REQUIRE(std::max(s.image.width, s.image.height) == o.imgsz);
  }
  // A val image does not depend on how many train images there are.
  const ShapesSample v = render_shapes_image(seed, 1, 2, o.imgsz, o.classes);
  const std::vector<uint8_t> vj = encode_jpeg(v.image, o.jpeg_quality);
  REQUIRE(read_all(a.dir / "images/val/000002.jpg") == std::string(vj.begin(), vj.end()));
}

TEST_CASE("shapes labels are sane for every image", "[shapes]") {
  TempDir a;
  ShapesOptions o = small_options(a.dir, test::seed(3) % 1000000);
  o.train = 60;
  o.classes = 5;
  write_shapes_dataset(o);
  int64_t boxes = 0;
  std::set<int> classes_seen;
  for (const char* split : {"train", "val"}) {
    const int n = std::string(split) == "train" ? o.train : o.val;
    int images = 0;
    for (const auto& e : fs::directory_iterator(a.dir / "images" / split)) {
      ++images;
      const fs::path label = a.dir / "labels" / split / (e.path().stem().string() + ".txt");
      INFO(label.string());
      REQUIRE(fs::exists(label));
      const DecodedImage d = decode_image_file(e.path().string());
      REQUIRE(std::max(d.image.width, d.image.height) == o.imgsz);
      std::istringstream in(read_all(label));
      std::string line;
      std::set<std::string> seen;
      while (std::getline(in, line)) {
        INFO(line);
        REQUIRE(seen.insert(line).second);  // no duplicate rows
        std::istringstream fields(line);
        int cls = -1;
        double x, y, w, h;
        REQUIRE(static_cast<bool>(fields >> cls >> x >> y >> w >> h));
        std::string extra;
        REQUIRE_FALSE(static_cast<bool>(fields >> extra));
        REQUIRE(cls >= 0);
        REQUIRE(cls < o.classes);
        REQUIRE(w > 0);
        REQUIRE(h > 0);
        REQUIRE(x - w / 2 >= -kLabelRounding);
        REQUIRE(y - h / 2 >= -kLabelRounding);
        REQUIRE(x + w / 2 <= 1 + kLabelRounding);
        REQUIRE(y + h / 2 <= 1 + kLabelRounding);
        REQUIRE(w * d.image.width >= 3 - 1e-3);
        REQUIRE(h * d.image.height >= 3 - 1e-3);
        classes_seen.insert(cls);
        ++boxes;
      }
    }
    REQUIRE(images == n);
  }
  REQUIRE(boxes > 0);
  REQUIRE(static_cast<int>(classes_seen.size()) == o.classes);
}

TEST_CASE("shapes data.yaml parses with the paths, nc and names", "[shapes]") {
  TempDir a;
  ShapesOptions o = small_options(a.dir, 5);
  o.classes = 3;
  const ShapesSummary s = write_shapes_dataset(o);
  REQUIRE(s.images == o.train + o.val);
  const YAML::Node y = YAML::LoadFile(s.data_yaml);
  REQUIRE(fs::path(y["path"].as<std::string>()) == fs::absolute(a.dir).lexically_normal());
  REQUIRE(y["train"].as<std::string>() == "images/train");
  REQUIRE(y["val"].as<std::string>() == "images/val");
  REQUIRE(y["nc"].as<int>() == 3);
  REQUIRE(y["names"].IsSequence());
  REQUIRE(y["names"].as<std::vector<std::string>>() ==
          std::vector<std::string>{"rectangle", "ellipse", "triangle"});
}

TEST_CASE("shapes command line parses options and refuses bad ones", "[shapes]") {
  TempDir a;
  const std::string out = (a.dir / "set").string();
  std::vector<std::string> args = {"--out",   out,  "--train",   "3", "--val",  "2",
                                   "--imgsz", "64", "--classes", "2", "--seed", "11"};
  auto run = [](std::vector<std::string> v) {
    std::vector<char*> argv;
    for (std::string& s : v) argv.push_back(s.data());
    std::FILE* sink = std::tmpfile();
    const int rc = run_dataset_shapes(static_cast<int>(argv.size()), argv.data(), sink);
    std::fclose(sink);
    return rc;
  };
  REQUIRE(run(args) == 0);
  REQUIRE(fs::exists(fs::path(out) / "images/train/000002.jpg"));
  REQUIRE(fs::exists(fs::path(out) / "labels/val/000001.txt"));
  REQUIRE_FALSE(fs::exists(fs::path(out) / "images/train/000003.jpg"));
  REQUIRE(YAML::LoadFile(out + "/data.yaml")["nc"].as<int>() == 2);
  REQUIRE(run({"--help"}) == 0);
  REQUIRE_THROWS_WITH(run({"--train", "3"}), Catch::Contains("--out"));
  REQUIRE_THROWS_WITH(run({"--out", out, "--classes", "9"}), Catch::Contains("--classes"));
  REQUIRE_THROWS_WITH(run({"--out", out, "--imgsz", "12x"}), Catch::Contains("--imgsz"));
  REQUIRE_THROWS_WITH(run({"--out", out, "--bogus"}), Catch::Contains("--bogus"));
  // A smaller set into the same folder would leave stale files behind: refused.
  REQUIRE_THROWS_WITH(
      run({"--out", out, "--train", "2", "--val", "2", "--imgsz", "64", "--classes", "2"}),
      Catch::Contains("000002.jpg"));
}
