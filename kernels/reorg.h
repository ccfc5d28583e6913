// Space-to-depth for Focus (models/common.py): the reference concatenates on channels the four
// slices x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2], x[..., 1::2, 1::2] (NCHW), i.e.
// block b = 0..3 takes (row, col) offsets (0,0), (1,0), (0,1), (1,1). NHWC here.
// CPU: f32, f64. CUDA: f32, f16, bf16.
#pragma once

#include "core/context.h"

namespace yolo {

// x: (N, H, W, C), H and W even -> y: (N, H/2, W/2, 4C);
// y[n, i, j, b*C + c] = x[n, 2i + dh(b), 2j + dw(b), c].
void space_to_depth_fwd(Context& ctx, const Tensor& x, const Tensor& y);
// The inverse permutation: dx (N, H, W, C) from dy (N, H/2, W/2, 4C). Assigns dx.
void space_to_depth_bwd(Context& ctx, const Tensor& dy, const Tensor& dx);

void space_to_depth_fwd_cpu(Context& ctx, const Tensor& x, const Tensor& y);
void space_to_depth_bwd_cpu(Context& ctx, const Tensor& dy, const Tensor& dx);
void space_to_depth_fwd_cuda(Context& ctx, const Tensor& x, const Tensor& y);
void space_to_depth_bwd_cuda(Context& ctx, const Tensor& dy, const Tensor& dx);

}  // namespace yolo
