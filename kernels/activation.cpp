// Argument checks and device dispatch for kernels/activation.h (SiLU and sigmoid, fwd and bwd).
// Every tensor is contiguous and of one shape, dtype and device: f32/f64 on the CPU, f32/f16/bf16
// on CUDA. The maths lives in kernels/cpu/activation.cpp and kernels/cuda/activation.cu.
#include "kernels/activation.h"

#include "kernels/dispatch.h"

namespace yolo {
namespace {

void check_dtype_for_device(const char* op, const Tensor& t) {
  const DType d = t.dtype();
  if (t.device().is_cpu()) {
    YOLO_CHECK(d == DType::f32 || d == DType::f64,
               op << ": on the CPU tensors must be f32 or f64, got " << t.str());
  } else {
    YOLO_CHECK(d == DType::f32 || d == DType::f16 || d == DType::bf16,
               op << ": on CUDA tensors must be f32, f16 or bf16, got " << t.str());
  }
}

// a: the input the output is shaped like; b: the output (or second input).
void check_pair(const char* op, Context& ctx, const char* a_name, const Tensor& a,
                const char* b_name, const Tensor& b) {
  check_defined(op, a_name, a);
  check_defined(op, b_name, b);
  check_same_shape(op, a_name, a, b_name, b);
  check_same_dtype(op, a_name, a, b_name, b);
  check_same_device(op, a_name, a, b_name, b);
  YOLO_CHECK(a.device() == ctx.device(), op << ": " << a_name << " is on " << a.device().str()
                                            << " but the context is on " << ctx.device().str());
  check_dtype_for_device(op, a);
}

}  // namespace

void silu_fwd(Context& ctx, const Tensor& x, const Tensor& y) {
  check_pair("silu_fwd", ctx, "x", x, "y", y);
  YOLO_DISPATCH(ctx, silu_fwd, ctx, x, y);
}

void silu_bwd(Context& ctx, const Tensor& x, const Tensor& dy, const Tensor& dx) {
  check_pair("silu_bwd", ctx, "x", x, "dy", dy);
  check_pair("silu_bwd", ctx, "x", x, "dx", dx);
  YOLO_DISPATCH(ctx, silu_bwd, ctx, x, dy, dx);
}

void sigmoid_fwd(Context& ctx, const Tensor& x, const Tensor& y) {
  check_pair("sigmoid_fwd", ctx, "x", x, "y", y);
  YOLO_DISPATCH(ctx, sigmoid_fwd, ctx, x, y);
}

void sigmoid_bwd(Context& ctx, const Tensor& y, const Tensor& dy, const Tensor& dx) {
  check_pair("sigmoid_bwd", ctx, "y", y, "dy", dy);
  check_pair("sigmoid_bwd", ctx, "y", y, "dx", dx);
  YOLO_DISPATCH(ctx, sigmoid_bwd, ctx, y, dy, dx);
}

}  // namespace yolo
