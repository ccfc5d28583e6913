// CUDA side of the benchmark suite (bench/cuda_baseline.h): CUDA-event timing on the context's
// stream, the device-to-device copy bandwidth used as the 100% mark for memory-bound rows, and the
// cuDNN batch-norm baseline (legacy cudnnBatchNormalizationForwardTraining, NHWC, SPATIAL_PERSISTENT)
// that the conv+BN+SiLU rows compare our fused kernel with. Built only in CUDA builds.
#include <cuda_runtime.h>
#include <cudnn.h>

#include <algorithm>
#include <sstream>

#include "bench/cuda_baseline.h"
#include "core/cuda_check.h"
#include "core/cuda_state.h"

namespace yolo::bench {
namespace {

// Owns a list of CUDA events; destroys them without throwing.
class Events {
 public:
  explicit Events(size_t n) : events_(n, nullptr) {
    for (cudaEvent_t& e : events_) CUDA_CHECK(cudaEventCreate(&e));
  }
  ~Events() {
    for (cudaEvent_t e : events_) {
      if (e) cudaEventDestroy(e);
    }
  }
  Events(const Events&) = delete;
  Events& operator=(const Events&) = delete;
  cudaEvent_t operator[](size_t i) const { return events_[i]; }

 private:
  std::vector<cudaEvent_t> events_;
};

struct TensorDesc {
  cudnnTensorDescriptor_t d = nullptr;
  TensorDesc() { CUDNN_CHECK(cudnnCreateTensorDescriptor(&d)); }
  ~TensorDesc() {
    if (d) cudnnDestroyTensorDescriptor(d);
  }
  TensorDesc(const TensorDesc&) = delete;
  TensorDesc& operator=(const TensorDesc&) = delete;
};

cudnnDataType_t cudnn_dtype(DType t) {
  switch (t) {
    case DType::f32: return CUDNN_DATA_FLOAT;
    case DType::f16: return CUDNN_DATA_HALF;
    case DType::bf16: return CUDNN_DATA_BFLOAT16;
    default: YOLO_FAIL("cudnn baseline: unsupported dtype " << dtype_name(t) << " (f32, f16, bf16)");
  }
}

}  // namespace

std::vector<double> cuda_time_us(Context& ctx, const std::function<void(int)>& fn, int warmup,
                                 int repeats) {
  cudaStream_t stream = ctx.cuda().stream;
  for (int i = 0; i < warmup; ++i) fn(i);
  Events start(static_cast<size_t>(repeats)), stop(static_cast<size_t>(repeats));
  for (int r = 0; r < repeats; ++r) {
    CUDA_CHECK(cudaEventRecord(start[r], stream));
    fn(warmup + r);
    CUDA_CHECK(cudaEventRecord(stop[r], stream));
  }
  CUDA_CHECK(cudaStreamSynchronize(stream));
  std::vector<double> us(static_cast<size_t>(repeats));
  for (int r = 0; r < repeats; ++r) {
    float ms = 0.f;
    CUDA_CHECK(cudaEventElapsedTime(&ms, start[r], stop[r]));
    us[r] = 1000.0 * ms;
  }
  return us;
}

double cuda_copy_peak_gbps(Context& ctx, size_t bytes, int repeats) {
  Tensor src = ctx.zeros({static_cast<int64_t>(bytes)}, DType::u8);
  Tensor dst = ctx.zeros({static_cast<int64_t>(bytes)}, DType::u8);
  cudaStream_t stream = ctx.cuda().stream;
  std::vector<double> us = cuda_time_us(
      ctx,
      [&](int) {
        CUDA_CHECK(cudaMemcpyAsync(dst.raw(), src.raw(), bytes, cudaMemcpyDeviceToDevice, stream));
      },
      3, repeats);
  std::sort(us.begin(), us.end());
  return 2.0 * static_cast<double>(bytes) / (us.front() * 1e3);
}

std::string cuda_device_text(Context& ctx) {
  const cudaDeviceProp& p = ctx.cuda().props;
  std::ostringstream s;
  s << p.name << ", " << p.multiProcessorCount << " SMs, L2 " << (p.l2CacheSize >> 20) << " MB, sm_"
    << p.major << p.minor;
  return s.str();
}

size_t cuda_l2_bytes(Context& ctx) { return static_cast<size_t>(ctx.cuda().props.l2CacheSize); }

double cuda_gemm_peak_tflops(Context& ctx, DType dtype, int size, int repeats) {
  YOLO_CHECK(dtype == DType::f32 || dtype == DType::f16,
             "gemm peak: dtype " << dtype_name(dtype) << " (f32 or f16)");
  const int64_t n = size;
  Tensor a = ctx.zeros({n, n}, dtype), b = ctx.zeros({n, n}, dtype), c = ctx.zeros({n, n}, dtype);
  CudaState& cs = ctx.cuda();
  CUBLAS_CHECK(cublasSetStream(cs.cublas, cs.stream));
  const cudaDataType_t t = dtype == DType::f32 ? CUDA_R_32F : CUDA_R_16F;
  const float one = 1.f, zero = 0.f;
  std::vector<double> us = cuda_time_us(
      ctx,
      [&](int) {
        CUBLAS_CHECK(cublasGemmEx(cs.cublas, CUBLAS_OP_N, CUBLAS_OP_N, size, size, size, &one,
                                  a.raw(), t, size, b.raw(), t, size, &zero, c.raw(), t, size,
                                  CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
      },
      2, repeats);
  std::sort(us.begin(), us.end());
  return 2.0 * double(n) * double(n) * double(n) / (us.front() * 1e6);
}

void cudnn_batchnorm_fwd_train(Context& ctx, const Tensor& x, const Tensor& gamma,
                               const Tensor& beta, const Tensor& running_mean,
                               const Tensor& running_var, const Tensor& save_mean,
                               const Tensor& save_invstd, const Tensor& y, double momentum,
                               double eps) {
  check_ndim("cudnn_batchnorm_fwd_train", "x", x, 4);
  check_same_shape("cudnn_batchnorm_fwd_train", "x", x, "y", y);
  check_same_dtype("cudnn_batchnorm_fwd_train", "x", x, "y", y);
  const int n = static_cast<int>(x.dim(0)), h = static_cast<int>(x.dim(1));
  const int w = static_cast<int>(x.dim(2)), c = static_cast<int>(x.dim(3));
  for (const Tensor* t : {&gamma, &beta, &running_mean, &running_var, &save_mean, &save_invstd}) {
    check_shape("cudnn_batchnorm_fwd_train", "channel tensor", *t, {x.dim(3)});
    check_dtype("cudnn_batchnorm_fwd_train", "channel tensor", *t, DType::f32);
  }
  CudaState& cs = ctx.cuda();
  const cudnnBatchNormMode_t mode = CUDNN_BATCHNORM_SPATIAL_PERSISTENT;
  TensorDesc xd, bnd;
  CUDNN_CHECK(cudnnSetTensor4dDescriptor(xd.d, CUDNN_TENSOR_NHWC, cudnn_dtype(x.dtype()), n, c, h, w));
  CUDNN_CHECK(cudnnDeriveBNTensorDescriptor(bnd.d, xd.d, mode));
  CUDNN_CHECK(cudnnSetStream(cs.cudnn, cs.stream));
  const float one = 1.f, zero = 0.f;
  CUDNN_CHECK(cudnnBatchNormalizationForwardTraining(
      cs.cudnn, mode, &one, &zero, xd.d, x.raw(), xd.d, y.raw(), bnd.d, gamma.raw(), beta.raw(),
      momentum, running_mean.raw(), running_var.raw(), std::max(eps, CUDNN_BN_MIN_EPSILON),
      save_mean.raw(), save_invstd.raw()));
}

}  // namespace yolo::bench
