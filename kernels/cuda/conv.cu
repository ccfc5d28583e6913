// CUDA conv2d (f32, f16, bf16), the GPU twin of kernels/cpu/conv.cpp, called through
// kernels/conv.h. cuDNN's legacy API in NHWC / OHWI does every conv except plain 1x1 ones (stride
// 1, no padding, one group), which are a single cuBLAS GEMM on the NHWC rows; bias broadcast and
// the bias gradient are small kernels here; the cuDNN plans and algorithm choices live in
// kernels/cuda/conv_plan.cu. Everything runs on ctx.cuda().stream without host synchronisation.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>

#include "core/cuda_check.h"
#include "core/cuda_state.h"
#include "kernels/conv.h"
#include "kernels/cuda/conv_plan.cuh"
#include "kernels/cuda/convert.cuh"

namespace yolo {
namespace {

using conv_detail::data_choice;
using conv_detail::filter_choice;
using conv_detail::forward_choice;
using conv_detail::Plan;
using conv_detail::plan_for;
using conv_detail::workspace;

// Note [Conv math policy]
// f16 / bf16: tensors in the 16-bit type, arithmetic in f32 (cuDNN compute type FLOAT with
// TENSOR_OP_MATH, or the math type its heuristic pairs with the chosen algorithm; cuBLAS
// CUBLAS_COMPUTE_32F); FFT and Winograd algorithms only when nothing else qualifies, since they
// may keep transformed operands in the 16-bit type (an emulation of a 4x4-tile Winograd with f16
// transforms missed the f16 conv test's tolerance 4.9 times over, bf16 7.8 times). f32: true f32
// everywhere, no TF32: cuDNN FMA_MATH (tensor-op algorithms are skipped) and cuBLAS COMPUTE_32F
// under the handle's default math mode. TF32 would be an explicit opt-in, and nothing opts in
// today. NVIDIA_TF32_OVERRIDE=0 also forbids it process-wide. The algorithm filter and preference
// are in kernels/cuda/conv_plan.cu (usable_algorithm).

cudaDataType_t cuda_type(DType t) {
  return t == DType::f32 ? CUDA_R_32F : t == DType::f16 ? CUDA_R_16F : CUDA_R_16BF;
}

bool plain_1x1(const Tensor& w, const Conv2dParams& p) {
  return w.dim(1) == 1 && w.dim(2) == 1 && p.stride_h == 1 && p.stride_w == 1 && p.pad_h == 0 &&
         p.pad_w == 0 && p.groups == 1;
}

// Column-major C (m, n) = alpha op(A) op(B) + beta C in the tensors' dtype, f32 arithmetic
// (mapping of the NHWC / OHWI row-major operands: cuda-notes.md §1.8).
void gemm(CudaState& cs, cublasOperation_t ta, cublasOperation_t tb, int64_t m, int64_t n,
          int64_t k, const void* a, int64_t lda, const void* b, int64_t ldb, float beta, void* c,
          int64_t ldc, DType dt) {
  YOLO_CHECK(m < INT32_MAX && n < INT32_MAX && k < INT32_MAX,
             "conv2d: 1x1 GEMM of " << m << "x" << n << "x" << k << " exceeds cuBLAS's int range");
  const float alpha = 1.0f;
  const cudaDataType_t type = cuda_type(dt);
  CUBLAS_CHECK(cublasGemmEx(cs.cublas, ta, tb, int(m), int(n), int(k), &alpha, a, type, int(lda), b,
                            type, int(ldb), &beta, c, type, int(ldc), CUBLAS_COMPUTE_32F,
                            CUBLAS_GEMM_DEFAULT));
}

using cuda::from_f32;
using cuda::to_f32;

// out[i] = row[i % row_len] for i < total: broadcasts one row (the bias) over all rows of y.
// V is a 16-byte vector when the row allows it, else the element's own width.
template <typename V>
__global__ void broadcast_row_kernel(V* out, const V* row, int64_t total, int64_t row_len) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x)
    out[i] = row[i % row_len];
}

int grid_for(int64_t work, int threads) {
  const int64_t g = (work + threads - 1) / threads;
  return int(std::clamp<int64_t>(g, 1, int64_t(65535) * 16));
}

