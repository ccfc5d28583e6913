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
}  // namespace cuda_backend

}  // namespace yolo
