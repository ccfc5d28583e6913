// Data yaml reading and path resolution (see dataset_config.h).
#include "yolo/data/dataset_config.h"

#include <yaml-cpp/yaml.h>

#include <fstream>
#include <map>
#include <sstream>

#include "core/error.h"

namespace yolo {

// Note [Dataset yaml rules]
// As check_dataset and train.py at the reference commit, with the fixes newer ultralytics made:
// - `train` and `val` are required; each is a string or a list of strings (folder, .txt list of
//   image paths, or one image). `test` is optional; an empty value means absent.
// - `names` is a list or a dict whose keys are the integers 0..n-1. Without `names`, nc default
//   names class0, class1, ... are made (the reference's warning). Without `nc`, nc = len(names).
//   With both, len(names) must equal nc (train.py's assert).
// - `path` is the root that relative entries are joined to. The reference resolves a relative
//   `path` against its own repository root, which has no equivalent here; we try, in order, the
//   yaml's folder, that folder's parent (the repository root when the yaml sits in yolov5/data/),
//   and the working directory, and take the first root where every train and val entry exists.
//   An entry starting with ../ that does not exist is retried without it (Roboflow exports write
//   train: ../train/images beside the yaml).
// - `download` is kept only to mention in the not-found message: yolocore never runs it.

namespace {

struct Where {
  std::string file;
  std::string error(const std::string& key, const std::string& what, const std::string& fix) const {
    std::ostringstream s;
    s << "dataset yaml " << file;
    if (!key.empty()) s << ", key '" << key << ":'";
    s << ": " << what;
    if (!fix.empty()) s << "; " << fix;
    return s.str();
  }
};

std::vector<std::string> string_list(const YAML::Node& node, const std::string& key,
                                     const Where& where) {
  std::vector<std::string> out;
  if (!node || node.IsNull()) return out;
  if (node.IsScalar()) {
    if (!node.Scalar().empty()) out.push_back(node.Scalar());
    return out;
  }
  YOLO_CHECK(node.IsSequence(),
             where.error(key, "expected a path or a list of paths, got a mapping",
                         "write e.g. " + key + ": images/" + key + " or " + key +
                             ": [a/images, b/images]"));
  for (const auto& item : node) {
    YOLO_CHECK(item.IsScalar() && !item.Scalar().empty(),
               where.error(key, "every list entry must be a path string",
                           "remove nested lists and empty entries"));
    out.push_back(item.Scalar());
  }
  return out;
}

std::vector<std::string> read_names(const YAML::Node& node, const Where& where) {
  std::vector<std::string> names;
  if (node.IsSequence()) {
    for (const auto& item : node) {
      YOLO_CHECK(item.IsScalar(), where.error("names", "every class name must be a string",
                                              "write names: [person, car]"));
      names.push_back(item.Scalar());
    }
    return names;
  }
  YOLO_CHECK(node.IsMap(), where.error("names", "expected a list or a dict of class names",
                                       "write names: [person, car] or names: {0: person, 1: car}"));
  std::map<long long, std::string> by_id;
  for (const auto& kv : node) {
    long long id = 0;
    const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : std::string("<not a scalar>");
    std::size_t used = 0;
    bool ok = kv.first.IsScalar() && !key.empty();
    if (ok) {
      try {
        id = std::stoll(key, &used);
      } catch (const std::exception&) {
        ok = false;
      }
    }
    YOLO_CHECK(
        ok && used == key.size() && id >= 0,
        where.error("names", "names keys must be integers, i.e. 2: car (got key '" + key + "')",
                    "number the classes 0, 1, 2, ..."));
    YOLO_CHECK(kv.second.IsScalar(), where.error("names", "class " + key + " must be a string",
                                                 "write " + key + ": car"));
    YOLO_CHECK(
        by_id.emplace(id, kv.second.Scalar()).second,
        where.error("names", "class id " + key + " appears twice", "give each class id once"));
  }
  long long expect = 0;
  for (const auto& [id, name] : by_id) {
    YOLO_CHECK(id == expect,
               where.error("names",
                           "class ids must be 0.." + std::to_string(by_id.size() - 1) +
                               " without gaps, but id " + std::to_string(expect) + " is missing",
                           "renumber the classes from 0"));
    names.push_back(name);
    ++expect;
  }
  return names;
}

// Joins `entry` to `root`; retries without a leading ../ when that does not exist.
std::filesystem::path join_entry(const std::filesystem::path& root, const std::string& entry) {
  namespace fs = std::filesystem;
  const fs::path e(entry);
  const fs::path direct = (e.is_absolute() ? e : root / e).lexically_normal();
  if (fs::exists(direct) || e.is_absolute() || entry.rfind("../", 0) != 0) return direct;
  const fs::path stripped = (root / entry.substr(3)).lexically_normal();
  return fs::exists(stripped) ? stripped : direct;
}

}  // namespace

const std::vector<std::string>& DatasetConfig::split(const std::string& name) const {
  if (name == "train") return train;
  if (name == "val") return val;
  if (name == "test") return test;
  YOLO_FAIL("unknown dataset split '" << name << "': use train, val or test");
}

DatasetConfig load_dataset_config(const std::string& yaml_path) {
  namespace fs = std::filesystem;
  std::ifstream in(yaml_path, std::ios::binary);
  YOLO_CHECK(in.good(), "dataset yaml " << yaml_path << ": cannot open the file ("
                                        << (fs::exists(yaml_path) ? "not readable" : "no such file")
                                        << "); give --data an existing .yaml");
  std::stringstream text;
  text << in.rdbuf();
  const fs::path abs = fs::absolute(fs::path(yaml_path)).lexically_normal();
  DatasetConfig cfg = parse_dataset_config(text.str(), abs.parent_path(), yaml_path);
  cfg.file = abs;
  return cfg;
}

DatasetConfig parse_dataset_config(const std::string& yaml_text,
                                   const std::filesystem::path& yaml_dir,
                                   const std::string& source_name) {
  namespace fs = std::filesystem;
  const Where where{source_name};
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    YOLO_FAIL(where.error("", std::string("not valid yaml: ") + e.what(),
                          "fix the syntax at that line and column"));
  }
  YOLO_CHECK(root.IsMap(), where.error("", "expected a mapping with path, train, val, nc and names",
                                       "see configs/ for an example data yaml"));
  DatasetConfig cfg;
  cfg.file = source_name;
  for (const char* k : {"train", "val"}) {
    YOLO_CHECK(root[k] && !root[k].IsNull(),
               where.error(k, std::string("data.yaml '") + k + ":' field missing",
                           std::string("add ") + k +
                               ": <image folder, .txt list of images, or a list of them>"));
  }
  const std::vector<std::string> train = string_list(root["train"], "train", where);
  const std::vector<std::string> val = string_list(root["val"], "val", where);
  const std::vector<std::string> test = string_list(root["test"], "test", where);
  YOLO_CHECK(!train.empty(), where.error("train", "is empty", "give an image folder or list"));
  YOLO_CHECK(!val.empty(), where.error("val", "is empty", "give an image folder or list"));
  if (root["download"] && root["download"].IsScalar()) cfg.download = root["download"].Scalar();

