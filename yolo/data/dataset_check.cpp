// The `yolo dataset check` report (see dataset_check.h).
#include "yolo/data/dataset_check.h"

#include <string>
#include <vector>

#include "core/error.h"
#include "yolo/data/dataset_config.h"
#include "yolo/data/labels.h"

namespace yolo {

namespace {

void print_usage(std::FILE* out) {
  std::fprintf(
      out,
      "usage: yolo dataset check --data X.yaml [--no-cache] [--workers N]\n"
      "  scans train, val and test: label checks, per-class counts; exit 0 when trainable\n");
}

// Per-class images and instances, as val.py's "Class Images Instances" columns.
void print_class_table(std::FILE* out, const LabelScan& scan, const DatasetConfig& cfg) {
  std::vector<long long> images(cfg.names.size(), 0), instances(cfg.names.size(), 0);
  long long all_instances = 0;
  for (const auto& im : scan.images) {
    std::vector<char> seen(cfg.names.size(), 0);
    for (std::size_t i = 0; i < im.boxes.size(); i += 5) {
      const float c = im.boxes[i];
      ++all_instances;
      if (c >= 0 && c < static_cast<float>(cfg.names.size())) {
        const auto k = static_cast<std::size_t>(c);
        ++instances[k];
        seen[k] = 1;
      }
    }
    for (std::size_t k = 0; k < seen.size(); ++k) images[k] += seen[k];
  }
  std::fprintf(out, "%22s%11s%11s\n", "Class", "Images", "Instances");
  std::fprintf(out, "%22s%11zu%11lld\n", "all", scan.images.size(), all_instances);
  for (std::size_t k = 0; k < cfg.names.size(); ++k)
    std::fprintf(out, "%22s%11lld%11lld\n", cfg.names[k].c_str(), images[k], instances[k]);
}

}  // namespace

int run_dataset_check(int argc, char** argv, std::FILE* out) {
  std::string data;
  ScanOptions options;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--data" && i + 1 < argc) {
      data = argv[++i];
    } else if (a.rfind("--data=", 0) == 0) {
      data = a.substr(7);
    } else if (a == "--no-cache") {
      options.use_cache = false;
    } else if (a == "--workers" && i + 1 < argc) {
      options.threads = std::atoi(argv[++i]);
    } else if (a == "-h" || a == "--help") {
      print_usage(out);
      return 0;
    } else {
      std::fprintf(out, "dataset check: unexpected argument '%s'\n", a.c_str());
      print_usage(out);
      return 2;
    }
  }
  if (data.empty()) {
    std::fprintf(out, "dataset check: give the data yaml with --data X.yaml\n");
    print_usage(out);
    return 2;
  }

  DatasetConfig cfg;
  try {
    cfg = load_dataset_config(data);
  } catch (const Error& e) {
    std::fprintf(out, "ERROR: %s\n", e.what());
    return 1;
  }
  for (const auto& w : cfg.warnings) std::fprintf(out, "%s\n", w.c_str());
  std::fprintf(out, "%s: %d classes, root %s\n", cfg.file.string().c_str(), cfg.nc,
               cfg.root.string().c_str());

  bool usable = true;
  for (const char* split : {"train", "val", "test"}) {
    const auto& sources = cfg.split(split);
    if (sources.empty()) continue;
    options.prefix = std::string(split) + ": ";
    LabelScan scan;
    try {
      scan = scan_labels(sources, options);
    } catch (const Error& e) {
      std::fprintf(out, "%sERROR: %s\n", options.prefix.c_str(), e.what());
      if (std::string(split) != "test") usable = false;
      continue;
    }
    std::fprintf(out, "%s\n", scan.summary.c_str());
    for (const auto& m : scan.messages) std::fprintf(out, "%s\n", m.c_str());
    for (const auto& m : scan.cache_messages) std::fprintf(out, "%s\n", m.c_str());
    print_class_table(out, scan, cfg);
    for (const auto& p : class_range_problems(scan, cfg.nc, cfg.file.string())) {
      std::fprintf(out, "%sERROR: %s\n", options.prefix.c_str(), p.c_str());
      usable = false;
    }
    if (std::string(split) == "train" && scan.found == 0) {
      std::fprintf(out, "%sERROR: No labels in %s. Can not train without labels.\n",
                   options.prefix.c_str(), scan.cache_path.string().c_str());
      usable = false;
    }
  }
  std::fprintf(out, "%s\n",
               usable ? "dataset is usable" : "dataset is NOT usable: fix the errors above");
  return usable ? 0 : 1;
}

}  // namespace yolo
