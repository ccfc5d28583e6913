// Context: everything a kernel needs to run on one device, passed down explicitly (no globals).
// On the CPU it carries the allocator and thread count; on CUDA also the streams, the cuBLAS and
// cuDNN handles and the shared workspace (see core/cuda_state.h, included by CUDA sources only).
//   yolo::Context ctx(yolo::Device::cuda(0));
//   yolo::Tensor x = ctx.empty({16, 640, 640, 3}, yolo::DType::f32);
#pragma once

#include <memory>

#include "core/allocator.h"
#include "core/device.h"
#include "core/tensor.h"

namespace yolo {

struct CudaState;  // core/cuda_state.h

class Context {
 public:
  // cpu_threads = 0 uses every core. A CUDA device that cannot be opened throws yolo::Error.
  explicit Context(Device device = Device::cpu(), int cpu_threads = 0);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  Device device() const { return device_; }
  const std::shared_ptr<Allocator>& allocator() const { return allocator_; }
  // The compute stream (cudaStream_t) on CUDA, nullptr on the CPU.
  StreamHandle stream() const;
  int cpu_threads() const { return cpu_threads_; }

  // New tensor on this context's device (uninitialised / zero-filled).
  Tensor empty(const Shape& shape, DType dtype) const;
  Tensor zeros(const Shape& shape, DType dtype) const;
  // Sets every byte of t to zero (t on this device), ordered on the compute stream.
  void zero_(const Tensor& t) const;
  // dst <- src, same dtype and numel, any pair of cpu / this device. Ordered on the compute stream;
  // a copy to the host waits for it.
  void copy(const Tensor& dst, const Tensor& src) const;
  Tensor to_device(const Tensor& t) const;
  Tensor to_host(const Tensor& t) const;
  void synchronize() const;

  // CUDA internals for kernels/cuda; throws yolo::Error on a CPU context.
  CudaState& cuda() const;

 private:
  Device device_;
  int cpu_threads_ = 1;
  std::shared_ptr<Allocator> allocator_;
  std::shared_ptr<CudaState> cuda_;
};

// Backend hooks implemented by core/cuda/cuda_backend.cpp (CUDA builds) or
// core/cuda_backend_none.cpp.
namespace cuda_backend {
std::shared_ptr<CudaState> create(int device_index);
std::shared_ptr<Allocator> allocator(CudaState& state);
StreamHandle stream(CudaState& state);
// Copies bytes between host and device or device and device, ordered on state's stream;
// returns after the copy when the destination is host memory.
void memcpy(void* dst, bool dst_on_host, const void* src, bool src_on_host, size_t bytes,
            CudaState& state);
void memset_zero(void* dst, size_t bytes, CudaState& state);
void synchronize(CudaState& state);
int device_count() noexcept;
std::string unavailable_reason();

// Asynchronous uploads (the data loader's pinned batch buffers and its copy stream).
// Page-locked host memory (cudaHostAlloc) that copies can read asynchronously; in a CPU-only build
// plain 64-byte aligned host memory. `device` (the CUDA device the copies go to) is current for the
// allocation (the thread's own current device comes back after), so a loader thread never opens a
// context on device 0 for a process that runs on another. Throws yolo::Error when out of memory.
void* host_alloc_pinned(size_t bytes, int device);
void host_free_pinned(void* ptr) noexcept;
// The upload stream (CudaState::copy_stream), separate from the compute stream.
StreamHandle copy_stream(CudaState& state);
// Host-to-device copy ordered on `stream`; returns at once (src must stay valid and unchanged
// until an event recorded after it on `stream` has completed).
void memcpy_h2d_async(void* dst, const void* src, size_t bytes, StreamHandle stream,
                      CudaState& state);
// Events (cudaEvent_t without timing) order one stream after another and tell the host when work
// is done. In a CPU-only build there is no stream to order, so they are null handles and no-ops
// that report completion.
using EventHandle = void*;
EventHandle event_create(CudaState& state);
void event_destroy(EventHandle event) noexcept;
void event_record(EventHandle event, StreamHandle stream);
// Work queued on `stream` after this call waits for the event's work (no host wait).
void stream_wait_event(StreamHandle stream, EventHandle event);
bool event_query(EventHandle event);  // true when the recorded work has finished
void event_synchronize(EventHandle event);
}  // namespace cuda_backend

}  // namespace yolo
