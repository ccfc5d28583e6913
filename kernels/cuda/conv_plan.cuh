// cuDNN convolution plans for kernels/cuda/conv.cu: per shape, the descriptors and each
// direction's algorithm and workspace size, chosen by cuDNN's heuristics and then timed on first
// use (Notes [Conv plan cache] and [Conv autotune] in kernels/cuda/conv_plan.cu). Host code only;
// callers hold no lock (plan_for and the *_choice functions take the cache mutex themselves).
#pragma once

#include <cudnn.h>

#include <cstddef>

#include "core/context.h"
#include "core/cuda_state.h"
#include "kernels/conv.h"

namespace yolo::conv_detail {

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

// The algorithm and workspace size one direction of a conv runs with.
template <typename Algo>
struct Choice {
  Algo algo;
  size_t workspace;
};

// The cached plan for a conv of x (N, H, W, C) and w (O, KH, KW, C/groups) in dtype dt, built on
// first use (Note [Conv plan cache]).
Plan& plan_for(CudaState& cs, const Shape& xs, const Shape& ws, const Conv2dParams& p, DType dt);

// Each direction's algorithm, timed on its first eager call (Note [Conv autotune]). forward: x, w
// -> y; backward-data: dy, w -> dx; backward-filter: x, dy -> dw.
Choice<cudnnConvolutionFwdAlgo_t> forward_choice(Context& ctx, Plan& plan, const Tensor& x,
                                                 const Tensor& w, const Tensor& y);
Choice<cudnnConvolutionBwdDataAlgo_t> data_choice(Context& ctx, Plan& plan, const Tensor& dy,
                                                  const Tensor& w, const Tensor& dx);
Choice<cudnnConvolutionBwdFilterAlgo_t> filter_choice(Context& ctx, Plan& plan, const Tensor& x,
                                                      const Tensor& dy, const Tensor& dw);

// The shared workspace of at least `bytes` (null for none).
inline void* workspace(CudaState& cs, size_t bytes) {
  return bytes ? cs.workspace(bytes) : nullptr;
}

}  // namespace yolo::conv_detail
