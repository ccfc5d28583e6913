// CUDA conv2d (f32, f16, bf16), the GPU twin of kernels/cpu/conv.cpp, called through
// kernels/conv.h. cuDNN's legacy API in NHWC / OHWI does every conv except plain 1x1 ones (stride
// 1, no padding, one group), which are a single cuBLAS GEMM on the NHWC rows; bias broadcast and
// the bias gradient are small kernels here. Everything runs on ctx.cuda().stream without host
// synchronisation.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>

#include "core/cuda_check.h"
#include "core/cuda_state.h"
#include "kernels/conv.h"
#include "kernels/cuda/convert.cuh"

namespace yolo {
namespace {

// Note [Conv math policy]
// f16 / bf16: tensors in the 16-bit type, arithmetic in f32 (cuDNN compute type FLOAT with
// TENSOR_OP_MATH, or the math type its heuristic pairs with the chosen algorithm; cuBLAS
// CUBLAS_COMPUTE_32F); FFT and Winograd algorithms only when nothing else qualifies, since they
// may keep transformed operands in the 16-bit type (an emulation of a 4x4-tile Winograd with f16
// transforms missed the f16 conv test's tolerance 4.9 times over, bf16 7.8 times). f32: true f32 everywhere, no TF32: cuDNN FMA_MATH (tensor-op algorithms are
// skipped) and cuBLAS COMPUTE_32F under the handle's default math mode. TF32 would be an explicit
// opt-in, and nothing opts in today. NVIDIA_TF32_OVERRIDE=0 also forbids it process-wide.

// Note [Conv plan cache]
// cuDNN plans live in the context's CudaState (cache "conv2d"), guarded by its cache mutex, keyed
// by (dtype, x shape, w shape, strides, pads, groups). A plan holds the descriptors and, per
// direction, the algorithm and its workspace size, chosen once by the cudnnGet*Algorithm_v7
// heuristics (no timing, no synchronisation). The choice is the first heuristic result that
// succeeded, needs at most kMaxWorkspace bytes and is not a tensor-op (TF32) algorithm for f32,
// preferring in turn (usable_algorithm): deterministic (bitwise reproducible, no atomics) and, for
// 16-bit types, free of FFT/Winograd transforms; then transform-free; then deterministic; then
// any. Plans are immutable once built and freed with the context (a few
// hundred bytes each; YOLOv5 needs ~60 convs x image sizes). The first call for a shape must be
// eager (before CUDA-graph capture): it builds the plan, tunes it (Note [Conv autotune]) and may
// grow the workspace.

// Note [Conv autotune]
// The heuristic's first pick can be far from the fastest: on an H100 it chose a backward-data
// algorithm taking 32 ms for a 3x3 stride-2 32->64 conv at 320x320 (f32, batch 16) where another
// takes 1.7 ms, and a slow backward-filter for the stem. So the first eager call of each direction
// for a shape times cuDNN's candidates with cudnnFind*AlgorithmEx on that call's own inputs and
// keeps the fastest that passes the same filter and preference as the heuristic (Note [Conv plan
// cache]); when none does, or the timing itself fails, the heuristic choice stays with its math
// type. The outputs of the timing runs go to scratch tensors, so a conv's bias
// (already in y) or an accumulated weight gradient is never touched. Not done while the stream is
// being captured (the heuristic choice stays) nor with CudaState::conv_autotune off
// (YOLO_CONV_AUTOTUNE=0). Timing makes the choice depend on the run, as PyTorch's
// cudnn.benchmark, which the reference's training turns on (utils/general.py init_seeds).
constexpr size_t kMaxWorkspace = size_t(256) << 20;

cudnnDataType_t cudnn_type(DType t) {
  switch (t) {
    case DType::f32:
      return CUDNN_DATA_FLOAT;
    case DType::f16:
      return CUDNN_DATA_HALF;
    case DType::bf16:
      return CUDNN_DATA_BFLOAT16;
    default:
      YOLO_CHECK(false, "conv2d: CUDA supports f32, f16, bf16, got " << dtype_name(t));
  }
  return CUDNN_DATA_FLOAT;
}

cudaDataType_t cuda_type(DType t) {
  return t == DType::f32 ? CUDA_R_32F : t == DType::f16 ? CUDA_R_16F : CUDA_R_16BF;
}

struct Plan {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv[3] = {};  // fwd, bwd-data, bwd-filter: math type per algorithm
  cudnnConvolutionFwdAlgo_t fwd_algo{};
  cudnnConvolutionBwdDataAlgo_t data_algo{};
  cudnnConvolutionBwdFilterAlgo_t filter_algo{};
  size_t workspace[3] = {};
  bool tuned[3] = {false, false, false};  // per direction: timed (Note [Conv autotune])

