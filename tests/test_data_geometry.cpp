// The data pipeline's geometry (yolo/data/geometry.h) against tests/fixtures/geometry.json, which
// tools/parity/make_geometry_fixtures.py writes by running the reference's own load_image,
// letterbox, xywhn2xyxy / xyxy2xywhn and LoadImagesAndLabels(rect=True) on synthetic sizes.
// Integers must match exactly; floats to kGeometry (relative).
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/harness.h"
#include "yolo/data/geometry.h"

using namespace yolo;
using nlohmann::json;

namespace {

constexpr double kGeometry = 1e-6;  // relative; the fixtures' floats are float32/float64 values

const json& fixture() {
  static const json doc = [] {
    const auto path = std::filesystem::path(__FILE__).parent_path() / "fixtures" / "geometry.json";
    std::ifstream in(path);
    REQUIRE(in.good());
    return json::parse(in);
  }();
  return doc;
}

bool rel_close(double got, double want) {
  return std::abs(got - want) <= kGeometry * std::max(std::abs(got), std::abs(want));
}

void require_floats(const std::vector<float>& got, const json& want, const std::string& what) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO(what << "[" << i << "]: got " << got[i] << " want " << want[i].get<double>());
    REQUIRE(rel_close(got[i], want[i].get<double>()));
  }
}

const char* interp_name(Interp i) {
  switch (i) {
    case Interp::linear:
      return "linear";
    case Interp::area:
      return "area";
    case Interp::none:
      break;
  }
  return "none";
}

}  // namespace

TEST_CASE("load_image_size matches the reference's load_image", "[data][geometry]") {
  const json& cases = fixture().at("load_image");
  REQUIRE(cases.size() >= 40);
  for (const json& c : cases) {
    INFO(c.dump());
    const LoadSize s = load_image_size(c["h0"], c["w0"], c["img_size"], c["augment"]);
    REQUIRE(s.h == c["h"].get<int>());
    REQUIRE(s.w == c["w"].get<int>());
    REQUIRE(std::string(interp_name(s.interp)) == c["interp"].get<std::string>());
  }
}

TEST_CASE("letterbox_params matches the reference's letterbox", "[data][geometry]") {
  const json& cases = fixture().at("letterbox");
  REQUIRE(cases.size() >= 100);
  for (const json& c : cases) {
    INFO(c.dump());
    const LetterboxParams p = letterbox_params(c["h"], c["w"], c["new_h"], c["new_w"], c["auto"],
                                               c["scale_fill"], c["scaleup"], c["stride"]);
    REQUIRE(p.unpad_w == c["unpad_w"].get<int>());
    REQUIRE(p.unpad_h == c["unpad_h"].get<int>());
    REQUIRE(p.top == c["top"].get<int>());
    REQUIRE(p.bottom == c["bottom"].get<int>());
    REQUIRE(p.left == c["left"].get<int>());
    REQUIRE(p.right == c["right"].get<int>());
    REQUIRE(p.out_h() == c["out_h"].get<int>());
    REQUIRE(p.out_w() == c["out_w"].get<int>());
    REQUIRE(p.dw == c["dw"].get<double>());  // halves of integers: exact
    REQUIRE(p.dh == c["dh"].get<double>());
    REQUIRE(rel_close(p.ratio_w, c["ratio"][0].get<double>()));
    REQUIRE(rel_close(p.ratio_h, c["ratio"][1].get<double>()));
  }
}

TEST_CASE("letterbox_params rounds halves as Python does", "[data][geometry]") {
  // 100x101 into 64x64: r = 64/101, unpad 63x64, dh = 0.5 -> top 0, bottom 1.
  const LetterboxParams p = letterbox_params(100, 101, 64, 64, false, false, true, 32);
  CHECK(p.unpad_h == 63);
  CHECK(p.dh == 0.5);
  CHECK(p.top == 0);
  CHECK(p.bottom == 1);
  // w * r = 2.5 exactly (5 px into a 1.0 / 2 scale): round-half-even gives 2, not 3.
  CHECK(letterbox_params(10, 5, 5, 5, false, false, true, 32).unpad_w == 2);
  REQUIRE_THROWS_WITH(letterbox_params(0, 5, 5, 5, true, false, true, 32), Catch::Contains("0x5"));
}

TEST_CASE("xywhn_to_xyxy and xyxy_to_xywhn match the reference's label transforms",
          "[data][geometry]") {
  int n = 0;
  for (const json& c : fixture().at("letterbox")) {
    if (!c.contains("labels")) continue;
    INFO(c.dump());
    const json& l = c["labels"];
    const auto boxes = l["xywhn"].get<std::vector<float>>();
    const double rw = c["ratio"][0], rh = c["ratio"][1];
    const auto xyxy =
        xywhn_to_xyxy(boxes, rw * l["w"].get<int>(), rh * l["h"].get<int>(), c["dw"], c["dh"]);
    require_floats(xyxy, l["xyxy"], "xyxy");
    const auto ref_xyxy = l["xyxy"].get<std::vector<float>>();
    require_floats(
        xyxy_to_xywhn(ref_xyxy, c["out_w"].get<int>(), c["out_h"].get<int>(), true, l["eps"]),
        l["back"], "back");
    require_floats(xyxy_to_xywhn(ref_xyxy, c["out_w"].get<int>(), c["out_h"].get<int>()),
                   l["back_noclip"], "back_noclip");
    ++n;
  }
  REQUIRE(n >= 50);
  REQUIRE_THROWS_WITH(xywhn_to_xyxy(std::vector<float>(5), 1, 1), Catch::Contains("5 values"));
}

TEST_CASE("rect_batch_shapes matches LoadImagesAndLabels(rect=True)", "[data][geometry]") {
  const json& cases = fixture().at("rect");
  REQUIRE(cases.size() >= 24);
  int with_ties = 0;
  for (const json& c : cases) {
    INFO(c["list"] << " img_size " << c["img_size"] << " stride " << c["stride"] << " batch "
                   << c["batch_size"] << " pad " << c["pad"]);
    const auto shapes = c["shapes_wh"].get<std::vector<std::pair<int, int>>>();
    const RectBatches rb =
        rect_batch_shapes(shapes, c["batch_size"], c["img_size"], c["stride"], c["pad"]);
    REQUIRE(rb.order ==
            c["order"].get<std::vector<int64_t>>());  // NumPy's unstable order, ties too
    const auto want = c["batch_shapes"].get<std::vector<std::pair<int, int>>>();
    REQUIRE(rb.shapes_hw == want);
    with_ties += c["ties"].get<bool>() ? 1 : 0;
  }
  REQUIRE(with_ties > 0);
  REQUIRE_THROWS_WITH(rect_batch_shapes({{640, 0}}, 8, 640, 32, 0.5), Catch::Contains("640x0"));
}
