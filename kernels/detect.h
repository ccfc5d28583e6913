// Detect head decode (models/yolo.py Detect.forward, eval branch) for one level: sigmoid of the
// raw 1x1-conv output, then xy = (2 s - 0.5 + cell index) * stride, wh = (2 s)^2 * anchor * stride,
// objectness and classes stay sigmoids. Rows are written in the reference's (anchor, y, x) order.
// CPU: x f32 -> out f32, x f64 -> out f64. CUDA: x f32, f16, bf16 -> out f32.
#pragma once

#include <cstdint>

#include "core/context.h"

namespace yolo {

// x: (N, ny, nx, na * no) NHWC conv output of one level, channel a * no + k.
// anchors: (na, 2) f32 (f64 when x is f64) in grid units (the Detect `anchors` buffer row).
// out: (N, R, no); this level fills rows [row_offset, row_offset + na * ny * nx) of every image,
// row row_offset + (a * ny + y) * nx + x. Other rows are left untouched.
void detect_decode(Context& ctx, const Tensor& x, const Tensor& anchors, double stride,
                   const Tensor& out, int64_t row_offset);

void detect_decode_cpu(Context& ctx, const Tensor& x, const Tensor& anchors, double stride,
                       const Tensor& out, int64_t row_offset);
void detect_decode_cuda(Context& ctx, const Tensor& x, const Tensor& anchors, double stride,
                        const Tensor& out, int64_t row_offset);

}  // namespace yolo
