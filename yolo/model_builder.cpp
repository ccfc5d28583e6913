// Reading a model yaml into a ModelConfig (yaml-cpp): the required keys, the rows of backbone and
// head, and parse_model's eval of string arguments. Every error names the file and the row.
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "yolo/model.h"

namespace yolo {
namespace {

using nn::Arg;

const char* kKeys = "nc, depth_multiple, width_multiple, anchors, backbone, head";

bool parse_int(const std::string& s, int64_t* out) {
  if (s.empty()) return false;
  size_t pos = 0;
  try {
    const long long v = std::stoll(s, &pos, 10);
    if (pos != s.size()) return false;
    *out = v;
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

bool parse_real(const std::string& s, double* out) {
  if (s.empty()) return false;
  size_t pos = 0;
  try {
    const double v = std::stod(s, &pos);
    if (pos != s.size()) return false;
    *out = v;
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

// A yaml value as PyYAML's safe_load would give it (numbers, bools, None, strings, lists).
Arg to_arg(const YAML::Node& node, const std::string& where) {
  if (node.IsSequence()) {
    std::vector<Arg> items;
    for (const auto& item : node) items.push_back(to_arg(item, where));
    return Arg::of_list(std::move(items));
  }
  if (node.IsNull()) return Arg::none();
  YOLO_CHECK(node.IsScalar(), where << ": a mapping is not a valid argument");
  const std::string s = node.Scalar();
  if (node.Tag() == "!") return Arg::string(s);  // quoted: a string
  int64_t i = 0;
  double r = 0.0;
  if (parse_int(s, &i)) return Arg::integer(i);
  if (parse_real(s, &r)) return Arg::real(r);
  if (s == "true" || s == "True" || s == "TRUE") return Arg::boolean(true);
  if (s == "false" || s == "False" || s == "FALSE") return Arg::boolean(false);
  if (s == "~" || s == "null" || s == "Null" || s == "NULL") return Arg::none();
  return Arg::string(s);
}

}  // namespace

Arg evaluate_model_arg(const Arg& a, const ModelConfig& cfg) {
  if (a.kind != Arg::Kind::string) return a;
  if (a.s == "None") return Arg::none();
  if (a.s == "True") return Arg::boolean(true);
  if (a.s == "False") return Arg::boolean(false);
  if (a.s == "nc") return Arg::integer(cfg.nc);
  if (a.s == "anchors") return cfg.anchors;
  if (a.s == "gd") return Arg::real(cfg.depth_multiple);
  if (a.s == "gw") return Arg::real(cfg.width_multiple);
  int64_t i = 0;
  double r = 0.0;
  if (parse_int(a.s, &i)) return Arg::integer(i);
  if (parse_real(a.s, &r)) return Arg::real(r);
  return a;  // NameError in the reference: the string stays ('nearest')
}

namespace {

double number(const YAML::Node& root, const char* key, const std::string& source) {
  const Arg a = to_arg(root[key], source);
  YOLO_CHECK(a.is_number(), source << ": '" << key << "' must be a number, got " << a.repr());
  return a.kind == Arg::Kind::integer ? double(a.i) : a.r;
}

}  // namespace

ModelConfig parse_model_config(const std::string& yaml_text, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    YOLO_FAIL(source << ": not valid YAML: " << e.what());
  }
  YOLO_CHECK(root.IsMap(), source << ": a model yaml must be a mapping with the keys " << kKeys);
  for (const char* key : {"nc", "depth_multiple", "width_multiple", "anchors", "backbone", "head"}) {
    YOLO_CHECK(root[key] && !root[key].IsNull(),
               source << ": missing key '" << key << "' (a model yaml needs " << kKeys << ")");
  }
  ModelConfig cfg;
  cfg.source = source;
  cfg.yaml_text = yaml_text;
  const double nc = number(root, "nc", source);
  YOLO_CHECK(nc >= 1 && nc == std::floor(nc), source << ": 'nc' must be a positive integer, got " << nc);
  cfg.nc = int64_t(nc);
  cfg.depth_multiple = number(root, "depth_multiple", source);
  cfg.width_multiple = number(root, "width_multiple", source);
  YOLO_CHECK(cfg.depth_multiple > 0 && cfg.width_multiple > 0,
             source << ": depth_multiple and width_multiple must be positive");
  if (root["ch"]) cfg.ch = int64_t(number(root, "ch", source));
  cfg.anchors = to_arg(root["anchors"], source + ": anchors");
  YOLO_CHECK(cfg.anchors.kind == Arg::Kind::list || cfg.anchors.kind == Arg::Kind::integer,
             source << ": 'anchors' must be a list of levels (w, h pixel pairs) or an anchor count, got "
                    << cfg.anchors.repr());
  int index = 0;
  for (const char* part : {"backbone", "head"}) {
    const YAML::Node rows = root[part];
    YOLO_CHECK(rows.IsSequence(), source << ": '" << part << "' must be a list of [from, number, module, args] rows");
    for (const auto& row : rows) {
      std::ostringstream where;
      where << source << ": row " << index;
      YOLO_CHECK(row.IsSequence() && row.size() == 4,
                 where.str() << " must be [from, number, module, args], got " << YAML::Dump(row));
      ModelConfig::Row r;
      const Arg from = to_arg(row[0], where.str());
      if (from.kind == Arg::Kind::integer) {
        r.from = {int(from.i)};
      } else {
        YOLO_CHECK(from.kind == Arg::Kind::list && !from.list.empty(),
                   where.str() << ": `from` must be a layer index or a list of them, got " << from.repr());
        r.from_is_list = true;
        for (const Arg& f : from.list) {
          YOLO_CHECK(f.kind == Arg::Kind::integer, where.str() << ": `from` entries must be integers, got " << from.repr());
          r.from.push_back(int(f.i));
        }
      }
      const Arg n = to_arg(row[1], where.str());
      YOLO_CHECK(n.kind == Arg::Kind::integer && n.i >= 1,
                 where.str() << ": `number` must be a positive integer, got " << n.repr());
      r.number = int(n.i);
      YOLO_CHECK(row[2].IsScalar(), where.str() << ": `module` must be a name");
      r.module = row[2].Scalar();
      const Arg args = to_arg(row[3], where.str());
      YOLO_CHECK(args.kind == Arg::Kind::list, where.str() << ": `args` must be a list, got " << args.repr());
      r.args = args.list;
      cfg.rows.push_back(std::move(r));
      ++index;
    }
  }
  YOLO_CHECK(!cfg.rows.empty(), source << ": the model has no rows");
  return cfg;
}

ModelConfig load_model_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  YOLO_CHECK(in.good(), "cannot open model yaml '" << path << "'");
  std::ostringstream text;
  text << in.rdbuf();
  return parse_model_config(text.str(), path);
}

}  // namespace yolo
