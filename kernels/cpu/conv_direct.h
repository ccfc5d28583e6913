// The x86 direct conv kernels of the CPU conv2d (kernels/cpu/conv.cpp): the forward (Note [CPU
// direct conv]), strided backward-data by phases (Note [CPU conv2d backward-data by phases]) and
// the weight gradient (Note [CPU direct conv weight gradient]), f32, AVX-512 or AVX2+FMA picked at
// run time (kernels/cpu/cpu_isa.h). Each returns false where it does not apply, and conv.cpp then
// takes its patch-matrix path.
#pragma once

#include <cstdint>

#include "core/context.h"

namespace yolo::cpu {

// One conv2d: x (n, h, w, c) NHWC, w (o, kh, kw, cg) OHWI with cg = c / groups, y (n, oh, ow, o).
struct ConvGeometry {
  int64_t n, h, w, c;
  int64_t o, kh, kw, cg;
  int64_t oh, ow, groups, og;  // og = o / groups
  int64_t sh, sw, ph, pw;
  int64_t k() const { return kh * kw * cg; }  // patch columns
  int64_t lines() const { return n * oh; }    // output lines (n, oh)
  bool no_patch() const { return kh == 1 && kw == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0; }
  bool depthwise() const { return cg == 1 && og == 1; }
};

// y = act(conv(x, w) + bias) (bias may be nullptr; SiLU when silu).
bool direct_conv_fwd(Context& ctx, const ConvGeometry& g, const float* x, const float* w,
                     const float* bias, float* y, bool silu);
// dx = the backward-data of a strided conv (stride 1 runs as a forward, in conv.cpp).
bool direct_conv_bwd_data(Context& ctx, const ConvGeometry& g, const float* dy, const float* w,
                          float* dx);
// dw = (or +=, when accumulate) the weight gradient.
bool direct_conv_bwd_filter(Context& ctx, const ConvGeometry& g, const float* x, const float* dy,
                            float* dw, bool accumulate);

}  // namespace yolo::cpu