  Plan() = default;
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;
  ~Plan() {
    for (cudnnConvolutionDescriptor_t c : conv)
      if (c) cudnnDestroyConvolutionDescriptor(c);
    if (w) cudnnDestroyFilterDescriptor(w);
    if (y) cudnnDestroyTensorDescriptor(y);
    if (x) cudnnDestroyTensorDescriptor(x);
  }
};

using PlanKey = std::tuple<int, Shape, Shape, int, int, int, int, int>;

// FFT and Winograd algorithms compute on transformed operands, which for 16-bit types may be stored
// in the 16-bit type: several roundings per output instead of one (Note [Conv math policy]).
bool transforms(cudnnConvolutionFwdAlgo_t a) {
  return a == CUDNN_CONVOLUTION_FWD_ALGO_FFT || a == CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING ||
         a == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD || a == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED;
}
bool transforms(cudnnConvolutionBwdDataAlgo_t a) {
  return a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT || a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING ||
         a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD ||
         a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED;
}
bool transforms(cudnnConvolutionBwdFilterAlgo_t a) {
  return a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT ||
         a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING ||
         a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD ||
         a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED;
}

// Index of the algorithm to use among n heuristic or timed results (Note [Conv plan cache]); -1
// when none qualifies. Preference, first match in the results' order: deterministic and (for
// 16-bit types) no transform, then no transform, then deterministic, then any.
template <typename Perf>
int usable_algorithm(const Perf* perf, int n, bool is_f32) {
  for (int tier = 0; tier < 4; ++tier) {
    const bool need_deterministic = tier == 0 || tier == 2, need_direct = !is_f32 && tier < 2;
    for (int i = 0; i < n; ++i) {
      if (perf[i].status != CUDNN_STATUS_SUCCESS || perf[i].memory > kMaxWorkspace) continue;
      if (is_f32 && (perf[i].mathType == CUDNN_TENSOR_OP_MATH ||
                     perf[i].mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION))
        continue;
      if (need_deterministic && perf[i].determinism != CUDNN_DETERMINISTIC) continue;
      if (need_direct && transforms(perf[i].algo)) continue;
      return i;
    }
  }
  return -1;
}

template <typename Perf>
int pick_algorithm(const Perf* perf, int n, bool is_f32, const char* direction, const Shape& xs,
                   const Shape& ws) {
  const int i = usable_algorithm(perf, n, is_f32);
  YOLO_CHECK(i >= 0, "conv2d: cuDNN offers no " << direction << " algorithm for x " << shape_str(xs)
                                                << " and w " << shape_str(ws) << " within "
                                                << (kMaxWorkspace >> 20) << " MiB of workspace");
  return i;
}

std::unique_ptr<Plan> build_plan(CudaState& cs, const Shape& xs, const Shape& ws,
                                 const Conv2dParams& p, DType dt) {
  auto plan = std::make_unique<Plan>();
  const cudnnDataType_t type = cudnn_type(dt);
  const bool is_f32 = dt == DType::f32;
  const int oh = int(conv2d_out_size(xs[1], ws[1], p.stride_h, p.pad_h));
  const int ow = int(conv2d_out_size(xs[2], ws[2], p.stride_w, p.pad_w));
  CUDNN_CHECK(cudnnCreateTensorDescriptor(&plan->x));
  CUDNN_CHECK(cudnnCreateTensorDescriptor(&plan->y));
  CUDNN_CHECK(cudnnCreateFilterDescriptor(&plan->w));
  CUDNN_CHECK(cudnnSetTensor4dDescriptor(plan->x, CUDNN_TENSOR_NHWC, type, int(xs[0]), int(xs[3]),
                                         int(xs[1]), int(xs[2])));
  CUDNN_CHECK(
      cudnnSetTensor4dDescriptor(plan->y, CUDNN_TENSOR_NHWC, type, int(xs[0]), int(ws[0]), oh, ow));
  CUDNN_CHECK(cudnnSetFilter4dDescriptor(plan->w, type, CUDNN_TENSOR_NHWC, int(ws[0]), int(ws[3]),
                                         int(ws[1]), int(ws[2])));
  for (cudnnConvolutionDescriptor_t& conv : plan->conv) {
    CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&conv));
    CUDNN_CHECK(cudnnSetConvolution2dDescriptor(conv, p.pad_h, p.pad_w, p.stride_h, p.stride_w, 1,
                                                1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    CUDNN_CHECK(cudnnSetConvolutionGroupCount(conv, p.groups));
    CUDNN_CHECK(cudnnSetConvolutionMathType(conv, is_f32 ? CUDNN_FMA_MATH : CUDNN_TENSOR_OP_MATH));
  }
  int dims[4] = {};
  CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(plan->conv[0], plan->x, plan->w, &dims[0],
                                                    &dims[1], &dims[2], &dims[3]));
  YOLO_ASSERT(dims[0] == xs[0] && dims[1] == ws[0] && dims[2] == oh && dims[3] == ow);
  // The chosen algorithm's math type goes on its descriptor (f32 stays FMA: Note [Conv math
  // policy]).
  auto set_math = [&](cudnnConvolutionDescriptor_t conv, cudnnMathType_t m) {
    if (!is_f32) CUDNN_CHECK(cudnnSetConvolutionMathType(conv, m));
  };
  int n = 0;
  {
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(cs.cudnn, plan->x, plan->w, plan->conv[0],
                                                       plan->y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
                                                       &n, perf));
    const int i = pick_algorithm(perf, n, is_f32, "forward", xs, ws);
    plan->fwd_algo = perf[i].algo;
    set_math(plan->conv[0], perf[i].mathType);
    CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(
        cs.cudnn, plan->x, plan->w, plan->conv[0], plan->y, plan->fwd_algo, &plan->workspace[0]));
  }
  {
    cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(
        cs.cudnn, plan->w, plan->y, plan->conv[1], plan->x, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT,
        &n, perf));
    const int i = pick_algorithm(perf, n, is_f32, "backward-data", xs, ws);
    plan->data_algo = perf[i].algo;
    set_math(plan->conv[1], perf[i].mathType);
    CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(
        cs.cudnn, plan->w, plan->y, plan->conv[1], plan->x, plan->data_algo, &plan->workspace[1]));
  }
  {
    cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(
        cs.cudnn, plan->x, plan->y, plan->conv[2], plan->w, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT,
        &n, perf));
    const int i = pick_algorithm(perf, n, is_f32, "backward-filter", xs, ws);
    plan->filter_algo = perf[i].algo;
    set_math(plan->conv[2], perf[i].mathType);
    CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(
        cs.cudnn, plan->x, plan->y, plan->conv[2], plan->w, plan->filter_algo,
        &plan->workspace[2]));
  }
  return plan;
}

