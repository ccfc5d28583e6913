// yolo_bench: kernel microbenchmarks at YOLOv5n/s layer shapes, each validated before it is timed.
//   yolo_bench [--device cpu|cuda] [--batch N] [--img S] [--filter SUBSTR] [--repeats R]
//              [--warmup W] [--threads T] [--json PATH] [--list-json PATH|-] [--model CFG]
// See bench/README.md for what each row means and how to compare with PyTorch.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>

#include "bench/bench_model.h"
#include "bench/cuda_baseline.h"
#include "bench/harness.h"

namespace yolo::bench {
namespace {

const char* kUsage =
    "usage: yolo_bench [--device cpu|cuda] [--batch N] [--img S] [--filter SUBSTR]\n"
    "                  [--repeats R] [--warmup W] [--threads T] [--json PATH] [--list-json PATH|-]\n"
    "                  [--model CFG]  (whole-model rows for a model yaml instead of the kernel rows)\n"
    "defaults: cuda batch 16, img 640, 50 repeats; cpu batch 1, img 320, 10 repeats\n";

int to_int(const std::string& flag, const std::string& v) {
  char* end = nullptr;
  const long x = std::strtol(v.c_str(), &end, 10);
  YOLO_CHECK(end && *end == '\0' && x >= 0, flag << " expects a non-negative integer, got '" << v << "'");
  return static_cast<int>(x);
}

Options parse(int argc, char** argv, bool& help) {
  Options o;
  help = false;
  std::string device = "cpu";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      help = true;
      return o;
    }
    YOLO_CHECK(i + 1 < argc, a << " needs a value\n" << kUsage);
    const std::string v = argv[++i];
    if (a == "--device") device = v;
    else if (a == "--batch") o.batch = to_int(a, v);
    else if (a == "--img") o.img = to_int(a, v);
    else if (a == "--filter") o.filter = v;
    else if (a == "--repeats") o.repeats = to_int(a, v);
    else if (a == "--warmup") o.warmup = to_int(a, v);
    else if (a == "--threads") o.threads = to_int(a, v);
    else if (a == "--json") o.json_path = v;
    else if (a == "--list-json") o.list_json_path = v;
    else if (a == "--model") o.model_cfg = v;
    else YOLO_FAIL("unknown option " << a << "\n" << kUsage);
  }
  o.device = Device::parse(device);
  const bool cuda = o.device.is_cuda();
  if (o.batch == 0) o.batch = cuda ? 16 : 1;
  if (o.img == 0) o.img = cuda ? 640 : 320;
  if (o.repeats == 0) o.repeats = cuda ? 50 : 10;
  if (o.warmup == 0) o.warmup = cuda ? 5 : 2;
  return o;
}

bool selected(const RowSpec& r, const Options& o) {
  return o.filter.empty() || r.name.find(o.filter) != std::string::npos;
}

int run(int argc, char** argv) {
  bool help = false;
  const Options opt = parse(argc, argv, help);
  if (help) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  const bool model = !opt.model_cfg.empty();
  const std::vector<RowSpec> rows = model ? model_rows(opt) : build_rows(opt);
  if (!opt.list_json_path.empty()) {
    std::ofstream file;
    if (opt.list_json_path != "-") {
      file.open(opt.list_json_path);
      YOLO_CHECK(file.good(), "cannot write --list-json file " << opt.list_json_path);
    }
    std::ostream& os = opt.list_json_path == "-" ? std::cout : file;
    for (const RowSpec& r : rows) {
      if (selected(r, opt)) os << spec_json(r) << "\n";
    }
    return 0;
  }

  Context ctx(opt.device, opt.threads);
  const std::string device_text =
      opt.device.is_cuda() ? cuda_device_text(ctx)
                           : "cpu (" + std::to_string(ctx.cpu_threads()) + " threads)";
  const Peaks peaks = measure_peaks(ctx);
  print_header(peaks, opt, device_text);
  std::ofstream json;
  if (!opt.json_path.empty()) {
    json.open(opt.json_path);
    YOLO_CHECK(json.good(), "cannot write --json file " << opt.json_path);
  }
  int failed = 0;
  for (const RowSpec& r : rows) {
    if (!selected(r, opt)) continue;
    const Result res = model ? run_model_row(ctx, r, opt, peaks) : run_row(ctx, r, opt, peaks);
    print_result(res);
    if (res.status != "ok") ++failed;
    if (json.is_open()) json << result_json(res) << "\n" << std::flush;
  }
  if (failed) std::printf("%d row(s) failed validation or could not run\n", failed);
  return failed ? 1 : 0;
}

}  // namespace
}  // namespace yolo::bench

int main(int argc, char** argv) {
  try {
    return yolo::bench::run(argc, argv);
  } catch (const yolo::Error& e) {
    std::fprintf(stderr, "yolo_bench: %s\n", e.what());
    return 2;
  }
}
