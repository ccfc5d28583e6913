// Elementwise ops on contiguous tensors of equal shape: add, add_scaled, mul, scale, fill, copy,
// cast. CPU: f32, f64 (cast also f16/bf16). CUDA: f32, f16, bf16 (math in f32). Outputs may alias
// inputs.
#pragma once

#include "core/context.h"

namespace yolo {

// out = a + b (the residual add).
void add(Context& ctx, const Tensor& a, const Tensor& b, const Tensor& out);
// out = a + alpha * b (gradient accumulation: add_scaled(ctx, g, d, 1, g)).
void add_scaled(Context& ctx, const Tensor& a, const Tensor& b, double alpha, const Tensor& out);
// out = a * b.
void mul(Context& ctx, const Tensor& a, const Tensor& b, const Tensor& out);
// out = alpha * x.
void scale(Context& ctx, const Tensor& x, double alpha, const Tensor& out);
// t[:] = value.
void fill(Context& ctx, const Tensor& t, double value);
// dst = src (same dtype and shape, same device).
void copy(Context& ctx, const Tensor& src, const Tensor& dst);
// dst = src converted to dst's dtype (f32 <-> f16 <-> bf16, f32 <-> f64 on CPU), round to nearest
// even.
void cast(Context& ctx, const Tensor& src, const Tensor& dst);

void add_cpu(Context& ctx, const Tensor& a, const Tensor& b, const Tensor& out);
void add_scaled_cpu(Context& ctx, const Tensor& a, const Tensor& b, double alpha,
                    const Tensor& out);
void mul_cpu(Context& ctx, const Tensor& a, const Tensor& b, const Tensor& out);
void scale_cpu(Context& ctx, const Tensor& x, double alpha, const Tensor& out);
void fill_cpu(Context& ctx, const Tensor& t, double value);
void copy_cpu(Context& ctx, const Tensor& src, const Tensor& dst);
void cast_cpu(Context& ctx, const Tensor& src, const Tensor& dst);
void add_cuda(Context& ctx, const Tensor& a, const Tensor& b, const Tensor& out);
void add_scaled_cuda(Context& ctx, const Tensor& a, const Tensor& b, double alpha,
                     const Tensor& out);
void mul_cuda(Context& ctx, const Tensor& a, const Tensor& b, const Tensor& out);
void scale_cuda(Context& ctx, const Tensor& x, double alpha, const Tensor& out);
void fill_cuda(Context& ctx, const Tensor& t, double value);
void copy_cuda(Context& ctx, const Tensor& src, const Tensor& dst);
void cast_cuda(Context& ctx, const Tensor& src, const Tensor& dst);

}  // namespace yolo