// The cached plan for this conv (Note [Conv plan cache]).
Plan& plan_for(CudaState& cs, const Shape& xs, const Shape& ws, const Conv2dParams& p,
                     DType dt) {
  const PlanKey key{int(dt), xs, ws, p.stride_h, p.stride_w, p.pad_h, p.pad_w, p.groups};
  std::lock_guard<std::mutex> lock(cs.cache_mutex());
  auto& plans = cs.cache<std::map<PlanKey, std::unique_ptr<Plan>>>("conv2d");
  std::unique_ptr<Plan>& slot = plans[key];
  if (!slot) slot = build_plan(cs, xs, ws, p, dt);
  return *slot;
}

void* workspace(CudaState& cs, size_t bytes) {
  return bytes ? cs.workspace(bytes) : nullptr;
}

// The algorithm and workspace size one direction of a conv runs with.
template <typename Algo>
struct Choice {
  Algo algo;
  size_t workspace;
};

bool capturing(cudaStream_t stream) {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  CUDA_CHECK(cudaStreamIsCapturing(stream, &status));
  return status != cudaStreamCaptureStatusNone;
}

// Whether this call should time the direction's algorithms (Note [Conv autotune]); the caller
// holds the cache mutex.
bool should_tune(CudaState& cs, const Plan& plan, int direction) {
  return cs.conv_autotune && !plan.tuned[direction] && !capturing(cs.stream);
}