// y (N, OH, OW, O) <- bias (O) broadcast.
void broadcast_bias(CudaState& cs, const Tensor& y, const Tensor& bias) {
  const size_t row_bytes = bias.nbytes();
  const bool vec = row_bytes % 16 == 0 && reinterpret_cast<uintptr_t>(y.raw()) % 16 == 0 &&
                   reinterpret_cast<uintptr_t>(bias.raw()) % 16 == 0;
  if (vec) {
    const int64_t total = int64_t(y.nbytes() / 16), row_len = int64_t(row_bytes / 16);
    broadcast_row_kernel<<<grid_for(total, 256), 256, 0, cs.stream>>>(
        static_cast<uint4*>(y.raw()), static_cast<const uint4*>(bias.raw()), total, row_len);
  } else if (y.dtype() == DType::f32) {
    broadcast_row_kernel<<<grid_for(y.numel(), 256), 256, 0, cs.stream>>>(
        static_cast<uint32_t*>(y.raw()), static_cast<const uint32_t*>(bias.raw()), y.numel(),
        bias.numel());
  } else {
    broadcast_row_kernel<<<grid_for(y.numel(), 256), 256, 0, cs.stream>>>(
        static_cast<uint16_t*>(y.raw()), static_cast<const uint16_t*>(bias.raw()), y.numel(),
        bias.numel());
  }
  YOLO_LAUNCH_CHECK();
}

// Note [Conv bias gradient]
// dbias[c] = sum over rows of dy (rows, o), deterministic in two passes: blocks of 32 channels x 8
// row lanes sum a fixed slice of rows each into partial[split, c] (f32), then one thread per
// channel adds the splits in order. The split count depends only on the shape.
constexpr int kBiasLanes = 8;

template <typename T>
__global__ void bias_grad_partial_kernel(const T* dy, int64_t rows, int64_t o,
                                         int64_t rows_per_split, float* partial) {
  __shared__ float sums[kBiasLanes][33];
  const int64_t c = blockIdx.x * 32 + threadIdx.x;
  const int64_t r0 = blockIdx.y * rows_per_split, r1 = min(rows, r0 + rows_per_split);
  float acc = 0.0f;
  if (c < o)
    for (int64_t r = r0 + threadIdx.y; r < r1; r += kBiasLanes) acc += to_f32(dy[r * o + c]);
  sums[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && c < o) {
    float s = 0.0f;
    for (int l = 0; l < kBiasLanes; ++l) s += sums[l][threadIdx.x];
    partial[blockIdx.y * o + c] = s;
  }
}

template <typename T>
__global__ void bias_grad_finish_kernel(const float* partial, int splits, int64_t o, T* dbias,
                                        bool accumulate) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= o) return;
  float s = accumulate ? to_f32(dbias[c]) : 0.0f;
  for (int i = 0; i < splits; ++i) s += partial[i * o + c];
  dbias[c] = from_f32<T>(s);
}

template <typename T>
void bias_grad(Context& ctx, const Tensor& dy, const Tensor& dbias, bool accumulate) {
  const int64_t o = dy.dim(3), rows = dy.numel() / o;
  const int splits = int(std::clamp<int64_t>((rows + 255) / 256, 1, 256));
  const int64_t rows_per_split = (rows + splits - 1) / splits;
  Tensor partial = ctx.empty({splits, o}, DType::f32);
  const dim3 grid(unsigned((o + 31) / 32), unsigned(splits)), block(32, kBiasLanes);
  cudaStream_t stream = ctx.cuda().stream;
  bias_grad_partial_kernel<<<grid, block, 0, stream>>>(static_cast<const T*>(dy.raw()), rows, o,
                                                       rows_per_split, partial.data<float>());
  YOLO_LAUNCH_CHECK();
  bias_grad_finish_kernel<<<unsigned((o + 127) / 128), 128, 0, stream>>>(
      partial.data<float>(), splits, o, static_cast<T*>(dbias.raw()), accumulate);
  YOLO_LAUNCH_CHECK();
}

}  // namespace

