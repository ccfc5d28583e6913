// Statement-safe checks for CUDA, cuBLAS, cuDNN and NCCL calls and kernel launches (CUDA sources
// only). Each failure throws yolo::Error naming the call, the library's error string, file and
// line.
//   CUDA_CHECK(cudaMemsetAsync(p, 0, n, stream));
//   my_kernel<<<grid, block, 0, stream>>>(...); YOLO_LAUNCH_CHECK();
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include "core/error.h"

namespace yolo {
const char* cublas_status_name(cublasStatus_t s);
}  // namespace yolo

#define CUDA_CHECK(expr) YOLO_GPU_CHECK_GEN(expr, cudaSuccess, cudaGetErrorString, "CUDA")
#define CUBLAS_CHECK(expr) \
  YOLO_GPU_CHECK_GEN(expr, CUBLAS_STATUS_SUCCESS, ::yolo::cublas_status_name, "cuBLAS")
#define CUDNN_CHECK(expr) \
  YOLO_GPU_CHECK_GEN(expr, CUDNN_STATUS_SUCCESS, cudnnGetErrorString, "cuDNN")
// NCCL_CHECK is in core/nccl_check.h (included only by the NCCL code in dist/).
#define YOLO_LAUNCH_CHECK() CUDA_CHECK(cudaGetLastError())