// Scratch output and workspace for a timing run, or nothing when the device cannot spare them
// (then the heuristic choice stays: tuning must never turn a run that fits into an OOM).
bool find_buffers(Context& ctx, const Tensor& out, Tensor& scratch, Tensor& space) {
  try {
    scratch = ctx.empty(out.shape(), out.dtype());
    space = ctx.empty({int64_t(kMaxWorkspace)}, DType::u8);
    return true;
  } catch (const Error&) {
    return false;
  }
}

// Before a Find, the descriptor gets back the math type the plan started from, so every candidate
// (tensor-op or not, for 16-bit types) is timed. Returns the math type it had, which goes back on
// when no timed candidate qualifies and the heuristic choice stays.
cudnnMathType_t reset_math(cudnnConvolutionDescriptor_t conv, bool is_f32) {
  cudnnMathType_t had = CUDNN_DEFAULT_MATH;
  CUDNN_CHECK(cudnnGetConvolutionMathType(conv, &had));
  CUDNN_CHECK(cudnnSetConvolutionMathType(conv, is_f32 ? CUDNN_FMA_MATH : CUDNN_TENSOR_OP_MATH));
  return had;
}

// Puts a descriptor's math type back when a Find throws, so the heuristic algorithm the plan keeps
// runs with the math type it was chosen with.
struct MathTypeGuard {
  cudnnConvolutionDescriptor_t conv;
  cudnnMathType_t had;
  bool armed = true;
  ~MathTypeGuard() {
    if (armed) (void)cudnnSetConvolutionMathType(conv, had);
  }
};

Choice<cudnnConvolutionFwdAlgo_t> forward_choice(Context& ctx, Plan& plan, const Tensor& x,
                                                 const Tensor& w, const Tensor& y) {
  CudaState& cs = ctx.cuda();
  std::lock_guard<std::mutex> lock(cs.cache_mutex());
  if (should_tune(cs, plan, 0)) {
    const bool is_f32 = x.dtype() == DType::f32;
    Tensor scratch, space;
    if (!find_buffers(ctx, y, scratch, space)) {
      plan.tuned[0] = true;
      return {plan.fwd_algo, plan.workspace[0]};
    }
    MathTypeGuard guard{plan.conv[0], reset_math(plan.conv[0], is_f32)};
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int n = 0;
    CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithmEx(
        cs.cudnn, plan.x, x.raw(), plan.w, w.raw(), plan.conv[0], plan.y, scratch.raw(),
        CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, perf, space.raw(), kMaxWorkspace));
    const int i = usable_algorithm(perf, n, is_f32);
    if (i < 0) {  // nothing qualifies: the heuristic choice stays (the guard restores its math)
      plan.tuned[0] = true;
      return {plan.fwd_algo, plan.workspace[0]};
    }
    guard.armed = false;  // the timed choice's math type goes on instead
    plan.fwd_algo = perf[i].algo;
    if (!is_f32) CUDNN_CHECK(cudnnSetConvolutionMathType(plan.conv[0], perf[i].mathType));
    CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(cs.cudnn, plan.x, plan.w, plan.conv[0],
                                                        plan.y, plan.fwd_algo, &plan.workspace[0]));
    plan.tuned[0] = true;
  }
  return {plan.fwd_algo, plan.workspace[0]};
}

