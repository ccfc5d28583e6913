// The `yolo` command line. For now: `yolo version`, `yolo devices`, `yolo selfcheck`.
// Later: train, val, detect, export, info, dataset (see DESIGN.md).
#include <cstdio>
#include <cstring>
#include <string>

#include "core/context.h"
#include "yolo/selfcheck.h"

namespace {

void print_usage() {
  std::printf(
      "usage: yolo <command> [options]\n"
      "  version     print the yolocore version and build\n"
      "  devices     list the devices this build can use\n"
      "  selfcheck   run every kernel on each device against the CPU reference\n");
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
