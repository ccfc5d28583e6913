// The `yolo` command line: `yolo version`, `yolo devices`, `yolo selfcheck`, `yolo info`,
// `yolo dataset shapes|check|bench`. Later: train, val, detect, export (see DESIGN.md).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "core/context.h"
#include "yolo/data/dataset.h"
#include "yolo/data/dataset_check.h"
#include "yolo/data/dataset_config.h"
#include "yolo/data/loader.h"
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
      "              scan a dataset's images and labels and report every problem\n"
      "  dataset bench [--data X.yaml] [--img 640] [--batch 16] [--workers 2] [--batches 30]\n"
      "                [--warmup 3] [--device cpu|cuda] [--gpu-augment] [--cache ram]\n"
      "                [--hyp configs/hyp.scratch-low.yaml]\n"
      "              time the augmenting training data loader (default: datasets/shapes)\n");
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

// yolo dataset bench ...: builds the augmenting train dataset (mosaic etc.) and times the loader:
// images/s as the median over windows of `workers` consecutive batches after the warm-up and over
// the whole timed run, then the loader's per-stage counters. On CUDA each batch is synchronised, so
// its upload (and the GPU augmentation) is inside the time.
int run_dataset_bench(int argc, char** argv) {
  const char* usage =
      "usage: yolo dataset bench [--data X.yaml] [--img 640] [--batch 16] [--workers 2] "
      "[--batches 30] [--warmup 3] [--device cpu|cuda] [--gpu-augment] [--cache ram] "
      "[--hyp configs/hyp.scratch-low.yaml]";
  std::string data, hyp_path = "configs/hyp.scratch-low.yaml", device = "cpu";
  int img = 640, batch = 16, workers = 2, batches = 30, warmup = 3;
  bool gpu_augment = false, cache_ram = false;
  for (int i = 3; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    auto int_value = [&](int lo) {
      const std::string v = argv[++i];
      int x = 0;
      try {
        x = std::stoi(v);
      } catch (const std::exception&) {
        YOLO_FAIL("dataset bench: " << a << " needs an integer, got '" << v << "'\n" << usage);
      }
      YOLO_CHECK(x >= lo, "dataset bench: " << a << " " << x << " must be >= " << lo);
      return x;
    };
    if (a == "--data" && has_value) {
      data = argv[++i];
    } else if (a == "--hyp" && has_value) {
      hyp_path = argv[++i];
    } else if (a == "--device" && has_value) {
      device = argv[++i];
    } else if (a == "--img" && has_value) {
      img = int_value(32);
    } else if (a == "--batch" && has_value) {
      batch = int_value(1);
    } else if (a == "--workers" && has_value) {
      workers = int_value(0);
    } else if (a == "--batches" && has_value) {
      batches = int_value(1);
    } else if (a == "--warmup" && has_value) {
      warmup = int_value(0);
    } else if (a == "--gpu-augment") {
      gpu_augment = true;
    } else if (a == "--cache" && has_value) {
      const std::string v = argv[++i];
      YOLO_CHECK(v == "ram", "dataset bench: --cache " << v << " (only --cache ram is offered)");
      cache_ram = true;
    } else {
      YOLO_FAIL("dataset bench: unexpected argument '" << a << "'\n" << usage);
    }
  }
  if (data.empty()) {
    data = "datasets/shapes/data.yaml";
    YOLO_CHECK(std::filesystem::exists(data),
               "dataset bench: no --data given and the built-in dataset is missing at "
                   << data << " (make it with: yolo dataset shapes --out datasets/shapes)");
  }
  const yolo::DatasetConfig cfg = yolo::load_dataset_config(data);
  yolo::DatasetOptions options;
  options.img_size = img;
  options.batch_size = batch;
  options.augment = true;
  options.prefix = "train: ";
  // Without the hyp file (e.g. run outside the repository) the hyp.scratch-low values built in.
  if (std::filesystem::exists(hyp_path)) options.hyp = yolo::load_augment_hyp(hyp_path);
  yolo::ScanOptions scan_options;
  scan_options.prefix = "train: ";
  yolo::DetectionDataset dataset(yolo::scan_labels(cfg.train, scan_options), options);

  yolo::Context ctx(yolo::Device::parse(device));
  yolo::LoaderOptions lo;
  lo.batch_size = batch;
  lo.workers = workers;
  lo.gpu_augment = gpu_augment;
  lo.dtype = gpu_augment ? yolo::DType::f16 : yolo::DType::u8;
  lo.cache_images = cache_ram;
  const auto t_setup = std::chrono::steady_clock::now();
  yolo::DataLoader loader(dataset, ctx, lo);
  std::printf(
      "dataset bench: %lld images, batch %d, img %d, workers %d, %s%s%s, %lld batches/epoch",
      static_cast<long long>(dataset.size()), batch, img, workers, ctx.device().str().c_str(),
      gpu_augment ? ", gpu augment" : "", cache_ram ? ", cache ram" : "",
      static_cast<long long>(loader.batches_per_epoch()));
  if (cache_ram) {
    std::printf(" (cached in %.1f s)",
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t_setup).count());
  }
  std::printf("\n");

  // arrival[k + 1]: when batch k was in hand (synchronised); arrival[0]: before the first next().
  using SteadyClock = std::chrono::steady_clock;
  std::vector<SteadyClock::time_point> arrival{SteadyClock::now()};
  std::vector<int64_t> sizes;
  for (int k = 0; k < warmup + batches; ++k) {
    std::optional<yolo::Batch> b = loader.next();
    ctx.synchronize();
    arrival.push_back(SteadyClock::now());
    sizes.push_back(b->size());
  }
  auto seconds = [&](int from, int to) {
    return std::chrono::duration<double>(arrival[to] - arrival[from]).count();
  };
  // With W workers batches arrive in bursts of up to W, so the median is taken over windows of W
  // consecutive timed batches (one batch with 0 or 1 worker).
  const int window = std::max(1, std::min(workers, batches));
  std::vector<double> rates;
  int64_t images = 0;
  for (int k = warmup; k < warmup + batches; ++k) {
    images += sizes[k];
    if (k + 1 - window < warmup) continue;
    int64_t in_window = 0;
    for (int j = k + 1 - window; j <= k; ++j) in_window += sizes[j];
    rates.push_back(static_cast<double>(in_window) / seconds(k + 1 - window, k + 1));
  }
  const double total_s = seconds(warmup, warmup + batches);
  std::sort(rates.begin(), rates.end());
  const size_t m = rates.size();
  const double median = m % 2 ? rates[m / 2] : 0.5 * (rates[m / 2 - 1] + rates[m / 2]);
  std::printf(
      "yolocore loader: %lld images in %d batches after %d warm-up: median %.1f images/s, total "
      "%.1f images/s\n",
      static_cast<long long>(images), batches, warmup, median,
      static_cast<double>(images) / total_s);
  std::printf("%s\n", loader.counters().str().c_str());
  return 0;
}

// yolo dataset shapes|check|bench ...
int run_dataset(int argc, char** argv) {
  const std::string sub = argc > 2 ? argv[2] : "";
  if (sub == "shapes") return yolo::run_dataset_shapes(argc - 3, argv + 3, stdout);
  if (sub == "check") return yolo::run_dataset_check(argc - 2, argv + 2, stdout);
  if (sub == "bench") return run_dataset_bench(argc, argv);
  YOLO_FAIL("dataset: unknown subcommand '"
            << sub
            << "' (use: yolo dataset shapes --out DIR, yolo dataset check --data X.yaml, or yolo "
               "dataset bench [--data X.yaml])");
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
