// Argument checks and device dispatch for kernels/conv.h (conv2d forward, backward-data,
// backward-filter). Every mismatch throws yolo::Error naming the shapes involved; the maths lives
// in kernels/cpu/conv.cpp (OpenBLAS) and kernels/cuda/conv.cu (cuDNN, cuBLAS for plain 1x1).
#include "kernels/conv.h"

#include "kernels/dispatch.h"

namespace yolo {
namespace {

void check_params(const char* op, const Conv2dParams& p) {
  YOLO_CHECK(p.stride_h >= 1 && p.stride_w >= 1,
             op << ": strides must be >= 1, got " << p.stride_h << "x" << p.stride_w);
  YOLO_CHECK(p.pad_h >= 0 && p.pad_w >= 0,
             op << ": padding must be >= 0, got " << p.pad_h << "x" << p.pad_w);
  YOLO_CHECK(p.groups >= 1, op << ": groups must be >= 1, got " << p.groups);
}

void check_dtype_for_device(const char* op, const char* name, const Tensor& t) {
  const DType d = t.dtype();
  if (t.device().is_cpu()) {
    YOLO_CHECK(d == DType::f32 || d == DType::f64,
               op << ": on the CPU " << name << " must be f32 or f64, got " << t.str());
  } else {
    YOLO_CHECK(d == DType::f32 || d == DType::f16 || d == DType::bf16,
               op << ": on CUDA " << name << " must be f32, f16 or bf16, got " << t.str());
  }
}

// `t` is defined, on the context's device, and of `ref`'s dtype.
void check_like(const char* op, Context& ctx, const char* ref_name, const Tensor& ref,
                const char* name, const Tensor& t) {
  check_defined(op, name, t);
  check_same_dtype(op, ref_name, ref, name, t);
  check_same_device(op, ref_name, ref, name, t);
  YOLO_CHECK(t.device() == ctx.device(), op << ": " << name << " is on " << t.device().str()
                                            << " but the context is on " << ctx.device().str());
}

// Checks x and w (named as the caller knows them) and returns the output shape.
Shape checked_out_shape(const char* op, const char* x_name, const Tensor& x, const char* w_name,
                        const Tensor& w, const Conv2dParams& p) {
  check_params(op, p);
  check_defined(op, x_name, x);
  check_defined(op, w_name, w);
  YOLO_CHECK(x.ndim() == 4,
             op << ": " << x_name << " must be NHWC (N, H, W, C), got " << shape_str(x.shape()));
  YOLO_CHECK(w.ndim() == 4, op << ": " << w_name << " must be OHWI (O, KH, KW, C / groups), got "
                               << shape_str(w.shape()) << " (" << x_name << " is "
                               << shape_str(x.shape()) << ")");
  const int64_t c = x.dim(3), o = w.dim(0);
  YOLO_CHECK(w.dim(3) * p.groups == c,
             op << ": " << x_name << " " << shape_str(x.shape()) << " has " << c << " channels but "
                << w_name << " " << shape_str(w.shape()) << " expects " << w.dim(3) * p.groups
                << " (= " << w_name << ".dim(3) " << w.dim(3) << " x groups " << p.groups << ")");
  YOLO_CHECK(o % p.groups == 0, op << ": " << w_name << " " << shape_str(w.shape()) << " has " << o
                                   << " output channels, not divisible by groups " << p.groups);
  YOLO_CHECK(w.dim(1) >= 1 && w.dim(2) >= 1,
             op << ": " << w_name << " " << shape_str(w.shape()) << " has an empty kernel");
  const int64_t oh = conv2d_out_size(x.dim(1), w.dim(1), p.stride_h, p.pad_h);
  const int64_t ow = conv2d_out_size(x.dim(2), w.dim(2), p.stride_w, p.pad_w);
  YOLO_CHECK(oh >= 1 && ow >= 1, op << ": kernel " << w.dim(1) << "x" << w.dim(2) << " of "
                                    << w_name << " " << shape_str(w.shape()) << " with padding "
                                    << p.pad_h << "x" << p.pad_w << " does not fit " << x_name
                                    << " " << shape_str(x.shape()));
  return {x.dim(0), oh, ow, o};
}

void check_bias(const char* op, Context& ctx, const Tensor& x, const char* w_name, const Tensor& w,
                const char* name, const Tensor& bias) {
  if (!bias.defined()) return;
  check_like(op, ctx, "x", x, name, bias);
  YOLO_CHECK(bias.ndim() == 1 && bias.dim(0) == w.dim(0),
             op << ": " << name << " has shape " << shape_str(bias.shape()) << " but " << w_name
                << " " << shape_str(w.shape()) << " needs (" << w.dim(0) << ")");
}

}  // namespace

int64_t conv2d_out_size(int64_t in, int64_t kernel, int stride, int pad) {
  YOLO_CHECK(stride >= 1, "conv2d_out_size: stride must be >= 1, got " << stride);
  const int64_t span = in + 2 * int64_t(pad) - kernel;
  return span < 0 ? 0 : span / stride + 1;
}

Shape conv2d_out_shape(const Tensor& x, const Tensor& w, const Conv2dParams& p) {
  return checked_out_shape("conv2d", "x", x, "w", w, p);
}

namespace {

void check_fwd(const char* op, Context& ctx, const Tensor& x, const Tensor& w, const Tensor& bias,
               const Tensor& y, const Conv2dParams& p) {
  const Shape ys = checked_out_shape(op, "x", x, "w", w, p);
  check_like(op, ctx, "x", x, "x", x);
  check_dtype_for_device(op, "x", x);
  check_like(op, ctx, "x", x, "w", w);
  check_bias(op, ctx, x, "w", w, "bias", bias);
  check_like(op, ctx, "x", x, "y", y);
  check_shape(op, "y", y, ys);
}

}  // namespace

void conv2d_fwd(Context& ctx, const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& y,
                const Conv2dParams& p) {
  check_fwd("conv2d_fwd", ctx, x, w, bias, y, p);
  YOLO_DISPATCH(ctx, conv2d_fwd, ctx, x, w, bias, y, p);
}

void conv2d_fwd_act(Context& ctx, const Tensor& x, const Tensor& w, const Tensor& bias,
                    const Tensor& y, const Conv2dParams& p, Activation act) {
  check_fwd("conv2d_fwd_act", ctx, x, w, bias, y, p);
  YOLO_DISPATCH(ctx, conv2d_fwd_act, ctx, x, w, bias, y, p, act);
}

void conv2d_bwd_data(Context& ctx, const Tensor& dy, const Tensor& w, const Tensor& dx,
                     const Conv2dParams& p) {
  const char* op = "conv2d_bwd_data";
  const Shape ys = checked_out_shape(op, "dx", dx, "w", w, p);
  check_like(op, ctx, "dx", dx, "dx", dx);
  check_dtype_for_device(op, "dx", dx);
  check_like(op, ctx, "dx", dx, "w", w);
  check_like(op, ctx, "dx", dx, "dy", dy);
  YOLO_CHECK(dy.shape() == ys, op << ": dy has shape " << shape_str(dy.shape()) << ", expected "
                                  << shape_str(ys) << " for dx " << shape_str(dx.shape())
                                  << " and w " << shape_str(w.shape()));
  YOLO_DISPATCH(ctx, conv2d_bwd_data, ctx, dy, w, dx, p);
}

void conv2d_bwd_filter(Context& ctx, const Tensor& x, const Tensor& dy, const Tensor& dw,
                       const Tensor& dbias, const Conv2dParams& p, bool accumulate) {
  const char* op = "conv2d_bwd_filter";
  const Shape ys = checked_out_shape(op, "x", x, "dw", dw, p);
  check_like(op, ctx, "x", x, "x", x);
  check_dtype_for_device(op, "x", x);
  check_like(op, ctx, "x", x, "dw", dw);
  check_like(op, ctx, "x", x, "dy", dy);
  YOLO_CHECK(dy.shape() == ys, op << ": dy has shape " << shape_str(dy.shape()) << ", expected "
                                  << shape_str(ys) << " for x " << shape_str(x.shape())
                                  << " and dw " << shape_str(dw.shape()));
  check_bias(op, ctx, x, "dw", dw, "dbias", dbias);
  YOLO_DISPATCH(ctx, conv2d_bwd_filter, ctx, x, dy, dw, dbias, p, accumulate);
}

}  // namespace yolo
