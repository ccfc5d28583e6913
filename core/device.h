// Device: where a tensor's memory lives ("cpu" or "cuda:N"), and whether CUDA was compiled in.
#pragma once

#include <string>

namespace yolo {

enum class DeviceType { cpu, cuda };

struct Device {
  DeviceType type = DeviceType::cpu;
  int index = 0;

  static Device cpu() { return {DeviceType::cpu, 0}; }
  static Device cuda(int i = 0) { return {DeviceType::cuda, i}; }
  // Parses "cpu", "cuda", "cuda:1" or a bare GPU index "0"; throws yolo::Error otherwise.
  static Device parse(const std::string& text);

  bool is_cpu() const { return type == DeviceType::cpu; }
  bool is_cuda() const { return type == DeviceType::cuda; }
  std::string str() const;
  bool operator==(const Device& o) const {
    return type == o.type && (is_cpu() || index == o.index);
  }
  bool operator!=(const Device& o) const { return !(*this == o); }
};

// True when this build contains the CUDA kernels (YOLO_CUDA=ON).
#ifdef YOLO_WITH_CUDA
inline constexpr bool kCudaBuilt = true;
#else
inline constexpr bool kCudaBuilt = false;
#endif

// Number of usable CUDA devices; 0 in a CPU-only build or when no driver/GPU is present. Never
// throws.
int cuda_device_count();
// A one-line description of why no GPU is usable (driver missing, no device, CPU-only build), or
// "".
std::string cuda_unavailable_reason();

[[noreturn]] void throw_cuda_not_built(const char* op);

}  // namespace yolo
