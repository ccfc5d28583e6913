// cuDNN convolution plans (kernels/cuda/conv_plan.cuh): descriptors per shape, and per direction
// the algorithm cuDNN's heuristics suggest, then the fastest one timed on the first eager call.
// Used by the conv launchers in kernels/cuda/conv.cu; host code only.
#include "kernels/cuda/conv_plan.cuh"

#include <map>
#include <memory>
#include <mutex>
#include <tuple>

#include "core/cuda_check.h"

namespace yolo::conv_detail {
namespace {

// Note [Conv plan cache]
// cuDNN plans live in the context's CudaState (cache "conv2d"), guarded by its cache mutex, keyed
// by (dtype, x shape, w shape, strides, pads, groups). A plan holds the descriptors and, per
// direction, the algorithm and its workspace size, chosen once by the cudnnGet*Algorithm_v7
// heuristics (no timing, no synchronisation). The choice is the first heuristic result that
// succeeded, needs at most kMaxWorkspace bytes and is not a tensor-op (TF32) algorithm for f32,
// preferring in turn (usable_algorithm): deterministic (bitwise reproducible, no atomics) and, for
// 16-bit types, free of FFT/Winograd transforms; then transform-free; then deterministic; then any.
// Plans are immutable once built and freed with the context (a few hundred bytes each; YOLOv5 needs
// ~60 convs x image sizes). The first call for a shape must be eager (before CUDA-graph capture):
// it builds the plan, tunes it (Note [Conv autotune]) and may grow the workspace.

// Note [Conv autotune]
// The heuristic's first pick can be far from the fastest: on an H100 it chose a backward-data
// algorithm taking 32 ms for a 3x3 stride-2 32->64 conv at 320x320 (f32, batch 16) where another
// takes 1.7 ms, and a slow backward-filter for the stem. So the first eager call of each direction
// for a shape times cuDNN's candidates with cudnnFind*AlgorithmEx on that call's own inputs and
// keeps the fastest that passes the same filter and preference as the heuristic (Note [Conv plan
// cache]); when none does, the heuristic choice stays, and when the timing itself fails the call
// reports the error with the heuristic choice and its math type left in place. The outputs of the
// timing runs go to scratch tensors, so a conv's bias (already in y) or an accumulated weight
// gradient is never touched. Not done while the stream is being captured (the heuristic choice
// stays) nor with CudaState::conv_autotune off (YOLO_CONV_AUTOTUNE=0). Timing makes the choice
// depend on the run, as PyTorch's cudnn.benchmark, which the reference's training turns on
// (utils/general.py init_seeds).
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

using PlanKey = std::tuple<int, Shape, Shape, int, int, int, int, int>;

// FFT and Winograd algorithms compute on transformed operands, which for 16-bit types may be stored
// in the 16-bit type: several roundings per output instead of one (Note [Conv math policy] in
// kernels/cuda/conv.cu).
bool transforms(cudnnConvolutionFwdAlgo_t a) {
  return a == CUDNN_CONVOLUTION_FWD_ALGO_FFT || a == CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING ||
         a == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD ||
         a == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED;
}
bool transforms(cudnnConvolutionBwdDataAlgo_t a) {
  return a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT ||
         a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING ||
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
  // policy] in kernels/cuda/conv.cu).
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

// One direction's choice (Note [Conv autotune]), under the cache mutex: on its first eager call,
// find(perf, &n, scratch, space) times cuDNN's candidates (writing into scratch, never `out`) and
// the fastest usable one replaces `algo`, with its math type and workspace size(algo, &bytes).
// Without scratch memory, or with no usable candidate, the heuristic choice stays. Direction d: 0
// forward, 1 backward-data, 2 backward-filter; `out` is what the direction writes.
template <typename Perf, int kCount, typename Algo, typename Find, typename Size>
Choice<Algo> tuned_choice(Context& ctx, Plan& plan, int d, Algo& algo, const Tensor& out,
                          Find find, Size size) {
  CudaState& cs = ctx.cuda();
  std::lock_guard<std::mutex> lock(cs.cache_mutex());
  if (should_tune(cs, plan, d)) {
    const bool is_f32 = out.dtype() == DType::f32;
    Tensor scratch, space;
    if (find_buffers(ctx, out, scratch, space)) {
      MathTypeGuard guard{plan.conv[d], reset_math(plan.conv[d], is_f32)};
      Perf perf[kCount];
      int n = 0;
      CUDNN_CHECK(find(perf, &n, scratch.raw(), space.raw()));
      const int i = usable_algorithm(perf, n, is_f32);
      if (i >= 0) {  // else the heuristic choice stays (the guard restores its math type)
        guard.armed = false;  // the timed choice's math type goes on instead
        algo = perf[i].algo;
        if (!is_f32) CUDNN_CHECK(cudnnSetConvolutionMathType(plan.conv[d], perf[i].mathType));
        CUDNN_CHECK(size(algo, &plan.workspace[d]));
      }
    }
    plan.tuned[d] = true;
  }
  return {algo, plan.workspace[d]};
}

}  // namespace

Plan& plan_for(CudaState& cs, const Shape& xs, const Shape& ws, const Conv2dParams& p,
                     DType dt) {
  const PlanKey key{int(dt), xs, ws, p.stride_h, p.stride_w, p.pad_h, p.pad_w, p.groups};
  std::lock_guard<std::mutex> lock(cs.cache_mutex());
  auto& plans = cs.cache<std::map<PlanKey, std::unique_ptr<Plan>>>("conv2d");
  std::unique_ptr<Plan>& slot = plans[key];
  if (!slot) slot = build_plan(cs, xs, ws, p, dt);
  return *slot;
}

Choice<cudnnConvolutionFwdAlgo_t> forward_choice(Context& ctx, Plan& plan, const Tensor& x,
                                                 const Tensor& w, const Tensor& y) {
  CudaState& cs = ctx.cuda();
  return tuned_choice<cudnnConvolutionFwdAlgoPerf_t, CUDNN_CONVOLUTION_FWD_ALGO_COUNT>(
      ctx, plan, 0, plan.fwd_algo, y,
      [&](cudnnConvolutionFwdAlgoPerf_t* perf, int* n, void* scratch, void* space) {
        return cudnnFindConvolutionForwardAlgorithmEx(
            cs.cudnn, plan.x, x.raw(), plan.w, w.raw(), plan.conv[0], plan.y, scratch,
            CUDNN_CONVOLUTION_FWD_ALGO_COUNT, n, perf, space, kMaxWorkspace);
      },
      [&](cudnnConvolutionFwdAlgo_t algo, size_t* bytes) {
        return cudnnGetConvolutionForwardWorkspaceSize(cs.cudnn, plan.x, plan.w, plan.conv[0],
                                                       plan.y, algo, bytes);
      });
}

Choice<cudnnConvolutionBwdDataAlgo_t> data_choice(Context& ctx, Plan& plan, const Tensor& dy,
                                                  const Tensor& w, const Tensor& dx) {
  CudaState& cs = ctx.cuda();
  return tuned_choice<cudnnConvolutionBwdDataAlgoPerf_t, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT>(
      ctx, plan, 1, plan.data_algo, dx,
      [&](cudnnConvolutionBwdDataAlgoPerf_t* perf, int* n, void* scratch, void* space) {
        return cudnnFindConvolutionBackwardDataAlgorithmEx(
            cs.cudnn, plan.w, w.raw(), plan.y, dy.raw(), plan.conv[1], plan.x, scratch,
            CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, n, perf, space, kMaxWorkspace);
      },
      [&](cudnnConvolutionBwdDataAlgo_t algo, size_t* bytes) {
        return cudnnGetConvolutionBackwardDataWorkspaceSize(cs.cudnn, plan.w, plan.y,
                                                            plan.conv[1], plan.x, algo, bytes);
      });
}

Choice<cudnnConvolutionBwdFilterAlgo_t> filter_choice(Context& ctx, Plan& plan, const Tensor& x,
                                                      const Tensor& dy, const Tensor& dw) {
  CudaState& cs = ctx.cuda();
  return tuned_choice<cudnnConvolutionBwdFilterAlgoPerf_t,
                      CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT>(
      ctx, plan, 2, plan.filter_algo, dw,
      [&](cudnnConvolutionBwdFilterAlgoPerf_t* perf, int* n, void* scratch, void* space) {
        return cudnnFindConvolutionBackwardFilterAlgorithmEx(
            cs.cudnn, plan.x, x.raw(), plan.y, dy.raw(), plan.conv[2], plan.w, scratch,
            CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, n, perf, space, kMaxWorkspace);
      },
      [&](cudnnConvolutionBwdFilterAlgo_t algo, size_t* bytes) {
        return cudnnGetConvolutionBackwardFilterWorkspaceSize(cs.cudnn, plan.x, plan.y,
                                                              plan.conv[2], plan.w, algo, bytes);
      });
}

}  // namespace yolo::conv_detail
