// Pointwise activations: SiLU and sigmoid, forward and backward (any shape, contiguous).
// CPU: f32, f64. CUDA: f32, f16, bf16 (math in f32).
#pragma once

#include "core/context.h"

namespace yolo {

enum class Activation { none, silu };

// y = x * sigmoid(x). y may alias x.
void silu_fwd(Context& ctx, const Tensor& x, const Tensor& y);
// dx = dy * s * (1 + x * (1 - s)), s = sigmoid(x). Assigns dx (may alias dy).
void silu_bwd(Context& ctx, const Tensor& x, const Tensor& dy, const Tensor& dx);
// y = 1 / (1 + exp(-x)).
void sigmoid_fwd(Context& ctx, const Tensor& x, const Tensor& y);
// dx = dy * y * (1 - y), from the forward output y. Assigns dx.
void sigmoid_bwd(Context& ctx, const Tensor& y, const Tensor& dy, const Tensor& dx);

void silu_fwd_cpu(Context& ctx, const Tensor& x, const Tensor& y);
void silu_bwd_cpu(Context& ctx, const Tensor& x, const Tensor& dy, const Tensor& dx);
void sigmoid_fwd_cpu(Context& ctx, const Tensor& x, const Tensor& y);
void sigmoid_bwd_cpu(Context& ctx, const Tensor& y, const Tensor& dy, const Tensor& dx);
void silu_fwd_cuda(Context& ctx, const Tensor& x, const Tensor& y);
void silu_bwd_cuda(Context& ctx, const Tensor& x, const Tensor& dy, const Tensor& dx);
void sigmoid_fwd_cuda(Context& ctx, const Tensor& x, const Tensor& y);
void sigmoid_bwd_cuda(Context& ctx, const Tensor& y, const Tensor& dy, const Tensor& dx);

}  // namespace yolo
