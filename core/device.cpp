// Device parsing and printing.
#include "core/device.h"

#include <cctype>

#include "core/error.h"

namespace yolo {

Device Device::parse(const std::string& text) {
  if (text == "cpu") return cpu();
  if (text == "cuda") return cuda(0);
  std::string digits = text;
  if (text.rfind("cuda:", 0) == 0) digits = text.substr(5);
  bool ok = !digits.empty();
  for (char c : digits) ok = ok && std::isdigit(static_cast<unsigned char>(c));
  YOLO_CHECK(ok, "unknown device '" << text << "': use 'cpu', 'cuda', 'cuda:N' or a GPU index N");
  return cuda(std::stoi(digits));
}

std::string Device::str() const {
  return is_cpu() ? std::string("cpu") : "cuda:" + std::to_string(index);
}

void throw_cuda_not_built(const char* op) {
  YOLO_FAIL(op << ": this yolocore was built without CUDA (YOLO_CUDA=OFF); rebuild with nvcc "
                  "available, or run on the cpu device");
}

}  // namespace yolo
