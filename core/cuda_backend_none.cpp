// CUDA backend hooks for a CPU-only build (YOLO_CUDA=OFF): every entry explains how to get CUDA.
#include <cstdlib>

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

void* host_alloc_pinned(size_t bytes, int) {
  // No page locking without CUDA: the same 64-byte aligned memory as the CPU allocator.
  return cpu_allocator()->allocate(bytes, nullptr);
}
void host_free_pinned(void* ptr) noexcept {
  std::free(ptr);
}
StreamHandle copy_stream(CudaState&) {
  return nullptr;
}
void memcpy_h2d_async(void*, const void*, size_t, StreamHandle, CudaState&) {
  throw_cuda_not_built("memcpy_h2d_async");
}
EventHandle event_create(CudaState&) {
  return nullptr;
}
void event_destroy(EventHandle) noexcept {}
void event_record(EventHandle, StreamHandle) {}
void stream_wait_event(StreamHandle, EventHandle) {}
bool event_query(EventHandle) {
  return true;
}
void event_synchronize(EventHandle) {}

}  // namespace yolo::cuda_backend