  // Classes.
  const YAML::Node nc_node = root["nc"], names_node = root["names"];
  const bool has_nc = nc_node && !nc_node.IsNull(), has_names = names_node && !names_node.IsNull();
  YOLO_CHECK(has_nc || has_names,
             where.error("names", "data.yaml 'names:' field missing (and no 'nc:')",
                         "add names: [class0, class1, ...] listing every class"));
  if (has_names) cfg.names = read_names(names_node, where);
  if (has_nc) {
    long long nc = -1;
    std::size_t used = 0;
    const std::string s = nc_node.IsScalar() ? nc_node.Scalar() : "";
    try {
      nc = std::stoll(s, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    YOLO_CHECK(used == s.size() && !s.empty() && nc >= 1 && nc <= 1000000,
               where.error("nc", "must be a positive integer, got '" + s + "'",
                           "set nc to the number of classes"));
    cfg.nc = static_cast<int>(nc);
    if (!has_names) {
      cfg.warnings.push_back(
          "WARNING: data.yaml 'names:' field missing, assigning default names 'class0', 'class1', "
          "etc.");
      for (int i = 0; i < cfg.nc; ++i) cfg.names.push_back("class" + std::to_string(i));
    }
    YOLO_CHECK(static_cast<long long>(cfg.names.size()) == nc,
               where.error("names",
                           std::to_string(cfg.names.size()) + " names found for nc=" + s +
                               " dataset in " + source_name,
                           "make nc equal the number of names (or drop nc)"));
  } else {
    cfg.nc = static_cast<int>(cfg.names.size());
  }
  YOLO_CHECK(cfg.nc >= 1, where.error("names", "no classes listed", "add at least one class name"));

  // Roots to try (Note [Dataset yaml rules]).
  const std::string path_entry =
      root["path"] && root["path"].IsScalar() ? root["path"].Scalar() : "";
  std::vector<fs::path> roots;
  const fs::path p(path_entry);
  if (p.is_absolute()) {
    roots.push_back(p.lexically_normal());
  } else {
    const fs::path dir = fs::absolute(yaml_dir);
    for (const fs::path& base : {dir, dir.parent_path(), fs::current_path()}) {
      const fs::path r = (base / p).lexically_normal();
      bool seen = false;
      for (const auto& q : roots) seen = seen || q == r;
      if (!seen) roots.push_back(r);
    }
  }
  const fs::path* chosen = nullptr;
  for (const auto& r : roots) {
    bool all = true;
    for (const auto* list : {&train, &val})
      for (const auto& e : *list) all = all && fs::exists(join_entry(r, e));
    if (all) {
      chosen = &r;
      break;
    }
  }
  if (!chosen) {
    for (const char* key : {"val", "train"}) {
      for (const auto& e : (std::string(key) == "val" ? val : train)) {
        bool found = false;
        std::string tried;
        for (const auto& r : roots) {
          const fs::path q = join_entry(r, e);
          found = found || fs::exists(q);
          tried += (tried.empty() ? "" : ", ") + q.string();
        }
        if (found) continue;
        std::string fix = "fix '" + std::string(key) +
                          ":' or 'path:' (relative paths are joined to path:, which is tried "
                          "against the yaml's folder, its parent and the working directory)";
        if (!cfg.download.empty())
          fix +=
              "; this yaml has a download: entry, which yolocore does not run: download the "
              "dataset yourself";
        YOLO_FAIL(where.error(
            key, "Dataset not found, missing path '" + e + "' (looked for " + tried + ")", fix));
      }
    }
    YOLO_FAIL(where.error(
        "path",
        "train and val entries exist under different roots (" + roots.front().string() + " ...)",
        "give an absolute path: so every entry resolves under one root"));
  }
  cfg.root = *chosen;
  for (const auto& e : train) cfg.train.push_back(join_entry(cfg.root, e).string());
  for (const auto& e : val) cfg.val.push_back(join_entry(cfg.root, e).string());
  for (const auto& e : test) cfg.test.push_back(join_entry(cfg.root, e).string());
  return cfg;
}

}  // namespace yolo
