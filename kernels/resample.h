// Nearest 2x upsample (nn.Upsample(None, 2, 'nearest')) and channel concat / split, NHWC.
// CPU: f32, f64. CUDA: f32, f16, bf16.
#pragma once

#include <vector>

#include "core/context.h"

namespace yolo {

// x: (N, H, W, C) -> y: (N, 2H, 2W, C); y[n, 2h+i, 2w+j, c] = x[n, h, w, c].
void upsample_nearest2x_fwd(Context& ctx, const Tensor& x, const Tensor& y);
// dx[n, h, w, c] = sum of the 2x2 cells of dy it was copied to. Assigns dx.
void upsample_nearest2x_bwd(Context& ctx, const Tensor& dy, const Tensor& dx);

// xs[i]: (N, H, W, C_i) -> out: (N, H, W, sum C_i), in order (torch.cat(dim=1) in NCHW terms).
void concat_channels_fwd(Context& ctx, const std::vector<Tensor>& xs, const Tensor& out);
// Split dout (N, H, W, sum C_i) back into dxs[i] (N, H, W, C_i). Assigns each dxs[i]; an undefined
// dxs[i] is skipped.
void concat_channels_bwd(Context& ctx, const Tensor& dout, const std::vector<Tensor>& dxs);

void upsample_nearest2x_fwd_cpu(Context& ctx, const Tensor& x, const Tensor& y);
void upsample_nearest2x_bwd_cpu(Context& ctx, const Tensor& dy, const Tensor& dx);
void concat_channels_fwd_cpu(Context& ctx, const std::vector<Tensor>& xs, const Tensor& out);
void concat_channels_bwd_cpu(Context& ctx, const Tensor& dout, const std::vector<Tensor>& dxs);
void upsample_nearest2x_fwd_cuda(Context& ctx, const Tensor& x, const Tensor& y);
void upsample_nearest2x_bwd_cuda(Context& ctx, const Tensor& dy, const Tensor& dx);
void concat_channels_fwd_cuda(Context& ctx, const std::vector<Tensor>& xs, const Tensor& out);
void concat_channels_bwd_cuda(Context& ctx, const Tensor& dout, const std::vector<Tensor>& dxs);

}  // namespace yolo
