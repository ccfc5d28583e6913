// The `yolo` command line: `yolo version`, `yolo devices`, `yolo selfcheck`, `yolo info`,
// `yolo dataset shapes|check`. Later: train, val, detect, export (see DESIGN.md).
#include <cstdio>
#include <cstring>
#include <string>

#include "core/context.h"
#include "yolo/data/dataset_check.h"
#include "yolo/data/shapes_dataset.h"
#include "yolo/info.h"
#include "yolo/selfcheck.h"

namespace {

void print_usage() {
  std::printf(
      "usage: yolo <command> [options]\n"
      "  version     print the yolocore version and build\n"
      "  devices     list the devices this build can use\n"
      "  selfcheck   run every kernel on each device against the CPU reference\n"
      "  info CFG [--weights W] [--img 640] [--fuse]\n"
      "              print a model yaml's layer table and size summary\n"
      "  dataset shapes --out DIR [--train N] [--val N] [--imgsz S] [--classes K] [--seed S]\n"
      "              write the built-in synthetic detection dataset (ultralytics layout)\n"
      "  dataset check --data X.yaml\n"
      "              scan a dataset's images and labels and report every problem\n");
}

int print_devices() {
  std::printf("cpu: available\n");
  const int n = yolo::cuda_device_count();
  if (n == 0) {
    std::printf("cuda: none (%s)\n", yolo::cuda_unavailable_reason().c_str());
  }
  for (int i = 0; i < n; ++i) std::printf("cuda:%d: available\n", i);
  return 0;
}

// yolo info CFG [--weights W] [--img 640] [--fuse]
int run_info(int argc, char** argv) {
  std::string cfg, weights;
  int64_t img = 640;
  bool fuse = false;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--weights" && i + 1 < argc) {
      weights = argv[++i];
    } else if (a == "--img" && i + 1 < argc) {
      img = std::stoll(argv[++i]);
    } else if (a == "--fuse") {
      fuse = true;
    } else if (cfg.empty() && a.rfind("--", 0) != 0) {
      cfg = a;
    } else {
      YOLO_FAIL("info: unexpected argument '"
                << a << "' (usage: yolo info CFG [--weights W] [--img 640] [--fuse])");
    }
  }
  YOLO_CHECK(!cfg.empty(), "info: give a model yaml, e.g. yolo info configs/yolov5n.yaml");
  yolo::Context ctx;
  yolo::Model model(yolo::load_model_config(cfg), ctx);
  if (!weights.empty()) model.load_weights(weights, true);
  std::printf("%s\n", yolo::model_layer_table(model).c_str());
  if (fuse) {
    std::printf("%s\n", yolo::model_summary(*model.fused(), img).c_str());
  } else {
    std::printf("%s\n", yolo::model_summary(model, img).c_str());
  }
  return 0;
}

// yolo dataset shapes|check ...
int run_dataset(int argc, char** argv) {
  const std::string sub = argc > 2 ? argv[2] : "";
  if (sub == "shapes") return yolo::run_dataset_shapes(argc - 3, argv + 3, stdout);
  if (sub == "check") return yolo::run_dataset_check(argc - 2, argv + 2, stdout);
  YOLO_FAIL("dataset: unknown subcommand '"
            << sub
            << "' (use: yolo dataset shapes --out DIR, or yolo dataset check --data X.yaml)");
}

}  // namespace

int main(int argc, char** argv) {
  const std::string cmd = argc > 1 ? argv[1] : "";
  try {
    if (cmd == "version" || cmd == "--version") {
      std::printf("yolocore %s (%s build)\n", yolo::version_string(),
                  yolo::kCudaBuilt ? "CUDA" : "CPU-only");
      return 0;
    }
    if (cmd == "devices") return print_devices();
    if (cmd == "selfcheck") return yolo::run_selfcheck(stdout) ? 0 : 1;
    if (cmd == "info") return run_info(argc, argv);
    if (cmd == "dataset") return run_dataset(argc, argv);
    if (cmd == "" || cmd == "help" || cmd == "--help" || cmd == "-h") {
      print_usage();
      return cmd.empty() ? 2 : 0;
    }
    std::fprintf(stderr, "yolo: unknown command '%s'\n", cmd.c_str());
    print_usage();
    return 2;
  } catch (const yolo::Error& e) {
    std::fprintf(stderr, "yolo: error: %s\n", e.what());
    return 1;
  }
}
