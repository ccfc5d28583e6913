// 2-D convolution, NHWC activations and OHWI weights (cross-correlation, like PyTorch Conv2d).
// x: (N, H, W, C); w: (O, KH, KW, C / groups); bias: (O) or undefined; y: (N, OH, OW, O) with
// OH = (H + 2 * pad_h - KH) / stride_h + 1. YOLOv5 uses k in {1, 3, 5, 6}, strides 1 and 2.
// CPU: f32, f64 through OpenBLAS GEMM (1x1 directly, kxk via an NHWC patch matrix).
// CUDA: f32, f16, bf16 through cuDNN (cuBLAS for 1x1 stride-1 unpadded, ungrouped).
#pragma once

#include <cstdint>

#include "core/context.h"
#include "kernels/activation.h"  // Activation

namespace yolo {

struct Conv2dParams {
  int stride_h = 1, stride_w = 1;
  int pad_h = 0, pad_w = 0;
  int groups = 1;
};

int64_t conv2d_out_size(int64_t in, int64_t kernel, int stride, int pad);
// Checks x/w/bias/y agree (yolo::Error naming the shapes) and returns the expected y shape.
Shape conv2d_out_shape(const Tensor& x, const Tensor& w, const Conv2dParams& p);

void conv2d_fwd(Context& ctx, const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& y,
                const Conv2dParams& p);
// y = act(conv(x, w) + bias): the fused (BN-folded) Conv block's forward in one op. CPU: bias and
// SiLU applied to each block of GEMM output while it is in cache; CUDA: the conv, then SiLU in
// place. Inference only: it saves nothing for a backward.
void conv2d_fwd_act(Context& ctx, const Tensor& x, const Tensor& w, const Tensor& bias,
                    const Tensor& y, const Conv2dParams& p, Activation act);
// dx = conv_transpose(dy, w). Assigns dx.
void conv2d_bwd_data(Context& ctx, const Tensor& dy, const Tensor& w, const Tensor& dx,
                     const Conv2dParams& p);
// dw = sum over batch and positions of dy x patches; dbias = sum of dy (skipped if undefined).
// Assigned, or added to when accumulate is true.
void conv2d_bwd_filter(Context& ctx, const Tensor& x, const Tensor& dy, const Tensor& dw,
                       const Tensor& dbias, const Conv2dParams& p, bool accumulate);

void conv2d_fwd_cpu(Context& ctx, const Tensor& x, const Tensor& w, const Tensor& bias,
                    const Tensor& y, const Conv2dParams& p);
void conv2d_fwd_act_cpu(Context& ctx, const Tensor& x, const Tensor& w, const Tensor& bias,
                        const Tensor& y, const Conv2dParams& p, Activation act);
void conv2d_bwd_data_cpu(Context& ctx, const Tensor& dy, const Tensor& w, const Tensor& dx,
                         const Conv2dParams& p);
void conv2d_bwd_filter_cpu(Context& ctx, const Tensor& x, const Tensor& dy, const Tensor& dw,
                           const Tensor& dbias, const Conv2dParams& p, bool accumulate);
void conv2d_fwd_cuda(Context& ctx, const Tensor& x, const Tensor& w, const Tensor& bias,
                     const Tensor& y, const Conv2dParams& p);
void conv2d_fwd_act_cuda(Context& ctx, const Tensor& x, const Tensor& w, const Tensor& bias,
                         const Tensor& y, const Conv2dParams& p, Activation act);
void conv2d_bwd_data_cuda(Context& ctx, const Tensor& dy, const Tensor& w, const Tensor& dx,
                          const Conv2dParams& p);
void conv2d_bwd_filter_cuda(Context& ctx, const Tensor& x, const Tensor& dy, const Tensor& dw,
                            const Tensor& dbias, const Conv2dParams& p, bool accumulate);

}  // namespace yolo