Choice<cudnnConvolutionBwdDataAlgo_t> data_choice(Context& ctx, Plan& plan, const Tensor& dy,
                                                  const Tensor& w, const Tensor& dx) {
  CudaState& cs = ctx.cuda();
  std::lock_guard<std::mutex> lock(cs.cache_mutex());
  if (should_tune(cs, plan, 1)) {
    const bool is_f32 = dx.dtype() == DType::f32;
    Tensor scratch, space;
    if (!find_buffers(ctx, dx, scratch, space)) {
      plan.tuned[1] = true;
      return {plan.data_algo, plan.workspace[1]};
    }
    MathTypeGuard guard{plan.conv[1], reset_math(plan.conv[1], is_f32)};
    cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    int n = 0;
    CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithmEx(
        cs.cudnn, plan.w, w.raw(), plan.y, dy.raw(), plan.conv[1], plan.x, scratch.raw(),
        CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &n, perf, space.raw(), kMaxWorkspace));
    const int i = usable_algorithm(perf, n, is_f32);
    if (i < 0) {  // nothing qualifies: the heuristic choice stays (the guard restores its math)
      plan.tuned[1] = true;
      return {plan.data_algo, plan.workspace[1]};
    }
    guard.armed = false;  // the timed choice's math type goes on instead
    plan.data_algo = perf[i].algo;
    if (!is_f32) CUDNN_CHECK(cudnnSetConvolutionMathType(plan.conv[1], perf[i].mathType));
    CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(
        cs.cudnn, plan.w, plan.y, plan.conv[1], plan.x, plan.data_algo, &plan.workspace[1]));
    plan.tuned[1] = true;
  }
  return {plan.data_algo, plan.workspace[1]};
}

Choice<cudnnConvolutionBwdFilterAlgo_t> filter_choice(Context& ctx, Plan& plan, const Tensor& x,
                                                      const Tensor& dy, const Tensor& dw) {
  CudaState& cs = ctx.cuda();
  std::lock_guard<std::mutex> lock(cs.cache_mutex());
  if (should_tune(cs, plan, 2)) {
    const bool is_f32 = x.dtype() == DType::f32;
    Tensor scratch, space;
    if (!find_buffers(ctx, dw, scratch, space)) {
      plan.tuned[2] = true;
      return {plan.filter_algo, plan.workspace[2]};
    }
    MathTypeGuard guard{plan.conv[2], reset_math(plan.conv[2], is_f32)};
    cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    int n = 0;
    CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithmEx(
        cs.cudnn, plan.x, x.raw(), plan.y, dy.raw(), plan.conv[2], plan.w, scratch.raw(),
        CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &n, perf, space.raw(), kMaxWorkspace));
    const int i = usable_algorithm(perf, n, is_f32);
    if (i < 0) {  // nothing qualifies: the heuristic choice stays (the guard restores its math)
      plan.tuned[2] = true;
      return {plan.filter_algo, plan.workspace[2]};
    }
    guard.armed = false;  // the timed choice's math type goes on instead
    plan.filter_algo = perf[i].algo;
    if (!is_f32) CUDNN_CHECK(cudnnSetConvolutionMathType(plan.conv[2], perf[i].mathType));
    CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(
        cs.cudnn, plan.x, plan.y, plan.conv[2], plan.w, plan.filter_algo, &plan.workspace[2]));
    plan.tuned[2] = true;
  }
  return {plan.filter_algo, plan.workspace[2]};
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
