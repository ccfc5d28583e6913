// CUDA backend hooks for a CPU-only build (YOLO_CUDA=OFF): every entry explains how to get CUDA.
#include "core/context.h"

namespace yolo::cuda_backend {

std::shared_ptr<CudaState> create(int) {
  throw_cuda_not_built("Context(cuda)");
}
std::shared_ptr<Allocator> allocator(CudaState&) {
  throw_cuda_not_built("cuda allocator");
}
StreamHandle stream(CudaState&) {
  return nullptr;
}
void memcpy(void*, bool, const void*, bool, size_t, CudaState&) {
  throw_cuda_not_built("memcpy");
}
void memset_zero(void*, size_t, CudaState&) {
  throw_cuda_not_built("memset");
}
void synchronize(CudaState&) {}
int device_count() noexcept {
  return 0;
}
std::string unavailable_reason() {
  return "this yolocore was built without CUDA (YOLO_CUDA=OFF)";
}

}  // namespace yolo::cuda_backend
