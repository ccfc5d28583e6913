// Max pooling as YOLOv5 uses it: kernel k (odd), stride 1, padding k/2 (padding never wins), NHWC.
// SPPF runs three such pools in cascade and concatenates [x, p1, p2, p3] on channels; sppf_fwd does
// the cascade and the concat in one pass. Ties pick the first maximum in row-major window order
// (PyTorch's rule), in forward and backward alike.
// CPU: f32, f64. CUDA: f32, f16, bf16.
#pragma once

#include "core/context.h"

namespace yolo {

// x, y: (N, H, W, C).
void maxpool_fwd(Context& ctx, const Tensor& x, const Tensor& y, int k);
// dx (N, H, W, C): the gradient routed to each window's maximum (recomputed from x). Assigns dx.
void maxpool_bwd(Context& ctx, const Tensor& x, const Tensor& dy, const Tensor& dx, int k);
// x: (N, H, W, C); out: (N, H, W, 4C) = [x, p1, p2, p3] with p1 = pool(x), p2 = pool(p1), p3 =
// pool(p2).
void sppf_fwd(Context& ctx, const Tensor& x, const Tensor& out, int k);
// out: the forward's output (holds x, p1, p2 for routing); dout: (N, H, W, 4C); dx: (N, H, W, C)
// = dout[x] + the cascade's gradient. Assigns dx.
void sppf_bwd(Context& ctx, const Tensor& out, const Tensor& dout, const Tensor& dx, int k);

void maxpool_fwd_cpu(Context& ctx, const Tensor& x, const Tensor& y, int k);
void maxpool_bwd_cpu(Context& ctx, const Tensor& x, const Tensor& dy, const Tensor& dx, int k);
void sppf_fwd_cpu(Context& ctx, const Tensor& x, const Tensor& out, int k);
void sppf_bwd_cpu(Context& ctx, const Tensor& out, const Tensor& dout, const Tensor& dx, int k);
void maxpool_fwd_cuda(Context& ctx, const Tensor& x, const Tensor& y, int k);
void maxpool_bwd_cuda(Context& ctx, const Tensor& x, const Tensor& dy, const Tensor& dx, int k);
void sppf_fwd_cuda(Context& ctx, const Tensor& x, const Tensor& out, int k);
void sppf_bwd_cuda(Context& ctx, const Tensor& out, const Tensor& dout, const Tensor& dx, int k);

}  // namespace yolo
