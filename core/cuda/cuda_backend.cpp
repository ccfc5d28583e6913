// CUDA backend of Context: device state (streams, cuBLAS/cuDNN handles, workspace) and the caching
// allocator over cudaMalloc. Compiled only when YOLO_CUDA=ON.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/context.h"
#include "core/cuda_check.h"
#include "core/cuda_state.h"

namespace yolo {

const char* cublas_status_name(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS:
      return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED:
      return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED:
      return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE:
      return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH:
      return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR:
      return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED:
      return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR:
      return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED:
      return "CUBLAS_STATUS_NOT_SUPPORTED";
    default:
      return "unknown cuBLAS status";
  }
}

namespace {

class CudaRawMemory final : public RawMemory {
 public:
  explicit CudaRawMemory(int device) : device_(device) {}
  void* raw_alloc(size_t bytes) noexcept override {
    void* p = nullptr;
    if (cudaSetDevice(device_) != cudaSuccess) return nullptr;
    if (cudaMalloc(&p, bytes) != cudaSuccess) {
      (void)cudaGetLastError();  // clear the sticky-free allocation error
      return nullptr;
    }
    return p;
  }
  void raw_free(void* ptr) noexcept override { (void)cudaFree(ptr); }
  Device device() const override { return Device::cuda(device_); }
  void synchronize() noexcept override { (void)cudaDeviceSynchronize(); }

 private:
  int device_;
};

}  // namespace

void* CudaState::workspace(size_t bytes) {
  if (bytes <= workspace_bytes_) return workspace_;
  // At least double, so the buffers kept (they may be in a captured graph) add up to less than the
  // current one however many small steps the requests grow in; exactly the request when the
  // doubled size does not fit.
  size_t size = std::max(bytes, 2 * workspace_bytes_);
  void* fresh = nullptr;
  try {
    fresh = allocator->allocate(size, stream);
  } catch (const Error&) {
    if (size == bytes) throw;
    size = bytes;
    fresh = allocator->allocate(size, stream);
  }
  if (workspace_) retired_workspaces_.push_back(workspace_);
  workspace_ = fresh;
  workspace_bytes_ = size;
  return workspace_;
}

CudaState::~CudaState() {
  caches_.clear();  // op caches may hold library descriptors: release them before the handles
  if (workspace_) allocator->deallocate(workspace_);
  for (void* p : retired_workspaces_) allocator->deallocate(p);
  if (cublas_workspace_) allocator->deallocate(cublas_workspace_);
  if (cudnn) cudnnDestroy(cudnn);
  if (cublas) cublasDestroy(cublas);
  if (copy_stream) cudaStreamDestroy(copy_stream);
  if (stream) cudaStreamDestroy(stream);
}

namespace cuda_backend {

int device_count() noexcept {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return n;
}

std::string unavailable_reason() {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    return std::string("no usable CUDA device: ") + cudaGetErrorString(e);
  }
  return n == 0 ? "no CUDA device is visible" : "";
}

std::shared_ptr<CudaState> create(int device_index) {
  return make_cuda_state(device_index);
}

}  // namespace cuda_backend

// cuBLAS workspace size: 32 MiB covers Hopper's largest recommendation for cublasLt heuristics.
constexpr size_t kCublasWorkspaceBytes = size_t(32) << 20;

std::shared_ptr<CudaState> make_cuda_state(int device_index) {
  using cuda_backend::device_count;
  using cuda_backend::unavailable_reason;
  const int n = device_count();
  YOLO_CHECK(device_index >= 0 && device_index < n,
             "cuda:" << device_index << " is not available (" << n << " CUDA device(s) visible"
                     << (n == 0 ? "; " + unavailable_reason() : std::string()) << ")");
  auto s = std::make_shared<CudaState>();
  s->device = device_index;
  if (const char* v = std::getenv("YOLO_CONV_AUTOTUNE")) s->conv_autotune = std::string(v) != "0";
  CUDA_CHECK(cudaSetDevice(device_index));
  CUDA_CHECK(cudaGetDeviceProperties(&s->props, device_index));
  CUDA_CHECK(cudaStreamCreateWithFlags(&s->stream, cudaStreamNonBlocking));
  CUDA_CHECK(cudaStreamCreateWithFlags(&s->copy_stream, cudaStreamNonBlocking));
  CUBLAS_CHECK(cublasCreate(&s->cublas));
  CUBLAS_CHECK(cublasSetStream(s->cublas, s->stream));
  CUDNN_CHECK(cudnnCreate(&s->cudnn));
  CUDNN_CHECK(cudnnSetStream(s->cudnn, s->stream));
  s->allocator = std::make_shared<CachingAllocator>(std::make_unique<CudaRawMemory>(device_index));
  // After cublasSetStream, which resets a user workspace.
  s->cublas_workspace_ = s->allocator->allocate(kCublasWorkspaceBytes, s->stream);
  CUBLAS_CHECK(cublasSetWorkspace(s->cublas, s->cublas_workspace_, kCublasWorkspaceBytes));
  return s;
}

