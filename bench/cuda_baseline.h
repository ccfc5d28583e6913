// CUDA-only pieces of the benchmark suite: event timing, the copy-bandwidth peak, and the cuDNN
// baselines our kernels are compared with. Implemented in bench/cuda/cudnn_baseline.cu (CUDA
// builds) or bench/cuda_baseline_none.cpp (CPU-only builds, where every entry throws yolo::Error).
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "core/context.h"

namespace yolo::bench {

// Runs fn(i) for i in [0, warmup + repeats) on ctx.cuda().stream; returns the elapsed time of each
// timed call in µs, measured by a CUDA event pair around it.
std::vector<double> cuda_time_us(Context& ctx, const std::function<void(int)>& fn, int warmup,
                                 int repeats);
// Device-to-device cudaMemcpyAsync bandwidth of a `bytes` copy in GB/s, counting read + write
// (the fastest of `repeats`: a peak).
double cuda_copy_peak_gbps(Context& ctx, size_t bytes, int repeats);
// "NVIDIA H100 80GB HBM3, 132 SMs, L2 50 MB, sm_90".
std::string cuda_device_text(Context& ctx);
size_t cuda_l2_bytes(Context& ctx);
// cuBLAS GEMM throughput in TFLOP/s on m = n = k = `size` matrices of dtype (f32: plain FP32 SGEMM,
// no TF32; f16: tensor cores with f32 accumulation), fastest of `repeats`: the 100% mark for
// convolution rows.
double cuda_gemm_peak_tflops(Context& ctx, DType dtype, int size, int repeats);

// The baseline batch norm: cudnnBatchNormalizationForwardTraining (SPATIAL_PERSISTENT, NHWC
// descriptors), no activation. x, y: (N, H, W, C) f32 or f16; gamma, beta, running_*, save_*:
// (C) f32. Same semantics as batchnorm_fwd_train with Activation::none.
void cudnn_batchnorm_fwd_train(Context& ctx, const Tensor& x, const Tensor& gamma,
                               const Tensor& beta, const Tensor& running_mean,
                               const Tensor& running_var, const Tensor& save_mean,
                               const Tensor& save_invstd, const Tensor& y, double momentum,
                               double eps);

}  // namespace yolo::bench
