// Context: allocation and copies on the context's device.
#include "core/context.h"

#include <algorithm>
#include <cstring>
#include <thread>

namespace yolo {

namespace {

// Note [Host memory cache]
// A CPU context hands out activations, gradients and scratch through its own caching allocator
// over aligned host memory (the CUDA policy in core/allocator.h, with the null stream). glibc
// serves blocks of tens of MB with fresh mmaps, so every forward paid page faults and the kernel's
// page zeroing again (about 7% of a yolov5n CPU forward at batch 8); cached blocks are reused
// instead. Each context has its own cache (the loader's workers do not contend), held by the
// tensors that use it. Under AddressSanitizer the plain allocator is used, so a use after free is
// still caught.
std::shared_ptr<Allocator> host_allocator() {
#if defined(__SANITIZE_ADDRESS__)
  return cpu_allocator();
#else
  return std::make_shared<CachingAllocator>(std::make_unique<HostMemory>());
#endif
}

}  // namespace

Context::Context(Device device, int cpu_threads) : device_(device) {
  cpu_threads_ = cpu_threads > 0
                     ? cpu_threads
                     : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (device.is_cpu()) {
    allocator_ = host_allocator();
  } else {
    cuda_ = cuda_backend::create(device.index);
    allocator_ = cuda_backend::allocator(*cuda_);
  }
}

Context::~Context() = default;

StreamHandle Context::stream() const {
  return cuda_ ? cuda_backend::stream(*cuda_) : nullptr;
}

CudaState& Context::cuda() const {
  YOLO_CHECK(cuda_ != nullptr, "CUDA state requested from a " << device_.str() << " context");
  return *cuda_;
}

Tensor Context::empty(const Shape& shape, DType dtype) const {
  return Tensor::empty(shape, dtype, allocator_, stream());
}

Tensor Context::zeros(const Shape& shape, DType dtype) const {
  Tensor t = empty(shape, dtype);
  zero_(t);
  return t;
}

void Context::zero_(const Tensor& t) const {
  YOLO_CHECK(t.device() == device_,
             "zero_: tensor on " << t.device().str() << ", context on " << device_.str());
  if (t.nbytes() == 0) return;
  if (device_.is_cpu()) {
    std::memset(t.raw(), 0, t.nbytes());
  } else {
    cuda_backend::memset_zero(t.raw(), t.nbytes(), *cuda_);
  }
}

void Context::copy(const Tensor& dst, const Tensor& src) const {
  check_same_dtype("copy", "dst", dst, "src", src);
  YOLO_CHECK(dst.numel() == src.numel(),
             "copy: dst " << dst.str() << " and src " << src.str() << " differ in element count");
  for (const Tensor* t : {&dst, &src}) {
    YOLO_CHECK(
        t->device().is_cpu() || t->device() == device_,
        "copy: tensor on " << t->device().str() << " used with a " << device_.str() << " context");
  }
  if (src.nbytes() == 0) return;
  if (dst.device().is_cpu() && src.device().is_cpu()) {
    std::memmove(dst.raw(), src.raw(), src.nbytes());
    return;
  }
  cuda_backend::memcpy(dst.raw(), dst.device().is_cpu(), src.raw(), src.device().is_cpu(),
                       src.nbytes(), *cuda_);
}

Tensor Context::to_device(const Tensor& t) const {
  Tensor out = empty(t.shape(), t.dtype());
  copy(out, t);
  return out;
}

Tensor Context::to_host(const Tensor& t) const {
  Tensor out = Tensor::empty_cpu(t.shape(), t.dtype());
  copy(out, t);
  return out;
}

void Context::synchronize() const {
  if (cuda_) cuda_backend::synchronize(*cuda_);
}

int cuda_device_count() {
  return cuda_backend::device_count();
}
std::string cuda_unavailable_reason() {
  return cuda_backend::unavailable_reason();
}

}  // namespace yolo