namespace cuda_backend {

std::shared_ptr<Allocator> allocator(CudaState& state) {
  return state.allocator;
}

StreamHandle stream(CudaState& state) {
  return state.stream;
}

void memcpy(void* dst, bool dst_on_host, const void* src, bool src_on_host, size_t bytes,
            CudaState& state) {
  cudaMemcpyKind kind = cudaMemcpyDeviceToDevice;
  if (dst_on_host && src_on_host)
    kind = cudaMemcpyHostToHost;
  else if (dst_on_host)
    kind = cudaMemcpyDeviceToHost;
  else if (src_on_host)
    kind = cudaMemcpyHostToDevice;
  CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, kind, state.stream));
  if (dst_on_host || src_on_host) CUDA_CHECK(cudaStreamSynchronize(state.stream));
}

void memset_zero(void* dst, size_t bytes, CudaState& state) {
  CUDA_CHECK(cudaMemsetAsync(dst, 0, bytes, state.stream));
}

void synchronize(CudaState& state) {
  CUDA_CHECK(cudaStreamSynchronize(state.stream));
}

void* host_alloc_pinned(size_t bytes, int device) {
  int current = 0;
  CUDA_CHECK(cudaGetDevice(&current));
  CUDA_CHECK(cudaSetDevice(device));
  void* p = nullptr;
  // Portable: usable by every device's streams, whichever device is current.
  const cudaError_t e = cudaHostAlloc(&p, bytes == 0 ? 64 : bytes, cudaHostAllocPortable);
  (void)cudaSetDevice(current);  // the calling thread's device as it was
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    YOLO_FAIL("cannot allocate " << format_bytes(bytes) << " of pinned host memory ("
                                 << cudaGetErrorString(e)
                                 << "): use fewer loader workers, a smaller batch or image size");
  }
  return p;
}

void host_free_pinned(void* ptr) noexcept {
  if (ptr) (void)cudaFreeHost(ptr);
}

StreamHandle copy_stream(CudaState& state) {
  return state.copy_stream;
}

void memcpy_h2d_async(void* dst, const void* src, size_t bytes, StreamHandle stream,
                      CudaState& state) {
  CUDA_CHECK(cudaSetDevice(state.device));
  CUDA_CHECK(
      cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, static_cast<cudaStream_t>(stream)));
}

EventHandle event_create(CudaState& state) {
  CUDA_CHECK(cudaSetDevice(state.device));
  cudaEvent_t e = nullptr;
  CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  return e;
}

void event_destroy(EventHandle event) noexcept {
  if (event) (void)cudaEventDestroy(static_cast<cudaEvent_t>(event));
}

void event_record(EventHandle event, StreamHandle stream) {
  CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(event), static_cast<cudaStream_t>(stream)));
}

void stream_wait_event(StreamHandle stream, EventHandle event) {
  CUDA_CHECK(
      cudaStreamWaitEvent(static_cast<cudaStream_t>(stream), static_cast<cudaEvent_t>(event), 0));
}

bool event_query(EventHandle event) {
  const cudaError_t e = cudaEventQuery(static_cast<cudaEvent_t>(event));
  if (e == cudaErrorNotReady) {
    (void)cudaGetLastError();
    return false;
  }
  CUDA_CHECK(e);
  return true;
}

void event_synchronize(EventHandle event) {
  CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(event)));
}

}  // namespace cuda_backend
}  // namespace yolo
