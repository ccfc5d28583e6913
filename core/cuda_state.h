// CudaState: the per-device CUDA resources a Context owns (CUDA sources only).
// kernels/cuda code reaches it through ctx.cuda(): ctx.cuda().stream, .cublas, .cudnn,
// .workspace().
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/allocator.h"

namespace yolo {

struct CudaState {
  int device = 0;
  cudaStream_t stream = nullptr;       // compute stream (non-blocking)
  cudaStream_t copy_stream = nullptr;  // host-to-device uploads, overlapping compute
  cublasHandle_t cublas = nullptr;
  cudnnHandle_t cudnn = nullptr;
  cudaDeviceProp props{};
  std::shared_ptr<CachingAllocator> allocator;
  // Time cuDNN's convolution algorithms on first use of each shape (Note [Conv autotune] in
  // kernels/cuda/conv_plan.cu). Off with YOLO_CONV_AUTOTUNE=0: the heuristic choice only.
  bool conv_autotune = true;

  // A scratch buffer shared by cuBLAS and cuDNN calls on `stream`, grown on demand. Growing
  // allocates, so plan the largest size before capturing a graph. A smaller buffer it replaces is
  // kept until the context closes: work recorded earlier (a captured graph) may still use it.
  void* workspace(size_t bytes);
  size_t workspace_bytes() const { return workspace_bytes_; }

  // A per-op cache owned by this device's state (e.g. cuDNN convolution plans), created empty on
  // first use under `name` and destroyed with the context. Callers lock cache_mutex() around use.
  template <typename T>
  T& cache(const std::string& name) {
    std::shared_ptr<void>& slot = caches_[name];
    if (!slot) slot = std::make_shared<T>();
    return *static_cast<T*>(slot.get());
  }
  std::mutex& cache_mutex() { return cache_mutex_; }

  CudaState() = default;
  ~CudaState();
  CudaState(const CudaState&) = delete;
  CudaState& operator=(const CudaState&) = delete;

 private:
  friend std::shared_ptr<CudaState> make_cuda_state(int);
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 0;
  std::vector<void*> retired_workspaces_;
  // cuBLAS's own fixed workspace (cublasSetWorkspace), so it never allocates during graph capture.
  void* cublas_workspace_ = nullptr;
  std::mutex cache_mutex_;
  std::map<std::string, std::shared_ptr<void>> caches_;
};

// Opens device `device_index`: streams, handles, allocator, cuBLAS workspace (core/cuda/).
std::shared_ptr<CudaState> make_cuda_state(int device_index);

}  // namespace yolo