void conv2d_fwd_cuda(Context& ctx, const Tensor& x, const Tensor& w, const Tensor& bias,
                     const Tensor& y, const Conv2dParams& p) {
  CudaState& cs = ctx.cuda();
  const float alpha = 1.0f, beta = bias.defined() ? 1.0f : 0.0f;
  if (bias.defined()) broadcast_bias(cs, y, bias);
  if (plain_1x1(w, p)) {  // y (M, O) = x (M, C) w^T
    const int64_t c = x.dim(3), o = w.dim(0), m = x.numel() / c;
    gemm(cs, CUBLAS_OP_T, CUBLAS_OP_N, o, m, c, w.raw(), c, x.raw(), c, beta, y.raw(), o,
         x.dtype());
    return;
  }
  Plan& plan = plan_for(cs, x.shape(), w.shape(), p, x.dtype());
  const auto c = forward_choice(ctx, plan, x, w, y);
  CUDNN_CHECK(cudnnConvolutionForward(cs.cudnn, &alpha, plan.x, x.raw(), plan.w, w.raw(),
                                      plan.conv[0], c.algo, workspace(cs, c.workspace), c.workspace,
                                      &beta, plan.y, y.raw()));
}

void conv2d_fwd_act_cuda(Context& ctx, const Tensor& x, const Tensor& w, const Tensor& bias,
                         const Tensor& y, const Conv2dParams& p, Activation act) {
  conv2d_fwd_cuda(ctx, x, w, bias, y, p);
  if (act == Activation::silu) silu_fwd_cuda(ctx, y, y);
}

void conv2d_bwd_data_cuda(Context& ctx, const Tensor& dy, const Tensor& w, const Tensor& dx,
                          const Conv2dParams& p) {
  CudaState& cs = ctx.cuda();
  const float alpha = 1.0f, beta = 0.0f;
  if (plain_1x1(w, p)) {  // dx (M, C) = dy (M, O) w
    const int64_t c = dx.dim(3), o = w.dim(0), m = dx.numel() / c;
    gemm(cs, CUBLAS_OP_N, CUBLAS_OP_N, c, m, o, w.raw(), c, dy.raw(), o, beta, dx.raw(), c,
         dx.dtype());
    return;
  }
  Plan& plan = plan_for(cs, dx.shape(), w.shape(), p, dx.dtype());
  const auto c = data_choice(ctx, plan, dy, w, dx);
  CUDNN_CHECK(cudnnConvolutionBackwardData(cs.cudnn, &alpha, plan.w, w.raw(), plan.y, dy.raw(),
                                           plan.conv[1], c.algo, workspace(cs, c.workspace),
                                           c.workspace, &beta, plan.x, dx.raw()));
}

void conv2d_bwd_filter_cuda(Context& ctx, const Tensor& x, const Tensor& dy, const Tensor& dw,
                            const Tensor& dbias, const Conv2dParams& p, bool accumulate) {
  CudaState& cs = ctx.cuda();
  const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
  if (dbias.defined()) {
    switch (dy.dtype()) {
      case DType::f32:
        bias_grad<float>(ctx, dy, dbias, accumulate);
        break;
      case DType::f16:
        bias_grad<__half>(ctx, dy, dbias, accumulate);
        break;
      default:
        bias_grad<__nv_bfloat16>(ctx, dy, dbias, accumulate);
        break;
    }
  }
  if (plain_1x1(dw, p)) {  // dw (O, C) = dy (M, O)^T x (M, C)
    const int64_t c = x.dim(3), o = dw.dim(0), m = x.numel() / c;
    gemm(cs, CUBLAS_OP_N, CUBLAS_OP_T, c, o, m, x.raw(), c, dy.raw(), o, beta, dw.raw(), c,
         x.dtype());
    return;
  }
  Plan& plan = plan_for(cs, x.shape(), dw.shape(), p, x.dtype());
  const auto c = filter_choice(ctx, plan, x, dy, dw);
  CUDNN_CHECK(cudnnConvolutionBackwardFilter(cs.cudnn, &alpha, plan.x, x.raw(), plan.y, dy.raw(),
                                             plan.conv[2], c.algo, workspace(cs, c.workspace),
                                             c.workspace, &beta, plan.w, dw.raw()));
}

}  // namespace yolo

